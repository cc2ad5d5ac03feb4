"""Opening what users hand us: a ptviz trace, or an ftrace capture imported on the fly."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from replayer.traceio import TraceReader

from ..decompress import decompressed
from ..ftrace.importer import import_file, sniff
from .errors import warn


def warn_bad_lines(path: str, stats: dict) -> None:
    """One warning naming how many lines an import skipped, and the first one."""
    if stats["bad_lines"]:
        line, text = stats["first_bad"][0]
        warn(f"{path}: {stats['bad_lines']} line(s) not understood, first at line "
             f"{line}: {text!r}")


def describe_import(stats: dict) -> str:
    """One line on what an import found and how much of it the kernel showed."""
    if stats.get("exported"):
        return (f"a ptviz export: {stats['events_written']:,} events read back as written "
                f"(nothing inferred)")
    seen = stats.get("detach_seen", 0)
    line = (f"{stats['events_read']:,} events read, {stats['events_written']:,} written; "
            f"{stats['tables']} page-table pages, {stats['frees']} frees")
    if stats.get("probe_hits"):
        line += (f"; {stats['probe_hits']} probe hits, {seen} detaches seen by probes"
                 + (f", {stats['probe_unmapped']} hits not tied to a table"
                    if stats.get("probe_unmapped") else ""))
    return line


@contextlib.contextmanager
def open_trace(path: str) -> Iterator[TraceReader]:
    """A reader of the trace at ``path``; a compressed one (gzip, xz, zstd) is unpacked
    and text and trace.dat are imported to a temporary file first (removed
    afterwards). Messages name ``path`` either way."""
    with decompressed(path) as real:
        if sniff(real) == "ptviz":
            with TraceReader(real, name=path) as reader:
                yield reader
            return
        with tempfile.TemporaryDirectory(prefix="ptviz-import-") as tmp:
            imported = os.path.join(tmp, "imported.msgpack")
            warn_bad_lines(path, import_file(real, imported))
            with TraceReader(imported, name=path) as reader:
                yield reader
