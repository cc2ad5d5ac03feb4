"""The formats ``ptviz convert`` reads and writes, and how a path's format is told.

A format is named by ``--from``/``--to`` or found from the file name's ending;
for input, the content decides between ptviz msgpack, trace.dat and text (a
JSON Lines export starts with ``{``).
"""

from __future__ import annotations

from dataclasses import dataclass

from replayer.errors import UsageError


@dataclass(frozen=True)
class Format:
    name: str
    endings: tuple[str, ...]
    reads: bool
    writes: bool
    what: str


FORMATS = (
    Format("msgpack", (".msgpack",), True, True,
           "ptviz's own trace (FORMAT.md): every event, columnar, seekable"),
    Format("jsonl", (".jsonl", ".ndjson"), True, True,
           "JSON Lines: the header, then one event a line with named fields; lossless"),
    Format("ftrace", (".txt", ".trace", ".ftrace"), True, True,
           "tracefs text (trace, trace_pipe, trace-cmd report); written with ptviz's own "
           "events as ptviz_* lines, markers as tracing_mark_write, raw events as captured"),
    Format("trace.dat", (".dat",), True, False, "trace-cmd's binary capture (read through "
                                                 "trace-cmd report)"),
    Format("chrome", (".json", ".perfetto.json"), False, True,
           "Chrome Trace Event JSON, for Perfetto UI (ui.perfetto.dev) and chrome://tracing"),
)
BY_NAME = {f.name: f for f in FORMATS}


def describe() -> str:
    """The ``--formats`` table."""
    rows = [f"{'format':<10} {'read':<5} {'write':<6} {'file names':<24} what"]
    for f in FORMATS:
        rows.append(f"{f.name:<10} {'yes' if f.reads else '-':<5} {'yes' if f.writes else '-':<6} "
                    f"{', '.join('*' + e for e in f.endings):<24} {f.what}")
    return "\n".join(rows)


def _named(name: str, flag: str) -> Format:
    f = BY_NAME.get(name.lower())
    if f is None:
        raise UsageError(f"{flag} {name!r}: no such format; formats: "
                         f"{', '.join(BY_NAME)} (ptviz convert --formats)")
    return f


def output_format(path: str, flag: str | None) -> Format:
    """The format to write ``path`` in: ``--to``, else its ending."""
    if flag:
        f = _named(flag, "--to")
    else:
        f = next((f for f in FORMATS if f.writes and path.lower().endswith(f.endings)), None)
        if f is None:
            raise UsageError(f"convert: cannot tell the output format from {path!r}; name "
                             f"it with --to ({', '.join(x.name for x in FORMATS if x.writes)})")
    if not f.writes:
        raise UsageError(f"--to {f.name}: ptviz reads {f.name} but does not write it")
    return f


def input_format(path: str, flag: str | None) -> Format:
    """The format ``path`` is in: ``--from``, else what its first bytes say."""
    if flag:
        f = _named(flag, "--from")
        if not f.reads:
            raise UsageError(f"--from {f.name}: ptviz writes {f.name} but does not read it")
        return f
    from ..ftrace.importer import sniff
    kind = sniff(path)
    if kind == "ptviz":
        return BY_NAME["msgpack"]
    if kind == "trace.dat":
        return BY_NAME["trace.dat"]
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{") or path.lower().endswith((".jsonl", ".ndjson")):
        return BY_NAME["jsonl"]
    if path.lower().endswith(".json"):
        raise UsageError("convert: Chrome JSON is written, not read; convert from the "
                         "trace it was made from")
    return BY_NAME["ftrace"]
