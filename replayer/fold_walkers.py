"""Lockless walkers amid table steps applied in bulk (:func:`.fold_lives.apply_lives`).

A walker read (``walk_table``) looks up the table at its pfn at that moment; a
table free looks at what the walkers hold. Neither may see the stretch as it is
at its end, so the bulk path answers each read from the stretch's steps (the
last step of that pfn before the read, or the state it started with), and hands
the stretch back to the per-row handlers when a free could meet a walker still
holding its table, the one case a handler reports on. Python per read and per
table held; the rest in numpy. Tests compare this with the per-row handlers
(``tests/test_fold_fast.py``).
"""

from __future__ import annotations

import numpy as np

from . import vocab as v

NONE = -1                      # the stage of a pfn with no table


def tids_at(s, reads: tuple, upfn: np.ndarray, gid: np.ndarray, g_pos: np.ndarray,
            after: np.ndarray, step_tid: np.ndarray, tid0: np.ndarray) -> np.ndarray:
    """The tid each read finds at its pfn (-1: no table). Steps are grouped by pfn
    (``gid``, groups in ascending ``upfn``), each group in row order (``g_pos``);
    ``after``: the stage each step leaves, ``step_tid`` the table it is about,
    ``tid0`` the table at each group's pfn when the stretch starts."""
    r_pos, r_pfn = reads
    g = np.searchsorted(upfn, r_pfn)
    known = g < len(upfn)
    known[known] = upfn[g[known]] == r_pfn[known]
    width = int(max(int(g_pos.max()) if len(g_pos) else 0, int(r_pos.max()))) + 1
    last = np.searchsorted(gid * width + g_pos, g * width + r_pos) - 1
    stepped = known & (last >= 0)
    stepped[stepped] = gid[last[stepped]] == g[stepped]
    j = np.maximum(last, 0)
    out = np.where(stepped, np.where(after[j] != NONE, step_tid[j], -1),
                   np.where(known, tid0[np.minimum(g, len(upfn) - 1)], -1))
    # A pfn with no step in the stretch keeps what the state says.
    for r in np.flatnonzero(~known).tolist():
        out[r] = s.tid_of.get(int(r_pfn[r]), -1)
    return out


def walker_sees_free(s, st, row_lo: int, reads, tids_read, r_tid: np.ndarray,
                     run: np.ndarray, free: np.ndarray, g_pos: np.ndarray) -> bool:
    """Whether a free of the stretch frees a table a walker holds, on another CPU,
    with no walk_begin or walk_end on the walker's CPU in between
    (``_table_free``'s use-after-free check). Held: what the walkers open when the
    stretch starts hold, and what the stretch's reads find while a walk is open on
    their CPU."""
    holds = [(cpu, h[1], row_lo) for cpu, walk in s.walkers.items() for h in walk[4]
             if h[1] >= 0]
    walk_rows = st.walk_rows[st.walk_rows >= row_lo]
    walk_cpus = st.cpus[walk_rows]
    if tids_read is not None:
        r_pos = reads[0]
        for p, tid in zip(r_pos.tolist(), tids_read.tolist()):
            cpu = int(st.cpus[p])
            if tid >= 0 and _walk_open(s, cpu, p, walk_rows, walk_cpus, st.kinds):
                holds.append((cpu, tid, p))
    if not holds:
        return False
    freed = dict(zip(r_tid[run[free]].tolist(), g_pos[free].tolist()))
    for cpu, tid, since in holds:
        at = freed.get(tid)
        if at is None or at < since or int(st.cpus[at]) == cpu:
            continue               # not freed here, or on the walker's own CPU
        if not ((walk_cpus == cpu) & (walk_rows > since) & (walk_rows < at)).any():
            return True
    return False


def _walk_open(s, cpu: int, p: int, walk_rows, walk_cpus, kinds) -> bool:
    """Whether a walk is open on ``cpu`` at row ``p``: its CPU's latest walk_begin or
    walk_end before it is a begin, or with none, the state had one open."""
    mine = walk_rows[(walk_cpus == cpu) & (walk_rows < p)]
    if len(mine):
        return bool(kinds[mine[-1]] == v.WALK_BEGIN)
    return cpu in s.walkers
