"""Where points run, and the one loop that runs them.

Both places are ``concurrent.futures`` executors, so :func:`collect` does not care which:
:class:`LocalPool` (processes on this machine) or :class:`Cluster` (a Dask distributed
scheduler, through ``Client.get_executor``, whose futures are ``concurrent.futures``
ones). What differs is how a dead worker shows:

- the local pool breaks as a whole (``BrokenProcessPool`` on every pending future): the
  loop replaces the pool and resubmits those points, up to :data:`MAX_DEATHS` times each;
- Dask reruns a dead worker's tasks on the others by itself (up to its
  ``allowed-failures``) and then fails the task with ``KilledWorker``.

Either way a point that cannot finish becomes a row with its error. Rows are collected
by key, so a result that arrives twice (a task rerun after its worker died just as it
sent the result) is kept once.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import os
import queue
import signal
from dataclasses import dataclass, field
from typing import Any, Callable

from replayer.errors import UsageError

from .row import one_line, worker_ready

#: A point whose worker process died this many times becomes an error row.
MAX_DEATHS = 3
#: How long the loop waits for a result before it looks at the clock again (the
#: progress bar's rate and ETA, the table's checkpoints).
TICK_S = 0.5

NEEDS_EXTRA = ("{what} needs the optional packages dask, distributed and pyarrow: "
               "pip install 'ptviz[cluster]'")


def local_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the
    machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        return os.cpu_count() or 1


@dataclass
class Task:
    """One point to run: ``fn(*args)`` returns its row; ``columns`` are the point's own
    columns, for the row the loop makes when the point cannot run."""

    key: str
    fn: Callable[..., dict]
    args: tuple
    columns: dict = field(default_factory=dict)

    def failed(self, message: str) -> dict:
        return {**self.columns, "error": message, "seconds": None}


def _worker_signals() -> None:
    # Ctrl-C is the main process's to handle: it stops submitting, keeps the rows it has
    # and ends the workers; a worker dying of it first would look like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Ended by the main process (an interrupt): no half-written --keep trace left behind.
    signal.signal(signal.SIGTERM, _end_worker)


def _end_worker(signum: int, frame: object) -> None:
    from replayer.traceio.atomic import remove_partial_outputs
    from .row import remove_scratch_dirs
    remove_partial_outputs()
    remove_scratch_dirs()
    os._exit(128 + signum)


class LocalPool:
    """``jobs`` worker processes on this machine. Workers start from a fork server that
    has ptviz imported (cheap starts, and no fork of a process whose other threads —
    a progress bar's — may hold a lock)."""

    where = "local"

    def __init__(self, jobs: int) -> None:
        import multiprocessing
        self.jobs = jobs
        self.window = 2 * jobs      # enough queued that no worker waits for the loop
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["ptviz.scale.row", "ptviz.sim.run",
                                              "replayer.replay", "replayer.report"])
        self.generation = 0
        self.executor = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.jobs, mp_context=self._context,
                                      initializer=_worker_signals)

    def describe(self) -> str:
        return f"{self.jobs} local process{'es' if self.jobs != 1 else ''}"

    def submit(self, fn: Callable, *args: Any) -> cf.Future:
        return self.executor.submit(fn, *args)

    def replace(self) -> None:
        """A worker died and took the pool with it: a new pool for what is left."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.generation += 1
        self.executor = self._new()

    def close(self, cancel: bool = False) -> None:
        """Shut the pool down; ``cancel`` (an interrupt) also ends points still running
        rather than waiting for them."""
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)
        if cancel:
            for process in processes:
                process.terminate()
            for process in processes:
                process.join()


class Cluster:
    """A Dask distributed scheduler at ``address`` (``tcp://host:8786``), its workers
    checked first: each must be able to import ptviz (the points are ptviz functions,
    sent by reference, not by value)."""

    where = "cluster"

    def __init__(self, address: str, connect_timeout: str = "10s") -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError(NEEDS_EXTRA.format(what="--cluster")) from None
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError...
            raise UsageError(f"--cluster {address}: cannot reach a Dask scheduler there "
                             f"({one_line(exc)}); start one with `dask scheduler` and "
                             f"workers with `dask worker {address}`") from None
        self.address = address
        try:
            versions = self.client.run(worker_ready)
        except Exception as exc:  # noqa: BLE001 - whatever the worker failed with
            self.client.close()
            raise UsageError(f"--cluster {address}: the workers cannot run ptviz "
                             f"({one_line(exc)}); install it on every worker: pip install "
                             f"'ptviz[cluster]'") from None
        self.versions = versions
        self.window = 10_000        # Dask queues on its side; this only bounds memory
        self.generation = 0
        self.executor = self.client.get_executor(pure=False)

    def describe(self) -> str:
        n = len(self.versions)
        return f"{n} Dask worker{'s' if n != 1 else ''} at {self.address}"

    def submit(self, fn: Callable, *args: Any) -> cf.Future:
        return self.executor.submit(fn, *args)

    def replace(self) -> None:
        """Dask replaces dead workers itself."""

    def close(self, cancel: bool = False) -> None:
        self.executor.shutdown(wait=not cancel)
        self.client.close()


def collect(workers, tasks: list[Task], rows: dict[str, dict],
            on_row: Callable[[dict | None], None] = lambda row: None) -> None:
    """Run every task not yet in ``rows`` on ``workers``, adding each row to ``rows``
    under its key as it arrives (so an interrupt leaves ``rows`` holding what finished)
    and calling ``on_row(row)``, or ``on_row(None)`` when :data:`TICK_S` went by with
    none. O(tasks): finished futures arrive on a queue (waiting on every pending future
    at each wake-up would be O(pending) a result, quadratic on a cluster's deep queue),
    with at most ``workers.window`` submitted at a time. Raises only what the caller must
    see (KeyboardInterrupt and the like)."""
    from concurrent.futures.process import BrokenProcessPool
    todo = collections.deque(t for t in tasks if t.key not in rows)
    pending: dict[cf.Future, tuple[Task, int]] = {}
    finished: queue.SimpleQueue[cf.Future] = queue.SimpleQueue()
    deaths: collections.Counter[str] = collections.Counter()
    while todo or pending:
        while todo and len(pending) < workers.window:
            task = todo.popleft()
            if task.key in rows:        # the same key twice in the list
                continue
            future = workers.submit(task.fn, *task.args)
            pending[future] = (task, workers.generation)
            future.add_done_callback(finished.put)
        try:
            future = finished.get(timeout=TICK_S)
        except queue.Empty:
            on_row(None)                # a tick: nothing new, but time went by
            continue
        task, generation = pending.pop(future)
        try:
            row = future.result()
        except (BrokenProcessPool, cf.CancelledError) as exc:
            # A pool broken by a dead worker (or a point it cancelled while being
            # replaced): replace it once, not once per future it broke, and run again.
            if isinstance(exc, BrokenProcessPool):
                deaths[task.key] += 1
            if generation == workers.generation:
                workers.replace()
            if deaths[task.key] < MAX_DEATHS:
                todo.appendleft(task)
                continue
            row = task.failed(f"the worker process running it died {MAX_DEATHS} times "
                              f"(out of memory? killed?); another point running beside "
                              f"it may be the cause")
        except Exception as exc:        # noqa: BLE001 - KilledWorker, unpickling, ...
            row = task.failed(_task_error(exc))
        if task.key not in rows:
            rows[task.key] = row
            on_row(row)


def _task_error(exc: BaseException) -> str:
    if type(exc).__name__ == "KilledWorker":
        return ("every worker that ran it died (Dask's KilledWorker: "
                f"{one_line(exc)}); out of memory?")
    return one_line(exc)
