"""The machine's events not yet written, turned into columns (machine.py).

Events come one at a time (a row: ``(ts, cpu, kind, task, fields)``) or in runs of
identical events at a fixed step (``emit_many``: a table's faults, a batch at a time).
A run is kept as one entry, ``(pos, t0, step, count, cpu, kind, task, fields)`` with
``pos`` the rows emitted before it, and spread into columns with numpy when the rows
are: a run's event then costs a few ns instead of a tuple, a transpose and a
conversion (~100 ns), and runs are most events of a fault-heavy workload.
"""

from __future__ import annotations

from array import array
from typing import Sequence

import numpy as np

from replayer.traceio.columns import transpose
from replayer.traceio.fieldcodes import Coded, Table

#: Columns of events in emission order: ts, cpus, kinds, tasks (int64 arrays), fields
#: (a fieldcodes.Coded).
Part = tuple


def int64(values: Sequence[int]) -> np.ndarray:
    return np.frombuffer(array("q", values), np.int64)


def close(rows: list[tuple], runs: list[tuple]) -> Part:
    """The rows and the runs among them as one part, in emission order; its fields coded
    into a table of the rows' tuples and then the runs' (a run's events share its entry)."""
    if rows:
        ts, cpus, kinds, tasks, fields = transpose(rows)
        ts, cpus, kinds, tasks = int64(ts), int64(cpus), int64(kinds), int64(tasks)
    else:
        ts = cpus = kinds = tasks = np.zeros(0, np.int64)
        fields = []
    if not runs:
        return ts, cpus, kinds, tasks, Coded(np.arange(len(ts)), Table(fields, kinds))
    pos, t0, step, count, cpu, kind, task, run_fields = transpose(runs)
    pos, count, kind = int64(pos), int64(count), int64(kind)
    ends = np.cumsum(count)
    starts = ends - count                       # run events before each run
    # Where each event goes in emission order: row r after the runs emitted before it
    # (pos <= r), run i's events after its pos rows and the earlier runs' events.
    rows_at = np.arange(len(ts)) + np.r_[0, ends][np.searchsorted(pos, np.arange(len(ts)),
                                                                  side="right")]
    which = np.repeat(np.arange(len(runs)), count)
    nth = np.arange(int(ends[-1])) - starts[which]       # 0 .. count-1 within its run
    runs_at = (pos + starts)[which] + nth
    total = len(ts) + int(ends[-1])
    out = []
    for rows_col, run_col in ((ts, int64(t0)[which] + int64(step)[which] * (nth + 1)),
                              (cpus, int64(cpu)[which]), (kinds, kind[which]),
                              (tasks, int64(task)[which]), (np.arange(len(ts)), len(ts) + which)):
        col = np.empty(total, np.int64)
        col[rows_at] = rows_col
        col[runs_at] = run_col
        out.append(col)
    table = Table(fields + run_fields, np.concatenate([kinds, kind]))
    return (*out[:4], Coded(out[4], table))


def concat(parts: list[Part]) -> Part:
    """One part of several, in order."""
    if len(parts) == 1:
        return parts[0]
    ts, cpus, kinds, tasks, fields = transpose(parts)
    return (np.concatenate(ts), np.concatenate(cpus), np.concatenate(kinds),
            np.concatenate(tasks), Coded.concat(fields))
