"""JSON Lines, the fast way: a batch's lines made kind by kind from columns.

The per-event writer (:func:`.jsonl.event_lines`) builds two dicts and calls
``orjson.dumps`` once per event: about 1.5 µs an event, most of it Python's. Here
each kind of a batch gets a ``bytes`` template of its line (the kind's name and
field names, and any field whose value is the same on every row of the batch,
written into it once) and its lines are ``template % (ts, cpu, task, *fields)``
over the kind's columns, in C through ``map``. Each value is put in as the bytes
``orjson.dumps`` gives it (``%d`` for an integer, which prints it as orjson does), and
each distinct string, task or value is encoded once per batch. The lines are then
put back in row order.

A batch that came whole from a msgpack chunk is read from the chunk's columns (its
rows are never made); any other batch from its rows, grouped by kind. A value this
path does not know how to write exactly (a float, bytes, an integer beyond 64 bits,
a map ...) in a kind whose values must be JSON's own makes it give up on the batch
(:func:`batch_lines` returns None) and the per-event writer writes it, so the output
is that writer's, byte for byte, whatever the input.
"""

from __future__ import annotations

from array import array
from itertools import chain
from operator import itemgetter

import numpy as np
import orjson

from .jsonl import to_json

dumps = orjson.dumps
_INT_LO, _INT_END = -(1 << 63), 1 << 64          # what orjson writes as an integer
NONE = type(None)
#: Types whose values are cached by value: equal values of these are the same JSON
#: (no ``1 == True`` between them).
_CACHED = frozenset((str, NONE, bool))


class NotPlain(Exception):
    """A value this path leaves to the per-event writer (also raised by
    :mod:`.chrome_columns`, which builds on these helpers)."""


def batch_lines(batch, plan: dict[int, tuple]) -> bytes | None:
    """The lines of ``batch`` (each ending with a newline), as the per-event writer
    writes them, or None when that writer must write this batch. ``plan``: kind id →
    ``(name, field names, plain)`` as :func:`.jsonl.write_jsonl` makes it. O(events)
    in C, plus O(kinds + distinct values) in Python."""
    n = len(batch)
    if not n:
        return b""
    try:
        chunk = batch.chunk
        if chunk is not None and chunk.has_columns:
            groups = _chunk_groups(batch, chunk)
        else:
            groups = _row_groups(batch)
        made = [(at, _kind_lines(plan[kind], ts, cpus, tasks, fields))
                for kind, at, ts, cpus, tasks, fields in groups]
    except (NotPlain, TypeError, ValueError, OverflowError, IndexError):
        return None
    if len(made) == 1:
        lines = made[0][1]
    else:
        placed = np.empty(n, object)
        for at, kind_lines in made:
            placed[at] = kind_lines
        lines = placed.tolist()
    lines.append(b"")
    return b"\n".join(lines)


def stamps_of(batch) -> np.ndarray:
    """The batch's absolute times as int64 (a chunk's own buffer, not a copy)."""
    stamps = batch.stamps
    if isinstance(stamps, array):
        return np.frombuffer(stamps, np.int64)
    return np.array(stamps, np.int64)           # OverflowError beyond 64 bits: odd


def by_kind(kinds: np.ndarray):
    """``(kind, positions)`` of each kind present, positions ascending."""
    order = np.argsort(kinds, kind="stable")
    grouped = kinds[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).tolist()
    for lo, hi in zip(starts, starts[1:] + [len(kinds)]):
        yield int(grouped[lo]), order[lo:hi]


def _chunk_groups(batch, chunk):
    """Per kind: ``(kind, positions, times, cpus, tasks, field columns)`` from a
    chunk's columns (:class:`replayer.traceio.columns.Column` each)."""
    stamps = stamps_of(batch)
    tasks = tasks_of(chunk.pids_at(np.arange(len(chunk))), batch.comms)
    cpus = chunk.cpus
    for kind, at in by_kind(chunk.kinds):
        yield (kind, at, stamps[at].tolist(), cpus[at].tolist(), tasks[at].tolist(),
               chunk.field_columns(kind))


def _row_groups(batch):
    """As :func:`_chunk_groups`, from the batch's rows (field columns as lists)."""
    rows = batch.rows
    stamps = stamps_of(batch)
    kinds = np.asarray(batch.columns()[0])
    tasks = tasks_of(list(map(itemgetter(3), rows)), batch.comms)
    for kind, at in by_kind(kinds):
        where = at.tolist()
        group = [rows[i] for i in where]
        width = len(group[0])
        if any(len(r) != width for r in group):
            raise NotPlain("rows of one kind of different lengths")
        columns = [list(map(itemgetter(j), group)) for j in range(width)]
        cpus = exact(columns[2], (int,))      # %d: never a flag
        if min(cpus) < _INT_LO or max(cpus) >= _INT_END:
            raise NotPlain("a CPU beyond 64 bits")
        yield kind, at, stamps[at].tolist(), cpus, tasks[at].tolist(), columns[4:]


