"""The machine's events not yet written, turned into columns (machine.py).

Events come one at a time (a row: ``(ts, cpu, kind, task, fields)``) or, for pte_set (83%
of a fault-heavy workload's events), as runs of identical events at a fixed step: a run
is nine ints in a flat list (:data:`SET_FIELDS`), ``pos`` the rows emitted before it, one
event a run of one. Runs are spread into columns with numpy when the rows are, and their
fields (mm, pfn, entries, nil) go to the writer as columns (fieldcodes.Table's packed
kind): a pte_set then costs a few ns instead of two tuples, two transposes and value by
value conversions (~400 ns), and no tuple is kept alive for it.
"""

from __future__ import annotations

from array import array
from typing import Sequence

import numpy as np

from replayer import vocab as v
from replayer.traceio.columns import transpose
from replayer.traceio.fieldcodes import Coded, Same, Table

#: Columns of events in emission order: ts, cpus, kinds, tasks (int64 arrays), fields
#: (a fieldcodes.Coded).
Part = tuple
#: A run of pte_set events in the flat list: ``count`` events ``step`` ns apart after
#: ``t0``, each with fields (mm, pfn, entries, nil).
SET_FIELDS = ("pos", "t0", "step", "count", "cpu", "task", "mm", "pfn", "entries")


def int64(values: Sequence[int]) -> np.ndarray:
    return np.frombuffer(array("q", values), np.int64)


def close(rows: list[tuple], sets: list[int]) -> Part:
    """The rows and the pte_set runs among them (``sets``, flat) as one part, in emission
    order; its fields coded into the rows' tuples and the runs' columns."""
    if rows:
        ts, cpus, kinds, tasks, fields = transpose(rows)
        ts, cpus, kinds, tasks = int64(ts), int64(cpus), int64(kinds), int64(tasks)
    else:
        ts = cpus = kinds = tasks = np.zeros(0, np.int64)
        fields = []
    if not sets:
        return ts, cpus, kinds, tasks, Coded(np.arange(len(ts)), Table(fields, kinds))
    # Every value is an int in 0 .. 2**64-1 (an mm is above 2**63): one conversion.
    runs = np.frombuffer(array("Q", sets), np.uint64).reshape(-1, len(SET_FIELDS))
    pos, t0, step, count, cpu, task, pfn, entries = (
        runs[:, SET_FIELDS.index(name)].astype(np.int64)
        for name in ("pos", "t0", "step", "count", "cpu", "task", "pfn", "entries"))
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
    for rows_col, run_col in ((ts, t0[which] + step[which] * (nth + 1)),
                              (cpus, cpu[which]), (kinds, np.full(len(which), v.PTE_SET)),
                              (tasks, task[which]), (np.arange(len(ts)), len(ts) + which)):
        col = np.empty(total, np.int64)
        col[rows_at] = rows_col
        col[runs_at] = run_col
        out.append(col)
    mm = runs[:, SET_FIELDS.index("mm")]
    table = Table(fields, kinds, {v.PTE_SET: [mm.copy(), pfn, entries,
                                              Same(None, len(runs))]})
    return (*out[:4], Coded(out[4], table))


def concat(parts: list[Part]) -> Part:
    """One part of several, in order."""
    if len(parts) == 1:
        return parts[0]
    ts, cpus, kinds, tasks, fields = transpose(parts)
    return (np.concatenate(ts), np.concatenate(cpus), np.concatenate(kinds),
            np.concatenate(tasks), Coded.concat(fields))
