"""Chrome JSON, the fast way: a batch's CPU-thread events made kind by kind from
columns, the events that carry state one at a time.

:meth:`.chrome.ChromeWriter.row` turns one row into its trace event: about 3 µs an
event. Most events only show themselves (walker steps, TLB flushes, IPI exits, zaps,
RCU): their JSON depends on the row alone, so each kind of a batch gets a ``bytes``
template (as :mod:`.jsonl_columns` does for JSON Lines) and its events are made in C
through ``map``. The rest go through the writer as before, in row order: the kinds
that draw arrows or name processes (:data:`.chrome.ChromeWriter.special`) whole,
the kinds the lives and counters follow (a PTE set or clear, a table's queue)
through :meth:`.chrome_lives.Lives.update` only, their own event from the
template; so do the first event of each CPU (its thread's names come first) and
the one that opens the window. Everything a row emits is then put in its place.

A batch holding a value the templates do not write exactly (or a time before 0)
is left to the writer whole (:func:`batch_events` returns False before changing
anything), so the output is the writer's, byte for byte.
"""

from __future__ import annotations

import numpy as np

from replayer import vocab as v

from .chrome import _K, CPUS_PID, _encoded as encoded, _plan, micros, micros_of
from .chrome_lives import _ALLOC, _CLEAR, _DETACH, _FREE, _QUEUE, _SET, ATTACHED, LEVEL, PRESENT
from .jsonl import to_json
from .jsonl_columns import (NotPlain, by_kind, column_json, dumps, escaped, objects,
                            stamps_of, tasks_of)

#: Kinds the lives follow: their rows go through Lives.update in order.
_LIVES_KINDS = frozenset((_ALLOC, _SET, _CLEAR, _DETACH, _QUEUE, _FREE))
_IPI_ENTER = _K["ipi_enter"]
#: The keys the writer adds to every event's args after the fields.
_ADDED = frozenset(("event", "pid", "comm"))


def batch_events(w, batch, keep: np.ndarray) -> bool:
    """Turn ``batch`` (``keep``: which rows the window and terms keep) into events
    in ``w``'s buffer, as ``w.row`` one row at a time would; False (nothing done)
    when the writer must do it itself. O(events) in C, plus O(1) Python per row
    that carries state."""
    n = len(batch)
    if not n:
        return True
    try:
        made = _prepare(w, batch, keep)
    except (NotPlain, TypeError, ValueError, OverflowError, IndexError):
        return False
    if made is None:
        return False
    slots, stateful, forced, kept_at = made
    _stateful_rows(w, batch, keep, stateful, forced, slots)
    if len(kept_at):
        w.last_ts = int(stamps_of(batch)[kept_at[-1]])
    w.buffer.extend(filter(None, slots.tolist()))      # a row's events are never b""
    return True


def _prepare(w, batch, keep: np.ndarray):
    """The template-made events in their rows' slots, and which rows go through the
    writer; None when the batch is not for this path."""
    n = len(batch)
    stamps = stamps_of(batch)
    if int(stamps.min()) < 0:
        return None                      # micros() writes those with a sign
    chunk = batch.chunk if batch.chunk is not None and batch.chunk.has_columns else None
    kinds = np.asarray(batch.columns()[0])
    cpus = np.asarray(batch.columns()[1], np.int64)   # + 1: no uint16 wrap
    special = np.isin(kinds, np.array(sorted(w.special), np.int64))
    lives_kind = np.isin(kinds, np.array(sorted(_LIVES_KINDS), np.int64))
    forced = np.zeros(n, bool)
    if not w.lives.open:                 # the row that opens the window
        opens = np.flatnonzero(stamps >= w.t0) if w.t0 is not None else np.arange(1)
        if len(opens):
            forced[opens[0]] = True
    kept_at = np.flatnonzero(keep)
    seen = np.array(sorted(w.cpus), np.int64)
    new_cpu = kept_at[~np.isin(cpus[kept_at], seen)]
    if len(new_cpu):                     # each new CPU's first kept row names its thread
        _, first = np.unique(cpus[new_cpu], return_index=True)
        forced[new_cpu[first]] = True
    # An IPI handler's entry is made from its template too: _stateful_rows pairs it.
    ipi_enter = kinds == _IPI_ENTER
    by_writer = (special & ~ipi_enter) | forced
    templated = keep & ~by_writer
    stateful = np.flatnonzero(by_writer | lives_kind | ipi_enter)
    slots = np.empty(n, object)
    indexes = batch.indexes
    indexes = np.arange(indexes.start, indexes.stop) if isinstance(indexes, range) else \
        np.asarray(indexes, np.int64)
    q, r = np.divmod(stamps, 1000)
    tasks = _tasks(batch, chunk, n)
    plan = w.plan
    for kind, at in by_kind(kinds):
        chosen = templated[at]
        if not chosen.any():
            continue
        at = at[chosen]
        if chunk is not None:
            fields = chunk.field_columns(kind)
            pick = None if chosen.all() else chosen
        else:
            rows = batch.rows
            group = [rows[i] for i in at.tolist()]
            width = len(group[0])
            if any(len(x) != width for x in group):
                raise NotPlain("rows of one kind of different lengths")
            fields = [[x[j] for x in group] for j in range(4, width)]
            pick = None
        spec = plan.get(kind)
        if spec is None:
            spec = plan[kind] = _plan(w.kinds[kind])
        slots[at] = _kind_events(spec, fields, pick, cpus[at] + 1, q[at], r[at], indexes[at],
                                 tasks[at])
    return slots, stateful, forced, kept_at


