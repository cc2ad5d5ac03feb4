"""``ptviz info TRACE``: what a trace is, its time span, events per kind and per CPU."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable

from replayer.units import format_bytes, format_duration, format_ts

from .errors import EXIT_OK, warn
from .header_text import header_lines
from .output import TRACE_HELP, emit

if TYPE_CHECKING:
    from replayer.traceio import TraceReader

_NOT_DESCRIPTIVE = ("format", "version", "kinds")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print a trace's header, time span and event counts",
                       description="Print a trace's header, its time span and the number of "
                                   "events per kind and per CPU. Reads ptviz traces, ftrace "
                                   "text and trace.dat, also compressed (.gz, .xz, .zst). "
                                   "Every chunk is decoded and "
                                   "checked, and the counts are made from the events (and "
                                   "compared with the footer's); --quick checks only the "
                                   "checksums and takes the counts from the footer.")
    p.add_argument("trace", help=TRACE_HELP)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object for machines instead of text")
    p.add_argument("--quick", action="store_true",
                   help="verify checksums only; counts as the footer says (not checked)")
    p.set_defaults(run=run)


def summarize(reader: TraceReader, checked: bool = True,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The facts ``info`` prints, as plain data (the ``--json`` schema). ``checked``:
    decode every chunk and count from the events (``progress(done, total)`` after
    each); else trust the footer."""
    by_kind, by_cpu = reader.verify_counts(progress) if checked else reader.counts()
    span = reader.time_span
    return {
        "path": reader.path,
        "bytes": reader.size,
        "format": reader.header["format"],
        "version": reader.header["version"],
        "chunks": len(reader.chunks),
        "footer": reader.has_footer,
        "header": {k: _plain(v) for k, v in reader.header.items() if k not in _NOT_DESCRIPTIVE},
        "kinds": [{"id": s.id, "name": s.name, "fields": list(s.fields)} for s in reader.kinds],
        "events": reader.event_count,
        "first_ts": span[0] if span else None,
        "last_ts": span[1] if span else None,
        "duration_ns": span[1] - span[0] if span else 0,
        "by_kind": dict(sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_cpu": {str(cpu): n for cpu, n in sorted(by_cpu.items(), key=_cpu_key)},
        "warnings": list(reader.warnings),
        "counts": "checked" if checked or not reader.has_footer else "footer",
        "truncated_at_byte": reader.truncated_at,
    }


def run(args: argparse.Namespace) -> int:
    from .inputs import open_trace
    from .progress import progress_bar
    with open_trace(args.trace) as reader:
        reader.verify_checksums()
        with progress_bar("check", reader.event_count if not args.quick else 0) as bar:
            facts = summarize(reader, checked=not args.quick, progress=bar.at)
    for w in facts["warnings"]:
        warn(w)
    emit(facts, args.json, render)
    return EXIT_OK


def render(facts: dict[str, Any]) -> str:
    lines = [facts["path"]]
    index = "footer index" if facts["footer"] else "NO footer index (scanned)"
    lines.append(f"  {'format':<10}{facts['format']} v{facts['version']}, "
                 f"{format_bytes(facts['bytes'])}, {_plural(facts['chunks'], 'chunk')}, {index}")
    for key, text in header_lines(facts["header"]):
        lines.append(f"  {key:<10}{text}")
    if facts["first_ts"] is not None:
        lines.append(f"  {'span':<10}{format_ts(facts['first_ts'])} → "
                     f"{format_ts(facts['last_ts'])} s "
                     f"({format_duration(facts['duration_ns'])})")
    lines.append(f"  {'events':<10}{facts['events']:,}" + (
        "" if facts["counts"] == "checked" else " (counts from the footer index, events not "
                                                "checked: drop --quick to check them)"))
    width = max((len(k) for k in facts["by_kind"]), default=4) + 2
    lines.append("events per kind")
    lines += [f"  {name:<{width}}{n:>12,}" for name, n in facts["by_kind"].items()]
    lines.append("events per CPU")
    lines += [f"  {'cpu' + cpu:<{width}}{n:>12,}" for cpu, n in facts["by_cpu"].items()]
    return "\n".join(lines) + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _plain(value: Any) -> Any:
    """Header values as JSON-friendly data (tuples → lists, bytes → hex)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _cpu_key(item: tuple) -> tuple:
    cpu = item[0]
    return (0, cpu) if isinstance(cpu, int) else (1, str(cpu))
