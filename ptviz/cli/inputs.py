"""Opening what users hand us: a ptviz trace, or an ftrace capture imported on the fly."""

from __future__ import annotations

import contextlib
import tempfile
from typing import Iterator

from replayer.traceio import TraceReader

from ..ftrace.importer import open_reader
from .errors import warn


def bad_lines(stats: dict) -> str | None:
    """How many lines an import skipped, and the first one; None when it skipped none."""
    if not stats["bad_lines"]:
        return None
    line, text = stats["first_bad"][0]
    return f"{stats['bad_lines']} line(s) not understood, first at line {line}: {text!r}"


def warn_bad_lines(path: str, stats: dict) -> None:
    """One warning naming how many lines an import skipped, and the first one."""
    why = bad_lines(stats)
    if why:
        warn(f"{path}: {why}")


def describe_import(stats: dict) -> str:
    """One line on what an import found and how much of it the kernel showed."""
    if stats.get("exported"):
        return (f"a ptviz export: {stats['events_written']:,} events read back as written "
                f"(nothing inferred)")
    seen = stats.get("detach_seen", 0)
    raw, written = stats.get("raw", 0), stats["events_written"]
    line = (f"{stats['events_read']:,} kernel events read; {written:,} ptviz events written "
            f"from them ({written - raw:,} page-table, TLB, IPI and RCU steps derived, "
            f"{raw:,} other events kept as they were); {stats['tables']} page-table pages, "
            f"{stats['frees']} frees")
    if stats.get("probe_hits"):
        line += (f"; {stats['probe_hits']} probe hits, {seen} detaches seen by probes"
                 + (f", {stats['probe_unmapped']} hits not tied to a table"
                    if stats.get("probe_unmapped") else ""))
    return line


def stage_bar(bars: contextlib.ExitStack, what: str):
    """A progress callback ``(done, total, unit)`` for one stage of work: its bar is
    made at the first report (a ptviz trace, neither unpacked nor imported, shows
    none) and removed once ``done`` reaches ``total``, or when ``bars`` closes. One
    live bar at a time: unpacking's is gone before the import's shows."""
    from .progress import progress_bar
    own = contextlib.ExitStack()
    bars.callback(own.close)
    made: list = []

    def progress(done: int, total: int | None, unit: str) -> None:
        if len(made) > 1:
            return                     # this stage's bar is done
        if not made:
            made.append(own.enter_context(progress_bar(what, total, unit)))
        made[0].at(done)
        if total is not None and done >= total:
            made.append(None)
            own.close()
    return progress


def import_bar(bars: contextlib.ExitStack):
    """An import's progress callback (:func:`stage_bar`)."""
    return stage_bar(bars, "import")


@contextlib.contextmanager
def open_trace(path: str) -> Iterator[TraceReader]:
    """A reader of the trace at ``path``; a compressed one (gzip, xz, zstd) is unpacked
    and text and trace.dat are imported to a temporary file first (removed
    afterwards). Messages name ``path`` either way."""
    with tempfile.TemporaryDirectory(prefix="ptviz-import-") as tmp:
        with contextlib.ExitStack() as bars:
            reader, stats = open_reader(path, tmp, progress=import_bar(bars),
                                        unpacking=stage_bar(bars, "unpack"))
        if stats is not None:
            warn_bad_lines(path, stats)
        with reader:
            yield reader