def _task(pid, comm) -> bytes:
    """``"pid":P,"comm":C`` of a line (an argument of the template, not part of it)."""
    return b'"pid":' + dumps(pid) + b',"comm":' + dumps(comm)


def tasks_of(pids, comms: dict, encode=_task) -> np.ndarray:
    """Each row's ``encode(pid, comm)`` (the task part of its line): ``pids`` a pid
    column (:class:`replayer.traceio.columns.Column`) or a list; each distinct pid
    encoded once."""
    get = comms.get
    if not isinstance(pids, list):
        if pids.codes is not None:
            encoded = [encode(p, get(p)) for p in exact(pids.values, (int, NONE))]
            return objects(encoded)[pids.codes]
        if pids.ints is not None:
            distinct, codes = np.unique(pids.ints, return_inverse=True)
            encoded = [encode(p, get(p)) for p in distinct.tolist()]
            return objects(encoded)[codes.reshape(-1)]
        pids = list(pids.values)
    cache = {p: encode(p, get(p)) for p in dict.fromkeys(exact(pids, (int, NONE)))}
    return objects(list(map(cache.__getitem__, pids)))


def exact(values, types: tuple):
    """``values``, when every one is of exactly one of ``types`` (so that equal
    values are the same JSON: no bool among ints)."""
    if not set(map(type, values)) <= set(types):
        raise NotPlain("a value of another type")
    return values


def objects(items: list) -> np.ndarray:
    out = np.empty(len(items), object)
    out[:] = items
    return out


def _kind_lines(plan: tuple, ts: list, cpus: list, tasks: list, fields: list) -> list:
    """The lines of one kind's rows, in their order."""
    name, names, plain = plan
    if len(fields) != len(names) or len(set(names)) != len(names) or \
            not all(type(f) is str and (plain or not f.startswith("$")) for f in names):
        raise NotPlain("fields that do not make a plain object")
    parts = [b'{"ts":%d,"cpu":%d,%s,"kind":' + escaped(dumps(name)) + b',"fields":{']
    args = [ts, cpus, tasks]
    for j, (field, column) in enumerate(zip(names, fields)):
        form, values = column_json(column, plain)
        parts.append((b"," if j else b"") + escaped(dumps(field)) + b":" + form)
        if values is not None:
            args.append(values)
    parts.append(b"}}")
    return list(map(b"".join(parts).__mod__, zip(*args)))


def escaped(constant: bytes) -> bytes:
    return constant.replace(b"%", b"%%")


def column_json(column, plain: bool) -> tuple[bytes, list | None]:
    """How a field's values go into the template: ``(b"%d", ints)``, ``(b"%s", their
    JSON)`` or ``(their JSON, None)`` when every row has the same value."""
    if isinstance(column, list):
        return _values(column, plain)
    if column.ints is not None:
        return b"%d", column.ints.tolist()       # 64-bit integers: as orjson writes them
    if column.codes is not None:
        encoded = _each(column.values, plain)
        if len(encoded) == 1:
            return escaped(encoded[0]), None
        return b"%s", objects(encoded)[column.codes].tolist()
    return _values(list(column.values), plain)


def _values(values: list, plain: bool) -> tuple[bytes, list | None]:
    """:func:`column_json` of values as a list: integers as they are, strings, nil and
    flags encoded once each, arrays of integers in one ``orjson.dumps``."""
    types = set(map(type, values))
    if types == {int}:
        if min(values) < _INT_LO or max(values) >= _INT_END:
            raise NotPlain("an integer beyond 64 bits")
        return b"%d", values
    if types <= _CACHED:
        cache = {x: dumps(x) for x in dict.fromkeys(values)}
        if len(cache) == 1:
            return escaped(next(iter(cache.values()))), None
        return b"%s", list(map(cache.__getitem__, values))
    if types == {tuple}:
        items = list(chain.from_iterable(values))
        if set(map(type, items)) <= {int}:
            if items and (min(items) < _INT_LO or max(items) >= _INT_END):
                raise NotPlain("an integer beyond 64 bits")
            # [[1,2],[3]]: integers hold no brackets, so "],[" only ever separates two
            # arrays (an empty one leaves an empty part).
            inner = dumps(values)[2:-2].split(b"],[")
            if len(inner) != len(values):
                raise NotPlain("arrays that did not split")
            return b"[%s]", inner
    return b"%s", _each(values, plain)


def _each(values, plain: bool) -> list[bytes]:
    """Each value's JSON as the per-event writer writes it (through :func:`to_json`
    where the kind's values need not be JSON's own)."""
    if plain:
        return list(map(dumps, values))
    return [dumps(to_json(x)) for x in values]
