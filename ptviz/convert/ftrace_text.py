"""ftrace text out: a ptviz trace as the lines tracefs prints, read back by ptviz.

Each event is one line in the tracefs layout (task-pid, [CPU], flags, seconds
with nine digits, the event's name, its payload), so lnav, grep and the ftrace
parsers of other tools take it as a capture. What each kind becomes:

* ``marker`` → ``tracing_mark_write: TEXT``, the kernel's own line;
* ``raw`` (an event ptviz kept as captured) → ``NAME: PAYLOAD`` as captured;
* every ptviz event (table steps, zaps, TLB flushes, IPIs, RCU...) →
  ``ptviz_KIND: field=value ...``. Most have no tracepoint (ptviz infers them)
  and the kernel lines of those that do lack fields ptviz keeps (a tlb_flush line
  has no mm or range), so they are written under ptviz's own names, with every
  field: values are numbers (addresses in hex), ``null``, ``true``/``false``, or
  JSON strings, arrays and objects.

The header comment ``# ptviz-header: {...}`` (the trace header as JSON) and
``# ptviz-note:`` lines make ptviz's importer read the file back as exactly these
events (:meth:`ptviz.ftrace.infer.Inference` in its exported mode), with the
same architecture and kernel facts, so a round trip replays to the same report.
A task with no pid is written ``<none>-0``, an unknown comm ``<...>``.
"""

from __future__ import annotations

import json
import re
from array import array
from operator import itemgetter
from typing import Any, BinaryIO

import numpy as np

from replayer.errors import UsageError
from replayer.filters import HEX_FIELDS
from replayer.vocab import MARKER, N_COMMON, RAW

from .jsonl import dumps, to_json

_NAME = re.compile(r"[\w.-]+\Z")
_SAFE_COMM = re.compile(r"[^\r\n]*\Z")
_PID_END = 1 << 32                  # what the text parser takes
_DASH_PID = re.compile(r"-\d+\s")      # would end the comm column early
PREFIX = "ptviz_"
_TS_END = (1 << 63) - 1


def _value(key: str, x: Any) -> str:
    if x is None:
        return "null"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if type(x) is int:
        return f"{x:#x}" if key in HEX_FIELDS and x >= 0 else str(x)
    if type(x) is str:
        return json.dumps(x, ensure_ascii=False)
    return dumps(to_json(x)).decode()


def payload(names: tuple[str, ...], values: tuple) -> str:
    """``k=v k=v`` for a ptviz_* line."""
    return " ".join(f"{k}={_value(k, x)}" for k, x in zip(names, values))


def parse_payload(text: str) -> dict[str, Any]:
    """Back from :func:`payload`; ValueError says what is wrong. Only JSON is decoded
    (``json.JSONDecoder.raw_decode``), nothing is evaluated."""
    from .jsonl import from_json
    out: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise ValueError(f"no '=' after {text[i:i + 20]!r}")
        key = text[i:eq]
        i = eq + 1
        if i < n and text[i] in "\"[{":
            value, i = decoder.raw_decode(text, i)
            value = from_json(value)
        else:
            end = text.find(" ", i)
            end = n if end < 0 else end
            token = text[i:end]
            i = end
            if token in ("null", "true", "false"):
                value = {"null": None, "true": True, "false": False}[token]
            else:
                value = int(token, 0)
        out[key] = value
    return out


def _task(pid: int | None, comm: str | None) -> tuple[str, str]:
    """The ``comm-pid`` column, and what the payload must add to say it exactly."""
    extra = ""
    if pid is None:
        shown, number = "<none>", 0
        if comm is not None:
            extra = f" _comm={json.dumps(comm, ensure_ascii=False)}"
    else:
        number = pid
        if comm is None:
            shown = "<...>"
        elif _plain(comm) and comm not in ("<...>", "<none>") and \
                not _DASH_PID.search(comm) and ":  " not in comm:
            shown = comm
        else:
            shown, extra = "<...>", f" _comm={json.dumps(comm, ensure_ascii=False)}"
    if pid is not None and not 0 <= pid < _PID_END:
        number, extra = 0, extra + f" _pid={pid}"
    return f"{shown:>16}-{number:<7}", extra


