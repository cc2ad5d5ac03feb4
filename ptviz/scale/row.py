"""One point's row: what a worker runs, a local process or a Dask worker alike.

A row is a flat dict of scalars (a table row for Parquet, CSV or JSON Lines): the point's
own columns, then :data:`METRICS` from the replay's report (replayer/REPORT.md), then
``seconds``. A point that fails is still a row: its own columns, ``error`` (one line) and
``seconds``, metrics empty. Nothing here raises for a bad point; only a worker dying
(or the process being interrupted) loses a row, and the collecting side reruns it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Iterator

from replayer.state import CLASSES, FINDING_KINDS

PEAK_CLASSES = ("empty_attached", "live", "in_flight")

#: The report's figures in each row, in table order, named as the report names them:
#: ``page_table_bytes_*`` are every table page not yet freed (the kernel's PageTables),
#: the peak and at the end; ``vmpte_bytes_last_marker`` the VmPTE of the process the
#: last marker is about, then (null without markers). Classes are PTE tables
#: (``<class>_tables`` a count); ``<finding kind>`` counts findings.
METRICS = (
    ("events", "page_table_bytes_peak", "page_table_bytes_end", "vmpte_bytes_last_marker")
    + tuple(f"{c}_{u}" for c in CLASSES for u in ("tables", "bytes"))
    + tuple(f"peak_{c}_{u}" for c in PEAK_CLASSES for u in ("tables", "bytes"))
    + ("findings",) + FINDING_KINDS
    + ("tlb_flushes", "ipis_sent", "ipis_received", "grace_periods", "rcu_invoked",
       "syncs", "sync_wait_ns", "lost_events", "counts_trusted", "warnings")
)


def report_columns(report: dict[str, Any]) -> dict[str, Any]:
    """The :data:`METRICS` of a replay report. O(findings + CPUs + markers)."""
    row: dict[str, Any] = {
        "events": report["trace"]["events"],
        "page_table_bytes_peak": report["page_tables"]["peak_bytes"],
        "page_table_bytes_end": report["page_tables"]["bytes"],
        "vmpte_bytes_last_marker": (report["markers"][-1]["vmpte_bytes"]
                                    if report["markers"] else None),
    }
    for cls in CLASSES:
        row[f"{cls}_tables"] = report["tables"][cls]["count"]
        row[f"{cls}_bytes"] = report["tables"][cls]["bytes"]
    for cls in PEAK_CLASSES:
        row[f"peak_{cls}_tables"] = report["peaks"][cls]["count"]
        row[f"peak_{cls}_bytes"] = report["peaks"][cls]["bytes"]
    row["findings"] = len(report["findings"])
    for kind in FINDING_KINDS:
        row[kind] = 0
    for f in report["findings"]:
        row[f["kind"]] = row.get(f["kind"], 0) + 1
    cpus = report["cpus"]
    for name in ("tlb_flushes", "ipis_sent", "ipis_received"):
        row[name] = sum(c[name] for c in cpus)
    row["grace_periods"] = report["rcu"]["grace_periods"]
    row["rcu_invoked"] = report["rcu"]["invoked"]
    row["syncs"] = sum(s["count"] for s in report["syncs"].values())
    row["sync_wait_ns"] = sum(s["wait_ns"] for s in report["syncs"].values())
    row["lost_events"] = sum(c["lost_events"] for c in cpus)
    row["counts_trusted"] = report["counts_trusted"]
    row["warnings"] = " | ".join(report["trace"]["warnings"]) or None
    return row


def one_line(exc: BaseException) -> str:
    """An exception as the one line a table cell holds."""
    from replayer.errors import BadInput
    if isinstance(exc, BadInput):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


#: Scratch directories this process has open: a worker ended by a signal leaves
#: through ``os._exit`` (no ``finally`` runs), and removes them first.
_SCRATCH: set[str] = set()


@contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A temporary directory removed on leaving, or by :func:`remove_scratch_dirs`;
    named with the worker's pid (``ptviz-sweep-PID-...``), so that one left by a
    worker killed outright (SIGKILL) says whose it was."""
    path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")
    _SCRATCH.add(path)
    try:
        yield path
    finally:
        _SCRATCH.discard(path)
        shutil.rmtree(path, ignore_errors=True)


