"""What a marker amid table steps applied in bulk reads, as it was at its row.

A marker records the VmPTE of its task's mm and how many PTE tables sat empty, at
that moment; the bulk path (:func:`.fold_lives.apply_lives`) has applied the whole
stretch before the marker is visited. So the stretch keeps, for its markers, each
mm's VmPTE after each of its steps, the empty count after each step, and the
pid → mm writes by row: a marker looks up the last of each before its row, and
the state (as the visit has left it so far) for what the stretch did not change.
Lookups are ``searchsorted`` in C; markers are few.
"""

from __future__ import annotations

import numpy as np


class StretchView:
    """``step_pos``: the steps' rows in time order; ``empties``: the empty count after
    each; ``empty0``: before the first. ``mm_steps``: mm → (rows, VmPTE after each)
    and ``mm_start``: mm → its VmPTE before the stretch (None: no entry), for the mms
    the steps change. ``writes``: (rows, pids, mms) of the pid → mm writes, by row.
    ``mm_news``: (rows, mms) of the stretch's mm_new rows (each makes its mm's entry).
    Rows are the fold's positions; ``first_index`` turns event indices into them."""

    __slots__ = ("state", "first_index", "step_pos", "empties", "empty0", "mm_steps",
                 "mm_start", "writes", "mm_news")

    def __init__(self, state, first_index: int, step_pos, empties, empty0: int, mm_steps,
                 mm_start, writes, mm_news) -> None:
        self.state, self.first_index = state, first_index
        self.step_pos, self.empties, self.empty0 = step_pos, empties, empty0
        self.mm_steps, self.mm_start = mm_steps, mm_start
        self.writes, self.mm_news = writes, mm_news

    def empty_count(self, i: int) -> int:
        j = int(np.searchsorted(self.step_pos, i - self.first_index))
        return int(self.empties[j - 1]) if j else self.empty0

    def pid_mm(self, pid, i: int):
        w_pos, w_pid, w_mm = self.writes
        if pid is not None:
            before = np.flatnonzero((w_pid == pid) & (w_pos < i - self.first_index))
            if len(before):
                return w_mm[int(before[-1])]
        return self.state.pid_mm.get(pid)

    def mm_bytes(self, mm, i: int):
        steps = self.mm_steps.get(mm)
        if steps is None:                  # not changed here: the state says
            return self.state.mm_bytes.get(mm)
        p = i - self.first_index
        j = int(np.searchsorted(steps[0], p))
        if j:
            return int(steps[1][j - 1])
        start = self.mm_start[mm]
        if start is None and any(m == mm for q, m in zip(*self.mm_news) if q < p):
            return 0                       # an mm_new before it made the entry
        return start
