"""Import ftrace captures (tracefs text, ``trace-cmd report`` text, trace.dat) to a ptviz trace.

Streaming: lines are parsed and inferred one at a time; memory is bounded by
the reorder window (a few seconds of trace) and the live page tables.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
from typing import Any, Iterable, Iterator

from replayer.errors import ImportFormatError
from replayer.traceio import TraceWriter

from .infer import Inference
from .textparse import ParseStats, parse_lines

TRACE_DAT_MAGIC = b"\x17\x08\x44tracing"


def sniff(path: str) -> str:
    """``"ptviz"``, ``"trace.dat"`` or ``"text"``.

    Conservative: a ``.msgpack`` name, an empty file, a directory or anything that
    is not text goes to the ptviz reader, whose errors name the byte at fault.
    """
    if path.endswith(".msgpack"):
        return "ptviz"
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        from replayer.errors import MissingFile
        raise MissingFile("no such file", path) from None
    except (IsADirectoryError, PermissionError):
        return "ptviz"
    if head.startswith(TRACE_DAT_MAGIC):
        return "trace.dat"
    if not head or b"\0" in head:
        return "ptviz"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:     # not just a character cut at the 4 KiB edge
            return "ptviz"
    return "text"


def _trace_cmd_lines(path: str) -> Iterator[str]:
    exe = shutil.which("trace-cmd")
    if exe is None:
        raise ImportFormatError("is a trace.dat file; reading it needs trace-cmd "
                                "(apt-get install trace-cmd), which is not installed", path)
    proc = subprocess.Popen([exe, "report", "-i", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    assert proc.stdout is not None
    try:
        yield from proc.stdout
    finally:
        proc.stdout.close()
        err = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise ImportFormatError(f"trace-cmd report failed: {err.strip()[:200]}", path)


def import_lines(lines: Iterable[str], out: str | os.PathLike, header: dict[str, Any],
                 source_path: str) -> dict[str, Any]:
    """Parse, infer and write; returns the import statistics."""
    stats = ParseStats()
    # The reorder window holds seconds of events (hundreds of thousands of tuples that
    # live until written): the cyclic collector would rescan them again and again,
    # for nothing (none of them forms a cycle). Off for the import, as msgpack does.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with TraceWriter(out, {"source": "ftrace", "clock": "ns (trace clock)",
                               **header}) as w:
            inference = Inference(w.add,
                                  pt_reclaim=(header.get("kernel") or {}).get("pt_reclaim"))
            for rec in parse_lines(lines, stats):
                inference.feed(rec)
            inference.finish()
            written = w.events_written
    finally:
        if collecting:
            gc.enable()
    if stats.events == 0 and stats.lines > 0 and stats.bad_count:
        line, text = stats.bad[0]
        raise ImportFormatError(f"no ftrace event line found (first bad line: {text!r})",
                                source_path, f"line {line}")
    return {"lines": stats.lines, "events_read": stats.events, "events_written": written,
            "bad_lines": stats.bad_count, "first_bad": stats.bad[:5],
            "continuations": stats.continuations, **inference.counts}


def import_file(path: str, out: str | os.PathLike, header: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    kind = sniff(path)
    if kind == "ptviz":
        raise ImportFormatError("is already a ptviz trace", path)
    if kind == "trace.dat":
        return import_lines(_trace_cmd_lines(path), out, header or {}, path)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return import_lines(f, out, header or {}, path)