def write_text(stream, batches, out: BinaryIO, progress=None) -> int:
    """Write ``stream``'s header and batches as ftrace text to ``out``. Returns the
    events written. O(events); memory: one batch."""
    header = {"format": "ptviz", **stream.header, "kinds": stream.kinds.to_header()}
    cpus = stream.header.get("cpus")
    head = ["# tracer: nop", f"# ptviz-header: {dumps(to_json(header)).decode()}"]
    head += [f"# ptviz-note: {' '.join(str(n).split())}" for n in stream.notes]
    head += ["#", f"# entries-in-buffer/entries-written: {stream.total}/{stream.total}   "
                  f"#P:{cpus if isinstance(cpus, int) else '?'}", "#",
             "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
             "#              | |         |   |||||     |         |"]
    out.write(("\n".join(head) + "\n").encode())
    specs = stream.kinds.by_id
    templates = {spec.id: _template(spec) for spec in stream.kinds}
    written = 0
    for batch in batches:
        out.write(_lines(batch, specs, templates).encode())
        written += len(batch)
        if progress is not None:
            progress(len(batch))
    return written


def _template(spec) -> str | None:
    """``%`` template of a kind's ptviz_ line (task, CPU, time, then the converted
    fields), or None for the kinds written another way. (``%`` formats a line at
    about half the cost of ``str.format``.)"""
    if spec.id in (MARKER, RAW) or not _NAME.match(spec.name) or \
            not all(_NAME.match(f) for f in spec.fields):
        return None
    fields = " ".join(f"{f}=%s" for f in spec.fields)
    return f"%s [%03d] ..... %s: {PREFIX}{spec.name}: {fields}".rstrip()


def _lines(batch, specs: dict, templates: dict) -> str:
    """A batch's lines: column by column for each kind (conversions in C through
    ``map``; a whole chunk's columns as they are, no row made), row by row only for
    markers, raw events and odd tasks. O(events) in C."""
    n = len(batch)
    stamps = np.frombuffer(batch.stamps, np.int64) if isinstance(batch.stamps, array) \
        else np.array(batch.stamps, np.int64)
    if n and (int(stamps.min()) < 0 or int(stamps.max()) >= _TS_END):
        bad = int(stamps.min()) if int(stamps.min()) < 0 else int(stamps.max())
        raise UsageError(f"an event at {bad} ns: ftrace text holds times from 0 to "
                         f"2**63 - 2 ns")
    secs, ns = np.divmod(stamps, 1_000_000_000)
    times = np.array(list(map("%5d.%09d".__mod__, zip(secs.tolist(), ns.tolist()))), object)
    chunk = batch.chunk if batch.chunk is not None and batch.chunk.has_columns else None
    if chunk is not None:
        pids = chunk.pids_at(np.arange(n)).tolist()
        kinds = chunk.kinds
    else:
        rows = batch.rows
        pids = list(map(itemgetter(3), rows))
        kinds = np.fromiter(map(itemgetter(0), rows), np.int64, n)
    comm_of = batch.comms.get
    task_of = {p: _task(p, comm_of(p)) for p in set(pids)}
    tasks = list(map(task_of.__getitem__, pids))
    shown = np.array([t[0] for t in tasks], object)
    odd = {p for p, t in task_of.items() if t[1]}    # tasks whose line needs _pid/_comm
    order = np.argsort(kinds, kind="stable")
    cuts = np.flatnonzero(np.diff(kinds[order])) + 1
    lines = np.empty(n, object)
    for at in np.split(order, cuts) if n else ():
        where = at.tolist()
        kind = int(kinds[at[0]])
        template = templates[kind]
        has_odd = bool(odd) and any(pids[i] in odd for i in where)
        if template is not None and not has_odd:
            spec = specs[kind]
            if chunk is not None:
                cpus = chunk.cpus[at].tolist()
                values = [c.tolist() for c in chunk.field_columns(kind)]
            else:
                columns = list(zip(*[rows[i] for i in where]))
                cpus, values = columns[2], columns[N_COMMON:]
            converted = [_column(f, x) for f, x in zip(spec.fields, values)]
            lines[at] = list(map(template.__mod__, zip(shown[at].tolist(), cpus,
                                                        times[at].tolist(), *converted)))
        else:
            group = list(chunk.rows_at(at)) if chunk is not None else [rows[i] for i in where]
            made = _kernel_lines(kind, group, shown[at].tolist(), times[at].tolist()) \
                if not has_odd else None
            lines[at] = made if made is not None else [
                _line(row, tasks[i], times[i], specs) for row, i in zip(group, where)]
    return "\n".join(lines.tolist()) + "\n" if n else ""


