"""JSON Lines: a ptviz trace as text, one JSON object a line, lossless both ways.

Line 1 is the trace header (``format``, ``version``, ``kinds`` and the rest, as
the msgpack trace holds it) with two more keys: ``"jsonl": 1`` and ``"notes"``
(the footer's notes). Every other line is one event::

    {"ts":1200,"cpu":3,"pid":4127,"comm":"gcc","kind":"table_alloc",
     "fields":{"mm":140734,"level":1,"pfn":98315,"addr":94371840,"inferred":null}}

Values JSON cannot hold exactly are tagged: bytes as ``{"$bytes": base64}``, maps
with keys that are not strings (or that start with ``$``) as ``{"$map": [[k, v],
...]}``, non-finite floats as ``{"$float": "nan"}``. Reading never evaluates
anything: it is ``json.loads`` and these three tags.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from typing import Any, BinaryIO, Iterator

from replayer.errors import ImportFormatError, UsageError
from replayer.traceio.validate import RowChecks, column_error
from replayer.vocab import KINDS, N_COMMON, KindTable

try:                                  # orjson: ~5x faster than json for the event lines
    import orjson
except ImportError:                   # pragma: no cover - a dependency; json still works
    orjson = None

BATCH = 4096
#: The vocabulary's kinds whose field types (checked by the reader) are all JSON's own:
#: their events go straight to the encoder; others (raw, foreign) through :func:`to_json`.
_PLAIN_TYPES = {"u64", "u64?", "pid?", "str", "str?", "flag?", "level", "pfn", "count",
                "count?", "i64?", "cpus?", "pfns?"}
PLAIN_KINDS = frozenset(k.name for k in KINDS if set(k.types) <= _PLAIN_TYPES)


def to_json(value: Any) -> Any:
    """A msgpack value as JSON can hold it exactly (tags for the rest)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [to_json(x) for x in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: to_json(x) for k, x in value.items()}
        return {"$map": [[to_json(k), to_json(x)] for k, x in value.items()]}
    raise TypeError(f"a {type(value).__name__} value")


def from_json(value: Any) -> Any:
    """Back from :func:`to_json`: arrays as tuples (as the msgpack reader gives them)."""
    if isinstance(value, list):
        return tuple(from_json(x) for x in value)
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key == "$bytes" and isinstance(inner, str):
                return base64.b64decode(inner, validate=True)
            if key == "$float" and inner in ("nan", "inf", "-inf"):
                return float(inner)
            if key == "$map" and isinstance(inner, list):
                return {_key(from_json(k)): from_json(x) for k, x in inner}
        return {k: from_json(x) for k, x in value.items()}
    return value


def _key(k: Any) -> Any:
    return k if not isinstance(k, (list, tuple)) else tuple(k)


def dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def write_jsonl(stream, batches, out: BinaryIO, progress=None) -> int:
    """Write ``stream``'s header and its :class:`.stream.Batch` es to ``out``. Returns
    the events written. O(events); memory: one batch. Each batch's lines are made
    kind by kind from columns (:mod:`.jsonl_columns`), or event by event
    (:func:`event_lines`) when a value asks for it: the same bytes either way."""
    header = {"format": "ptviz", "version": 2, **stream.header,
              "kinds": stream.kinds.to_header(), "jsonl": 1, "notes": list(stream.notes)}
    out.write(dumps(to_json(header)) + b"\n")
    plan = lines_plan(stream.kinds)
    columns_lines = None
    if orjson is not None:
        from .jsonl_columns import batch_lines as columns_lines
    written = 0
    for batch in batches:
        lines = columns_lines(batch, plan) if columns_lines is not None else None
        out.write(lines if lines is not None else event_lines(batch, plan))
        written += len(batch)
        if progress is not None:
            progress(len(batch))
    return written


def lines_plan(kinds: KindTable) -> dict[int, tuple]:
    """Kind id → ``(name, field names, plain)``: plain when the kind is the
    vocabulary's and its values are JSON's own (checked by the reader)."""
    return {s.id: (s.name, s.fields, s.name in PLAIN_KINDS and s == VOCAB.get(s.name))
            for s in kinds}


def event_lines(batch, plan: dict[int, tuple]) -> bytes:
    """A batch's lines (each ending with a newline), one event at a time: two dicts
    and an ``orjson.dumps`` each, about 1.5 µs an event. The reference the column
    writer (:mod:`.jsonl_columns`) matches byte for byte, and its fallback."""
    lines = []
    add = lines.append
    comm_of = batch.comms.get
    encode = orjson.dumps if orjson is not None else dumps
    for row, ts in zip(batch.rows, batch.stamps):
        kind = row[0]
        name, names, plain = plan[kind]
        named = dict(zip(names, row[4:]))
        pid = row[3]
        event = {"ts": ts, "cpu": row[2], "pid": pid, "comm": comm_of(pid), "kind": name,
                 "fields": named if plain else to_json(named)}
        try:
            add(encode(event))
        except TypeError:             # a value the reader let through as "any"
            event["fields"] = to_json(named)
            add(encode(event))
    add(b"")
    return b"\n".join(lines)