def _tasks(batch, chunk, n: int) -> np.ndarray:
    """Each row's ``,"pid":P,"comm":C`` of its args (either left out when nil), each
    distinct pid encoded once."""
    pids = chunk.pids_at(np.arange(n)) if chunk is not None else [row[3] for row in batch.rows]
    return tasks_of(pids, batch.comms, _task_args)


def _task_args(pid, comm) -> bytes:
    return (b"" if pid is None else b',"pid":' + dumps(pid)) + \
        (b"" if comm is None else b',"comm":' + dumps(comm))


def _kind_events(spec: tuple, fields: list, chosen, tids, q, r, indexes, tasks) -> list:
    """The events of one kind's rows: those ``chosen`` of its field columns (None:
    all), whose CPU threads, times (µs and ns), indexes and task args are given."""
    name, names, hexed, plain, slice_ = spec
    if len(fields) != len(names) or len(set(names)) != len(names) or _ADDED & set(names) \
            or not all(type(f) is str and (plain or not f.startswith("$")) for f in names):
        raise NotPlain("fields that do not make a plain object")
    head = b'{"name":' + escaped(dumps(name)) + b',"cat":"ptviz","pid":%d,' % CPUS_PID
    head += b'"tid":%d,"ts":%d.%03d,' + (b'"ph":"X","dur":0,' if slice_ else b'"ph":"i","s":"t",')
    parts = [head + b'"args":{']
    args = [tids.tolist(), q.tolist(), r.tolist()]
    for field, column in zip(names, fields):
        form, values = _hex_column(column, plain) if field in hexed else column_json(column, plain)
        parts.append(escaped(dumps(field)) + b":" + form + b",")
        if values is not None:
            args.append(values if chosen is None else _chosen(values, chosen))
    parts.append(b'"event":%d%s}}')
    args += [indexes.tolist(), tasks.tolist()]
    return list(map(b"".join(parts).__mod__, zip(*args)))


def _chosen(values: list, chosen: np.ndarray) -> list:
    return objects(values)[chosen].tolist()


def _hex_column(column, plain: bool):
    """:func:`.jsonl_columns._column` for a field the writer shows in hex: integers
    as ``"0x.."`` strings, arrays of them as arrays of those."""
    if isinstance(column, list):
        values = column
    elif column.ints is not None:
        if not len(column.ints) or int(column.ints.min()) >= 0:
            return b'"0x%x"', column.ints.tolist()
        values = column.ints.tolist()
    elif column.codes is not None:
        encoded = [dumps(_hexed(x if plain else to_json(x))) for x in column.values]
        if len(encoded) == 1:
            return escaped(encoded[0]), None
        return b"%s", objects(encoded)[column.codes].tolist()
    else:
        values = list(column.values)
    if set(map(type, values)) == {int} and min(values) >= 0:
        return b'"0x%x"', values        # hex() of any size: a string, never orjson's int
    return b"%s", [dumps(_hexed(x if plain else to_json(x))) for x in values]