def _kernel_lines(kind: int, group: list, shown: list, times: list) -> list[str] | None:
    """Markers and raw events of a batch as their kernel lines, when all of them can
    be (else None: they go row by row)."""
    if kind == MARKER:
        columns = list(zip(*group))
        names, texts = ["tracing_mark_write"] * len(group), columns[N_COMMON]
    elif kind == RAW:
        columns = list(zip(*group))
        names = columns[N_COMMON]
        if set(map(type, names)) != {str}:
            return None
        line_name = {n: _line_name(n) for n in set(names)}
        texts = [x.get("text") if type(x) is dict and len(x) == 1 else None
                 for x in columns[N_COMMON + 1]]
        if not all(map(line_name.__getitem__, names)):
            return None
    else:
        return None
    # _plain, for every text at once (in C): strings, none empty, no spaces at the ends,
    # no line breaks.
    if set(map(type, texts)) != {str} or not all(texts) or \
            list(map(str.strip, texts)) != list(texts):
        return None
    joined = "".join(texts)
    if "\n" in joined or "\r" in joined:
        return None
    return list(map("%s [%03d] ..... %s: %s: %s".__mod__, zip(shown, columns[2], times, names,
                                                           texts)))


def _line_name(name: Any) -> bool:
    """A raw event's name a kernel line can carry and reads back as raw."""
    return type(name) is str and bool(_NAME.match(name)) and not name.startswith(PREFIX) \
        and name not in ("tracing_mark_write", "print")


def _line(row: tuple, task: tuple[str, str], time: str, specs: dict) -> str:
    """One event's line, the slow way (any kind, any value)."""
    shown, extra = task
    kind, fields = row[0], row[N_COMMON:]
    if kind == MARKER and _plain(fields[0]) and not extra:
        name, text = "tracing_mark_write", fields[0]
    elif kind == RAW and _is_line(fields) and not extra:
        name, text = fields[0], fields[1]["text"]
    else:
        spec = specs[kind]
        if _NAME.match(spec.name) and all(_NAME.match(f) for f in spec.fields):
            name, text = PREFIX + spec.name, payload(spec.fields, fields) + extra
        else:
            name = PREFIX + "event"
            text = f"_kind={json.dumps(spec.name)} {payload(spec.fields, fields)}{extra}"
    return f"{shown} [{row[2]:03d}] ..... {time}: {name}: {text}"


def _column(key: str, values: tuple) -> list[str]:
    """:func:`_value` of every value of a field, by ``map`` when they are all of one
    plain type (the usual case)."""
    types = set(map(type, values))
    if types == {int}:
        if key in HEX_FIELDS and min(values) >= 0:
            return list(map(hex, values))
        return list(map(str, values))
    if types == {type(None)}:
        return ["null"] * len(values)
    if types == {str}:
        encoded = {x: json.dumps(x, ensure_ascii=False) for x in set(values)}
        return list(map(encoded.__getitem__, values))
    return [_value(key, x) for x in values]


def _plain(text: Any) -> bool:
    """Text a line carries as it is: one line, no spaces at either end (the parser
    strips them), not empty."""
    return type(text) is str and bool(text) and text.strip() == text and \
        bool(_SAFE_COMM.match(text))


def _is_line(fields: tuple) -> bool:
    """A raw event kept as a captured line (name and payload text) that prints back
    as that line and reads back as the same raw event."""
    name, values = fields[0], fields[1]
    return (_line_name(name) and isinstance(values, dict) and list(values) == ["text"]
            and _plain(values["text"]))
