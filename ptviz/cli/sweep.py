"""``ptviz sweep``: a grid of simulations, each replayed, one table row per point."""

from __future__ import annotations

import argparse
import os
import sys

from replayer.errors import UsageError

from .errors import EXIT_BAD_INPUT, EXIT_OK, warn
from .output import LazyHelpFormatter

EPILOG = """\
Each list is comma-separated; the grid is their product, seeds innermost. --arch and
--kernel also take `all`. --set and --param take NAME=V1,V2 and may be repeated for
other names (ptviz simulate --help lists them).

The table (-o) is Parquet, JSON Lines or CSV by its extension: one row per point with
its grid values and seed, events, page-table bytes (peak, at the end, at the last
marker), PTE tables by class with peaks, findings by kind, TLB flushes, IPIs, grace
periods, syncs, seconds taken, and `error` for a point that failed. A summary in words
goes to stdout.

Examples:
  ptviz sweep --arch x86_64,arm64 --kernel 7.0 --workload walkers \\
      --set table_free=semi_rcu,rcu --seeds 0..99 -o uaf.parquet
  ptviz sweep --arch all --kernel 6.13,6.14 --param size=256M -o empty.csv
  ptviz sweep ... --cluster tcp://scheduler:8786       (dask scheduler / dask worker)
  ptviz sweep ... -o uaf.parquet --resume              (after ctrl+c: run the rest)
Exit status: 0 (points that failed are rows with their error), 2 bad usage or every
point failed, 130 interrupted (the finished rows are written).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="simulate and replay a grid of arches, kernels, "
                                     "flags, parameters and seeds into one table",
                       description="Simulate every point of a grid and replay it, on local "
                                   "processes or a Dask cluster; one table row per point.",
                       epilog=EPILOG, formatter_class=LazyHelpFormatter)
    p.add_argument("--arch", default="x86_64", metavar="LIST",
                   help="architectures, or all (default x86_64)")
    p.add_argument("--kernel", default="6.14", metavar="LIST",
                   help="kernel versions, or all (default 6.14)")
    p.add_argument("--workload", default="coverletter", metavar="LIST",
                   help="workloads (default coverletter)")
    p.add_argument("--cpus", default="4", metavar="LIST", help="CPU counts (default 4)")
    p.add_argument("--set", action="append", default=[], dest="flags",
                   metavar="FLAG=V1,V2", help="kernel flag values, e.g. "
                                              "table_free=semi_rcu,rcu")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="workload or model parameter values, e.g. size=64M,1G")
    p.add_argument("--seeds", default="1", metavar="SEEDS",
                   help="seeds: N, A..B (both included) or a list, e.g. 0..99 (default 1)")
    add_run_options(p)
    p.add_argument("--keep", metavar="DIR",
                   help="keep each point's trace in DIR (created if missing); without it "
                        "traces are removed once replayed")
    p.set_defaults(run=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options sweep and batch share: the table, resuming, where points run."""
    p.add_argument("-o", "--output", metavar="TABLE",
                   help="the table: .parquet (needs ptviz[cluster]), .jsonl or .csv; "
                        "written atomically")
    p.add_argument("--force", action="store_true", help="replace TABLE if it exists")
    p.add_argument("--resume", action="store_true",
                   help="keep TABLE's rows and run only the points it lacks (or that "
                        "failed)")
    p.add_argument("--jobs", metavar="N",
                   help="local worker processes (default: this machine's cores)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run on the Dask scheduler at ADDRESS, e.g. tcp://host:8786 "
                        "(needs ptviz[cluster] here and on the workers)")


def _keep_dir(args: argparse.Namespace, points: list) -> str | None:
    """``--keep DIR`` made absolute (workers may run elsewhere) and created; refuses to
    replace a trace of this grid already there without --force or --resume."""
    if args.keep is None:
        return None
    keep = os.path.abspath(args.keep)
    try:
        os.makedirs(keep, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--keep: cannot make the directory ({exc.strerror})", keep) \
            from None
    if not (args.force or args.resume):
        there = [p for p in points if os.path.exists(os.path.join(keep, p.trace_name()))]
        if there:
            raise UsageError(f"--keep: holds {len(there):,} trace(s) of this grid already, "
                             f"e.g. {there[0].trace_name()}; --force replaces them", keep)
    return keep


def run(args: argparse.Namespace) -> int:
    from ..scale.driver import check_outputs, report_end, run_table
    from ..scale.executors import Task
    from ..scale.grid import grid
    from ..scale.row import run_point
    from ..scale.summary import sweep_summary
    points = grid(args.arch, args.kernel, args.workload, args.cpus, args.flags, args.param,
                  args.seeds)
    check_outputs(args.output, args.force, args.resume)
    keep = _keep_dir(args, points)
    tasks = [Task(p.key, run_point, (p, keep), {**p.columns(), "trace": None})
             for p in points]
    outcome = run_table("sweep", tasks, "point", args.output, args.force, args.resume,
                        args.jobs, args.cluster)
    sys.stdout.write(sweep_summary(outcome.rows))
    report_end("sweep", outcome, args.output, len(tasks))
    bad = [r for r in outcome.rows if r.get("error")]
    if bad and len(bad) == len(outcome.rows):
        warn(f"every point failed, e.g. {bad[0]['point']}: {bad[0]['error']}")
        return EXIT_BAD_INPUT
    if bad:
        warn(f"{len(bad):,} point(s) failed (their rows carry the error), e.g. "
             f"{bad[0]['point']}: {bad[0]['error']}")
    return EXIT_OK
