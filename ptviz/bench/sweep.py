"""``ptviz bench``'s sweep figures, through the code ``ptviz sweep`` runs
(:func:`ptviz.scale.executors.collect` with its row function):

- ``sweep_speedup_2_workers``: the same grid on one local worker process and on two,
  wall time against wall time (pools started and warmed first: what is compared is the
  sweep, not process start-up);
- ``sweep_task_overhead_ms``: on a local Dask cluster of one single-threaded worker
  process, what each point adds to the sweep's wall time beyond its own work (the
  ``seconds`` its row reports): scheduling, sending the point, returning the row,
  collecting it. Needs the ``cluster`` extra; without it the figure is absent, with a
  note saying why.
"""

from __future__ import annotations

import sys
import time

from ..scale.executors import LocalPool, Task, collect
from ..scale.grid import grid
from ..scale.row import run_point

#: The speedup grid: walkers on 64 MiB, ~0.1 s a point here.
SPEEDUP_GRID = dict(arch="x86_64", kernel="7.0", workload="walkers", cpus="4",
                    flags=["table_free=semi_rcu"], params=["size=64M"])
#: The overhead grid: points as small as a sweep's get (a few ms each).
OVERHEAD_GRID = dict(arch="x86_64", kernel="7.0", workload="coverletter", cpus="2",
                     flags=[], params=["size=4M"])


def _tasks(spec: dict, seeds: str) -> list[Task]:
    return [Task(p.key, run_point, (p,), p.columns())
            for p in grid(seed_text=seeds, **spec)]


def _timed(workers, tasks: list[Task]) -> tuple[float, dict[str, dict]]:
    """Wall seconds to collect ``tasks`` on ``workers``, and the rows."""
    rows: dict[str, dict] = {}
    started = time.perf_counter()
    collect(workers, tasks, rows)
    elapsed = time.perf_counter() - started
    failed = [r for r in rows.values() if r.get("error")]
    if failed:
        raise RuntimeError(f"bench sweep point failed: {failed[0]['error']}")
    return elapsed, rows


def _speedup(points: int, rounds: int = 3) -> dict:
    """Best of ``rounds`` alternated runs on each pool: others' work on a shared machine
    comes and goes, and alternating lets neither side have all the quiet moments."""
    pools = {jobs: LocalPool(jobs) for jobs in (1, 2)}
    walls = {jobs: float("inf") for jobs in pools}
    try:
        for jobs, pool in pools.items():
            _timed(pool, _tasks(SPEEDUP_GRID, f"1000..{1000 + 2 * jobs - 1}"))  # warm up
        for _ in range(rounds):
            for jobs, pool in pools.items():
                wall, _ = _timed(pool, _tasks(SPEEDUP_GRID, f"0..{points - 1}"))
                walls[jobs] = min(walls[jobs], wall)
    finally:
        for pool in pools.values():
            pool.close()
    return {"sweep_points": points, "sweep_1_worker_s": round(walls[1], 3),
            "sweep_2_workers_s": round(walls[2], 3),
            "sweep_speedup_2_workers": round(walls[1] / walls[2], 3)}


def _overhead(points: int) -> dict:
    try:
        from distributed import LocalCluster
    except ImportError:
        return {"sweep_task_overhead_note": "not measured: needs the cluster extra "
                                            "(pip install 'ptviz[cluster]')"}
    from ..scale.executors import Cluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as local:
        workers = Cluster(local.scheduler_address)
        try:
            _timed(workers, _tasks(OVERHEAD_GRID, "1000..1003"))          # warm up
            wall, rows = _timed(workers, _tasks(OVERHEAD_GRID, f"0..{points - 1}"))
        finally:
            workers.close()
    work = sum(r["seconds"] for r in rows.values())
    return {"sweep_overhead_points": points,
            "sweep_overhead_point_ms": round(1000 * work / points, 2),
            "sweep_task_overhead_ms": round(1000 * max(wall - work, 0.0) / points, 2)}


def measure_sweep(points: int = 32, overhead_points: int = 100, rounds: int = 3,
                  progress: bool = False) -> dict:
    """The sweep figures: the speedup on ``points`` points (best of ``rounds``), the
    overhead per task on ``overhead_points``."""
    out = _speedup(points, rounds)
    if progress:
        print(f"  sweep: {points} points in {out['sweep_1_worker_s']:.2f} s on 1 worker, "
              f"{out['sweep_2_workers_s']:.2f} s on 2 (×{out['sweep_speedup_2_workers']:.2f})",
              file=sys.stderr, flush=True)
    out.update(_overhead(overhead_points))
    if progress and "sweep_task_overhead_ms" in out:
        print(f"  sweep on a local Dask cluster: {out['sweep_task_overhead_ms']:.1f} ms per "
              f"task beyond its {out['sweep_overhead_point_ms']:.1f} ms of work",
              file=sys.stderr, flush=True)
    return out
