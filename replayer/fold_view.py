"""What a marker amid table steps applied in bulk reads, as it was at its row.

A marker records the VmPTE of its task's mm and how many PTE tables sat empty, at
that moment; the bulk path (:func:`.fold_lives.apply_lives`) has applied the whole
stretch before the marker is visited. So the stretch keeps, for its markers, each
mm's VmPTE after each of its steps, the empty count after each step, and the
pid → mm writes by row: a marker looks up the last of each before its row, and
the state (as the visit has left it so far) for what the stretch did not change.
Lookups are ``searchsorted`` in C; markers are few. An mm_new row is different: one
of an mm that exited resets its peak, so it cuts the stretch (:func:`mm_news`).
"""

from __future__ import annotations

import numpy as np

from . import vocab as v
from .fold_bulk import NO_PID
from .fold_rows import field as _field

_NEW_MM, _NEW_TGID = (v.KIND_BY_ID[v.MM_NEW].fields.index(f) for f in ("mm", "tgid"))


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


def mm_news(folder, rows, k: np.ndarray, pos: np.ndarray):
    """The mm_new rows among those at ``pos`` (of ``folder``'s stretch): (for each
    of ``pos``, its rank among them or -1; their tgids as int64, ``NO_PID`` for nil;
    their mms; for each of ``pos``, whether it cuts the stretch), or None when there
    are none. An mm_new cuts when its mm exited before it (in the state, or by an
    mm_exit row of this fold before it): it resets the mm's peak to its VmPTE at that
    moment. So does one whose tgid the int64 column cannot hold."""
    at = folder._kinds.at(v.MM_NEW)
    if not len(at):
        return None
    mms = _field(rows, v.MM_NEW, _NEW_MM, at)
    tgids = _field(rows, v.MM_NEW, _NEW_TGID, at)
    exits = folder._kinds.at(v.MM_EXIT)
    first_exit: dict = {}
    for mm, p in zip(_field(rows, v.MM_EXIT, 0, exits) if len(exits) else (),
                     exits.tolist()):
        first_exit.setdefault(mm, p)
    gone = folder.state.mm_exit
    cut = [mm in gone or first_exit.get(mm, p) < p or
           (t is not None and (type(t) is not int or not NO_PID < t < 1 << 63))
           for mm, t, p in zip(mms, tgids, at.tolist())]
    tgid = np.array([NO_PID if t is None or c else t for t, c in zip(tgids, cut)],
                    np.int64)
    rank = np.full(len(k), -1, np.int64)
    rank[at] = np.arange(len(at))
    cuts = np.zeros(len(pos), bool)
    cuts[np.searchsorted(pos, at[np.array(cut, bool)])] = True
    return rank[pos], tgid, mms, cuts