def remove_scratch_dirs() -> None:
    """Remove every scratch directory still open (the worker is ending)."""
    for path in list(_SCRATCH):
        shutil.rmtree(path, ignore_errors=True)
        _SCRATCH.discard(path)


def _replay_report(path: str) -> dict[str, Any]:
    from replayer.replay import Replay
    from replayer.report import build_report
    with Replay.load(path) as replay:
        return build_report(replay)


def run_point(point, keep_dir: str | None = None) -> dict[str, Any]:
    """Simulate ``point`` (a :class:`ptviz.scale.grid.Point`) and replay it: its row.
    The trace goes to ``keep_dir`` (replacing one of the same name) or to a temporary
    directory removed afterwards. O(the point's events)."""
    from ..sim.run import simulate
    started = time.perf_counter()
    row = point.columns()
    row["trace"] = None
    try:
        with scratch_dir("ptviz-sweep-") as tmp:
            path = os.path.join(keep_dir or tmp, point.trace_name())
            simulate(path, point.arch, point.kernel, point.workload, dict(point.params),
                     dict(point.flags), cpus=point.cpus, seed=point.seed,
                     command=point.command(), force=True)
            row.update(report_columns(_replay_report(path)))
            row["trace"] = path if keep_dir else None
            row["error"] = None
    except Exception as exc:        # noqa: BLE001 - any failure is this point's row
        row["error"] = one_line(exc)
        if keep_dir and not os.path.isdir(keep_dir):
            row["error"] += _shared_hint(keep_dir)
    row["seconds"] = round(time.perf_counter() - started, 6)
    return row


def _shared_hint(path: str) -> str:
    return (f" (on {socket.gethostname()}: a worker sees only its own filesystem; on a "
            f"cluster give paths on a filesystem every worker shares, mounted at the same "
            f"place)")


def run_trace(name: str, path: str, fail_on: list[str], on_cluster: bool = False
              ) -> dict[str, Any]:
    """Replay the trace at ``path`` (any input ``ptviz replay`` reads; ``name`` is how
    the user gave it) and evaluate ``fail_on`` on it: its row, ``fail_on`` being the
    conditions that held or cannot be decided (null when none). O(the trace's events)."""
    from replayer.errors import MissingFile
    from replayer.report import failed_conditions, parse_fail_on, undecided_conditions
    from replayer.report import what_was_lost
    from ..cli.inputs import bad_lines
    from ..ftrace.importer import open_reader
    started = time.perf_counter()
    row: dict[str, Any] = {"trace": name}
    try:
        conditions = parse_fail_on(fail_on)
        from replayer.replay import Replay
        from replayer.report import build_report
        # Not ptviz.cli.inputs.open_trace: a worker draws no progress bar (its stderr
        # may be the terminal the sweep's own bar is on) and prints no warning; what the
        # import skipped goes into the row's warnings.
        with scratch_dir("ptviz-import-") as tmp:
            reader, stats = open_reader(path, tmp)
            with reader:
                report = build_report(Replay.load(reader))
        skipped = bad_lines(stats) if stats is not None else None
        if skipped:
            report["trace"]["warnings"].append(skipped)
        row.update(report_columns(report))
        held = failed_conditions(report, conditions)
        held += [f"{text}: cannot be decided, {what_was_lost(report)}"
                 for text in undecided_conditions(report, conditions)]
        row["fail_on"] = "; ".join(held) or None
        row["error"] = None
    except Exception as exc:        # noqa: BLE001 - any failure is this trace's row
        row["error"] = one_line(exc)
        if on_cluster and (isinstance(exc, (MissingFile, OSError))
                           or not os.path.exists(path)):
            row["error"] += _shared_hint(path)
    row["seconds"] = round(time.perf_counter() - started, 6)
    return row


def worker_ready() -> str:
    """What a worker answers before a cluster run: the ptviz it would run (run on every
    worker with ``Client.run``; a worker without ptviz fails to unpickle this)."""
    from replayer import __version__
    return __version__