def _hexed(x):
    """A value as the writer shows a hex field's."""
    if type(x) is int:
        return hex(x)
    if type(x) in (tuple, list):
        return [hex(p) if type(p) is int else p for p in x]
    return x


def _stateful_rows(w, batch, keep: np.ndarray, stateful: np.ndarray, forced: np.ndarray,
                   slots) -> None:
    """The rows that go through the writer, in order, each one's output put in its
    slot (before its template-made event, for a kind the lives follow; ``forced``:
    rows the writer must make whatever their kind). A PTE set or
    clear (a quarter of a trace) only moves its table's count of present entries
    unless that count crosses 0 on an attached PTE table: done here, without a row,
    its time or a call; the rest as :meth:`.chrome_lives.Lives.update` does it. A
    kept IPI handler entry's arrows are drawn here from its template-made event."""
    if not len(stateful):
        return
    chunk = batch.chunk if batch.chunk is not None and batch.chunk.has_columns else None
    kinds = np.asarray(batch.columns()[0])[stateful]
    counting = np.isin(kinds, (_SET, _CLEAR)) & ~forced[stateful]
    others = stateful[~counting]
    rows = _rows_at(batch, chunk, others)
    stamps = stamps_of(batch)
    other = zip(others.tolist(), rows, stamps[others].tolist(),
                micros_of(stamps[others].tolist()), keep[others].tolist())
    counted = stateful[counting]
    pfns, ns = _counts_of(batch, chunk, counted)
    count = zip(counted.tolist(), kinds[counting].tolist(), pfns, ns)
    indexes = batch.indexes
    comm_of = batch.comms.get
    buffer = w.buffer
    saved = buffer[:]                    # what was emitted before this batch
    del buffer[:]
    lives = w.lives
    tables, update, row_out, sends = lives.tables, lives.update, w.row, w.sends
    for counts in counting.tolist():
        if counts:
            i, kind, pfn, n = next(count)
            t = tables.get(pfn)
            if t is None or type(n) is not int:
                continue
            was = t[PRESENT]
            now = was + n if kind == _SET else max(0, was - n)
            if (was == 0) == (now == 0) or not t[ATTACHED] or t[LEVEL] != v.LEVEL_PTE:
                t[PRESENT] = now
                continue
            # Lives.update reads a set's or clear's pfn and n only (fields 1 and 2).
            update(kind, (None, pfn, n), micros(int(stamps[i])), indexes[i])
            own = slots[i]
        else:
            i, row, t, ts, k = next(other)
            kind = row[0]
            own = slots[i]
            if own is None:              # the writer makes this row's event too
                row_out(indexes[i], t, ts, kind, row[2], row[3], row[4:], comm_of(row[3]), k)
            elif kind == _IPI_ENTER:     # kept: an arrow from each send it answers
                waiting = sends.pop(row[2], ())
                for send in waiting:     # as ChromeWriter._special draws them
                    fid = w.flow_id()
                    buffer.append(encoded({**send, "bind_id": fid, "flow_out": True}))
                    buffer.append(own[:-1] + b',"bind_id":%d,"flow_in":true}' % fid)
                if waiting:
                    own = None
            else:
                update(kind, row[4:], ts, indexes[i])
        if buffer:
            if own is not None:
                buffer.append(own)
            slots[i] = b",\n".join(buffer)
            del buffer[:]
    buffer[:0] = saved


def _rows_at(batch, chunk, at: np.ndarray):
    return chunk.rows_at(at) if chunk is not None else [batch.rows[i] for i in at.tolist()]


def _counts_of(batch, chunk, at: np.ndarray) -> tuple[list, list]:
    """The ``pfn`` and ``n`` (fields 1 and 2, as the lives read them) of the PTE sets
    and clears at ``at``."""
    if chunk is None:
        rows = batch.rows
        return [rows[i][5] for i in at.tolist()], [rows[i][6] for i in at.tolist()]
    pfn_of = np.empty(len(batch), object)
    n_of = np.empty(len(batch), object)
    for kind in (_SET, _CLEAR):
        columns = chunk.field_columns(kind)
        if columns:
            where = np.flatnonzero(chunk.kinds == kind)
            pfn_of[where] = columns[1].tolist()
            n_of[where] = columns[2].tolist()
    return pfn_of[at].tolist(), n_of[at].tolist()
