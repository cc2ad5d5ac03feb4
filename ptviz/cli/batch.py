"""``ptviz batch TRACE|GLOB...``: replay many traces, one table row each, --fail-on per
trace (CI over a directory of captures)."""

from __future__ import annotations

import argparse
import glob
import os
import sys

from replayer.errors import UsageError

from .errors import EXIT_BAD_INPUT, EXIT_CONDITION, EXIT_OK, fail
from .output import TRACE_HELP, LazyHelpFormatter


def _epilog() -> str:
    from replayer.report import FAIL_ON_NAMES
    return f"""\
TRACE may be any input `ptviz replay` reads (ptviz trace, ftrace text, trace.dat,
compressed); a GLOB is expanded here ('traces/**/*.msgpack' recurses). Each trace is
one row of the table (-o: .parquet, .jsonl or .csv) with the columns `ptviz sweep`
writes, `fail_on` (the conditions that held) and `error` (a trace that could not be
read). On a cluster (--cluster) the workers open the traces: give paths on a filesystem
every worker shares, at the same place.
--fail-on takes what `ptviz replay --fail-on` takes: NAME or NAME OP VALUE. Names:
{", ".join(FAIL_ON_NAMES)}.
Exit status: 0, 1 when a --fail-on condition held for a trace (or cannot be decided:
it lost events), 2 bad usage or a trace that could not be read, 130 interrupted.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from .sweep import add_run_options
    p = sub.add_parser("batch", help="replay many traces into one table, --fail-on per "
                                     "trace (CI)",
                       description="Replay every trace given, on local processes or a Dask "
                                   "cluster: one table row per trace, --fail-on evaluated "
                                   "for each.",
                       epilog=_epilog, formatter_class=LazyHelpFormatter)
    p.add_argument("traces", nargs="+", metavar="TRACE|GLOB",
                   help="traces to replay, or quoted globs ('traces/*.msgpack', ** for "
                        "subfolders): each " + TRACE_HELP)
    p.add_argument("--fail-on", action="append", default=[], metavar="COND",
                   help="exit 1 when a condition holds for a trace, e.g. use_after_free")
    add_run_options(p)
    p.set_defaults(run=run)


def expand(patterns: list[str]) -> list[str]:
    """Paths in the order given, globs sorted, repeats dropped. A glob that matches
    nothing is a usage error; a plain path is kept as is (a worker may see it when this
    machine does not, and a missing one is that trace's row)."""
    out: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(glob.glob(pattern, recursive=True))
            if not found:
                raise UsageError(f"{pattern!r}: no file matches")
            out += found
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    from replayer.report import parse_fail_on
    from ..scale.driver import check_outputs, report_end, run_table
    from ..scale.executors import Task
    from ..scale.row import run_trace
    from ..scale.summary import batch_summary
    parse_fail_on(args.fail_on)                 # a bad condition before any work
    check_outputs(args.output, args.force, args.resume)
    traces = expand(args.traces)
    on_cluster = args.cluster is not None
    tasks = [Task(t, run_trace, (t, os.path.abspath(t), args.fail_on, on_cluster),
                  {"trace": t}) for t in traces]
    outcome = run_table("batch", tasks, "trace", args.output, args.force, args.resume,
                        args.jobs, args.cluster, unit="traces")
    sys.stdout.write(batch_summary(outcome.rows))
    report_end("batch", outcome, args.output, len(tasks))
    wanted = set(traces)
    mine = [r for r in outcome.rows if r["trace"] in wanted]
    for row in mine:
        if row.get("error"):
            fail(row["error"] if row["trace"] in row["error"]
                 else f"{row['trace']}: {row['error']}")
    held = [r for r in mine if r.get("fail_on")]
    for row in held:
        fail(f"fail-on: {row['trace']}: {row['fail_on']}")
    if held:
        return EXIT_CONDITION
    return EXIT_BAD_INPUT if any(r.get("error") for r in mine) else EXIT_OK