VOCAB = {k.name: k for k in KINDS}


def _bad(path: str, lineno: int, why: str) -> ImportFormatError:
    return ImportFormatError(why, path, f"line {lineno}")


@contextlib.contextmanager
def read_jsonl(path: str) -> Iterator:
    """A :class:`.stream.Stream` of a JSON Lines trace (as :func:`write_jsonl` writes
    it). Bad input is one line naming the file and line."""
    from .stream import Stream
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot open: {exc.strerror}", path) from None
    with f:
        first = f.readline()
        header = _object(path, 1, first)
        if header.get("jsonl") != 1 or not isinstance(header.get("kinds"), list):
            raise _bad(path, 1, "not a ptviz JSON Lines trace (its first line has no "
                                '"jsonl": 1 and "kinds")')
        header = from_json(header)
        kinds = KindTable()
        try:
            for entry in header["kinds"]:
                _, name, fields = entry
                kinds.merge(str(name), tuple(str(x) for x in fields))
        except (TypeError, ValueError):
            raise _bad(path, 1, '"kinds" is not a list of [id, name, [fields]]') from None
        notes = [str(n) for n in header.get("notes") or ()]
        meta = {k: x for k, x in header.items()
                if k not in ("format", "version", "kinds", "jsonl", "notes")}
        body = f.tell()
        first_ts = None
        line = f.readline()
        if line.strip():
            first_ts = _event(path, 2, line, kinds)[0]

        checks = RowChecks({spec.id: spec.types for spec in kinds if spec.types})

        def batches(columns) -> Iterator:     # every event (lines need not be in order)
            from .stream import Batch
            f.seek(body)
            rows: list = []
            stamps: list = []
            lines: list = []
            comms: dict = {}
            done = 0                      # events before this batch
            for lineno, raw in enumerate(f, 2):
                if not raw.strip():
                    continue
                ts, kind, cpu, pid, fields, comm = _event(path, lineno, raw, kinds)
                if len(rows) >= BATCH or comms.get(pid, comm) != comm:
                    _check(path, checks, kinds, rows, lines)
                    yield Batch(rows, stamps, comms, range(done, done + len(rows)))
                    done += len(rows)
                    rows, stamps, lines, comms = [], [], [], {}
                rows.append((kind, 0, cpu, pid, *fields))
                stamps.append(ts)
                lines.append(lineno)
                comms[pid] = comm
            if rows:
                _check(path, checks, kinds, rows, lines)
                yield Batch(rows, stamps, comms, range(done, done + len(rows)))
        yield Stream(meta, kinds, notes, 0, first_ts, batches)


def _check(path: str, checks: RowChecks, kinds: KindTable, rows: list, lines: list) -> None:
    """The checks the trace reader makes of every row (types and ranges of each kind's
    fields), so that what is written reads back; the first bad line is named."""
    if not rows:
        return
    try:
        ids = RowChecks.columns(rows)[0]
        bad = checks.fields(rows, ids) is not None
    except ValueError:
        bad = True
    if not bad:
        return
    for row, lineno in zip(rows, lines):
        spec = kinds.by_id[row[0]]
        if row[3] is not None and column_error([row[3]], "pid?"):
            raise _bad(path, lineno, f'"pid" {column_error([row[3]], "pid?")}')
        for name, code, value in zip(spec.fields, spec.types, row[N_COMMON:]):
            why = column_error([value], code) if code != "any" else None
            if why:
                raise _bad(path, lineno, f"{spec.name}: field {name!r} {why}")


def _object(path: str, lineno: int, raw: bytes) -> dict:
    try:
        obj = orjson.loads(raw) if orjson is not None else json.loads(raw)
    except ValueError as exc:
        raise _bad(path, lineno, f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _bad(path, lineno, "not a JSON object")
    return obj


def _event(path: str, lineno: int, raw: bytes, kinds: KindTable) -> tuple:
    e = _object(path, lineno, raw)
    ts, cpu, pid, comm, name = (e.get(k) for k in ("ts", "cpu", "pid", "comm", "kind"))
    fields = e.get("fields")
    if type(ts) is not int or type(cpu) is not int or not 0 <= cpu < 1 << 16 or \
            not -(1 << 63) <= ts < 1 << 63:
        raise _bad(path, lineno, '"ts" and "cpu" must be integers (ts in int64 ns, cpu '
                                 '0..65535)')
    if pid is not None and type(pid) is not int or comm is not None and \
            not isinstance(comm, str):
        raise _bad(path, lineno, '"pid" must be an integer or null, "comm" a string or null')
    spec = kinds.get(name) if isinstance(name, str) else None
    if spec is None or not isinstance(fields, dict):
        raise _bad(path, lineno, f'"kind" {name!r} is not in the header\'s kinds, or '
                                 f'"fields" is not an object')
    unknown = set(fields) - set(spec.fields)
    if unknown:
        raise _bad(path, lineno, f"{name}: no field {sorted(unknown)[0]!r} in the header's kinds")
    values = tuple(from_json(fields.get(k)) for k in spec.fields)
    return ts, spec.id, cpu, pid, values, comm
