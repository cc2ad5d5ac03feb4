"""Running a table of points from the command line: pick the workers, skip what an
earlier table already holds (``--resume``), show progress, write the table now and then
and at the end, and on ctrl+c or SIGTERM keep what finished.

``sweep`` and ``batch`` differ only in their tasks and their key column; both come here.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from replayer.errors import UsageError

from .executors import Cluster, LocalPool, Task, collect, local_cores
from .table import ordered, read_table, table_format, write_table

#: A table with new rows is rewritten this often while the points run, so a run that
#: is killed outright (SIGKILL, a lost machine) still leaves its rows for --resume.
CHECKPOINT_S = 30.0


@dataclass
class Outcome:
    """What a run left: the rows written (this run's points in order, then an earlier
    table's others), how many points ran now, and how it ended."""

    rows: list[dict]
    ran: int
    reused: int
    seconds: float
    where: str
    unit: str
    interrupted: BaseException | None = None
    failed: list[dict] = field(default_factory=list)


def check_outputs(output: str | None, force: bool, resume: bool) -> None:
    """Refuse a bad ``-o`` before any work: its format (and pyarrow for .parquet), an
    existing file without --force or --resume, --resume without a table."""
    from replayer.traceio.atomic import check_output
    if output is None:
        if resume:
            raise UsageError("--resume needs -o TABLE: the table to complete")
        return
    table_format(output)
    check_output(output, force or (resume and os.path.exists(output)))


def workers_for(jobs: str | None, cluster: str | None):
    """The local pool (``--jobs``, default: this machine's cores) or a Dask cluster."""
    if cluster is not None:
        if jobs is not None:
            raise UsageError("--jobs and --cluster: give one (a cluster has its own "
                             "workers)")
        return Cluster(cluster)
    from ..sim.run import parse_int
    n = local_cores() if jobs is None else parse_int(jobs, "--jobs", 1, 4096)
    return LocalPool(n)


def run_table(what: str, tasks: list[Task], key: str, output: str | None, force: bool,
              resume: bool, jobs: str | None, cluster: str | None,
              unit: str = "points") -> Outcome:
    """Run ``tasks`` (those not already in the table when resuming) and write the table.
    Never raises for a point; an interrupt is returned in ``Outcome.interrupted`` after
    the finished rows are written, for the caller to re-raise."""
    from ..cli.errors import Terminated
    from ..cli.progress import progress_bar
    earlier = read_table(output, key) if resume and output and os.path.exists(output) else []
    # A point that failed before runs again: its failure may have been the machine's.
    rows = {r[key]: r for r in earlier if not r.get("error")}
    rows.update({r[key]: r for r in earlier if r[key] not in rows and
                 r[key] not in {t.key for t in tasks}})
    reused = sum(1 for t in tasks if t.key in rows)
    todo = [t for t in tasks if t.key not in rows]
    workers = workers_for(jobs, cluster)
    where = workers.describe()
    print(f"ptviz: {what}: {len(todo):,} {unit} to run on {where}"
          + (f"; {reused:,} already in {output}" if reused else ""), file=sys.stderr)
    keys, earlier_keys = [t.key for t in tasks], [r[key] for r in earlier]
    written = [False]
    last_write = [time.monotonic()]
    new_rows = [0]
    failed: list[dict] = []

    def save() -> None:
        if output is not None:
            write_table(output, ordered(rows, keys, earlier_keys),
                        force=force or resume or written[0])
            written[0] = True
            last_write[0] = time.monotonic()
            new_rows[0] = 0

    started = time.monotonic()
    interrupted: BaseException | None = None
    with progress_bar(what, len(todo), unit=unit) as bar:
        def on_row(row: dict | None) -> None:
            if row is not None:
                new_rows[0] += 1
                if row.get("error"):
                    failed.append(row)
                    bar.note(f"({len(failed)} failed)")
                bar(1)
            else:
                bar(0)          # a tick: the rate and ETA move on
            if new_rows[0] and time.monotonic() - last_write[0] >= CHECKPOINT_S:
                save()
        try:
            collect(workers, todo, rows, on_row)
        except (KeyboardInterrupt, Terminated) as exc:
            interrupted = exc
        finally:
            workers.close(cancel=interrupted is not None)
    seconds = time.monotonic() - started
    ran = sum(1 for t in todo if t.key in rows)
    save()
    return Outcome(ordered(rows, keys, earlier_keys), ran, reused, seconds, where, unit,
                   interrupted, failed)


def report_end(what: str, outcome: Outcome, output: str | None, total: int) -> None:
    """The closing line on stderr; then re-raise an interrupt (exit 130, or 128+N)."""
    table = f"; table: {output}" if output else ""
    failed = f" ({len(outcome.failed)} failed)" if outcome.failed else ""
    if outcome.interrupted is not None:
        print(f"ptviz: {what}: interrupted after {outcome.ran:,} {outcome.unit} run{failed}, "
              f"{outcome.reused + outcome.ran:,} of {total:,} done"
              + (f"; the finished rows are in {output} (--resume runs the rest)"
                 if output else ""), file=sys.stderr)
        raise outcome.interrupted
    print(f"ptviz: {what}: {outcome.ran:,} {outcome.unit} run{failed} in {outcome.seconds:.1f} s "
          f"on {outcome.where}" + (f", {outcome.reused:,} already done" if outcome.reused
                                   else "") + table, file=sys.stderr)
