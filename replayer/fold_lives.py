"""A stretch of table steps applied at once: what the per-row handlers of
:mod:`.fold_tables` (and the table half of ``_rcu_queue``) do, in numpy.

The steps (:class:`.fold_bulk.Steps`) are grouped by pfn, each group in time
order; within a group the tables that lived at that pfn follow one another (a
"run" per table: the one alive when the stretch starts, then one per
allocation). Each step's stage before and after, each PTE table's present count
and whether it sits empty, come from cumulative sums and forward fills within
those groups; the counters' series from cumulative sums in time order.

Only regular stretches are applied: every step is one the per-row handlers accept
without an orphan count, a finding or a clamp (a table freed while attached or
holding entries, a step on a pfn with no table, a clear below zero, a walker
holding a table that is freed...). For anything else :func:`apply_lives` returns
None before changing anything, and the caller visits the rows one by one. Tests
compare the two paths (``tests/test_fold_fast.py``).

Cost: a stable sort of the steps by pfn, O(s log s) in C, plus Python per pfn
that was alive before the stretch or outlives it, and per allocation (the log's
generations). That is O(1) Python per table instead of ~12 calls per life.
"""

from __future__ import annotations

from collections import deque
from itertools import repeat
from typing import Any

import numpy as np

from . import vocab as v
from .fold_bulk import E_ALLOC, E_CLEAR, E_DETACH, E_FREE, E_QUEUE, E_RCU, E_SET, NO_PID
from .fold_tables import CLS_LEAK, CLS_LEAK_FREE, CLS_RECLAIM, CLS_RECLAIM_FREE
from .fold_record import extend_series, find_leaks, log_steps, shift_in_groups
from .fold_view import StretchView
from .fold_walkers import tids_at, walker_sees_free
from .state import (ATTACHED as A, DETACH_CODES, DETACHED as D, QUEUED as Q,
                    RCU_PENDING as R, T_DETACH_CAUSE, T_LEAK_TS, T_LEVEL, T_MM, T_WIDTH)

NONE = -1                      # no table at the pfn
_NOT_HARD = -9
RECLAIM, COLLAPSE = DETACH_CODES["reclaim"], DETACH_CODES["collapse"]
_ABSENT = -(1 << 63)           # not in empty_since (whose values are times)


def _records(log, tids: np.ndarray, loading: bool) -> np.ndarray:
    """The log's records of ``tids`` (rows of T_WIDTH). The loading fold, the only one
    that grows the log, reads it through a view; a query running meanwhile (a seek in
    another thread) copies the span it needs instead: a view it held would make the
    loader's next append fail (an array exporting its buffer cannot grow)."""
    if loading:
        view = np.frombuffer(log.data, np.int64).reshape(-1, T_WIDTH)
        recs = view[tids]
        del view                   # the log grows again
        return recs
    lo, hi = int(tids.min()), int(tids.max()) + 1
    span = np.frombuffer(log.data[lo * T_WIDTH:hi * T_WIDTH], np.int64).reshape(-1, T_WIDTH)
    return span[tids - lo]


def apply_lives(f, st, lo: int, hi: int, zlo: int, zhi: int, ts_all: np.ndarray,
                first_index: int, alloc_base: int, row_lo: int,
                reads: tuple | None = None, mm_news: tuple | None = None,
                want_view: bool = False) -> tuple[list, Any, Any] | None:
    """Apply steps ``lo:hi`` of ``st`` to folder ``f`` (zap rows ``zlo:zhi`` of
    ``st.zaps`` are those of the same rows; ``alloc_base`` allocations come before
    ``lo``; the stretch's rows start at row ``row_lo``; ``reads``: the (rows, pfns)
    of its walker reads, as int64 arrays; ``mm_news``: the (rows, tgids, mms) of its
    mm_new rows). Returns the ``(pid, mm)`` writes to ``pid_mm`` the allocations, zap
    rows and mm_new rows leave (each task's last), for the caller to apply after the
    other rows; the tid each read finds (-1: none; None without reads); and with
    ``want_view``, what its markers read (:class:`.fold_view.StretchView`). None when
    the stretch is not regular (nothing changed)."""
    s, log, rec = f.state, f.log, f.recording
    pos, ek = st.pos[lo:hi], st.ek[lo:hi]
    E = hi - lo
    ts, idx = ts_all[pos], pos + first_index
    order = np.argsort(st.pfn[lo:hi], kind="stable")
    g_pfn, g_ek = st.pfn[lo:hi][order], ek[order]
    g_ts, g_idx, g_n, g_code = ts[order], idx[order], st.n[lo:hi][order], st.code[lo:hi][order]
    first = np.empty(E, bool)
    first[0] = True
    np.not_equal(g_pfn[1:], g_pfn[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    gid = np.cumsum(first) - 1
    gstart = starts[gid]
    upfn = g_pfn[starts].tolist()
    G = len(starts)

    # -- the table alive at each pfn when the stretch starts --------------------
    tid0 = np.fromiter(map(s.tid_of.get, upfn, repeat(-1)), np.int64, G)
    stage0 = np.full(G, NONE, np.int64)
    present0 = np.full(G, -1, np.int64)
    level0 = np.full(G, -1, np.int64)
    mmi0, cause0 = np.zeros(G, np.int64), np.zeros(G, np.int64)
    leak0, since0 = np.full(G, -1, np.int64), np.full(G, -1, np.int64)
    empty0 = np.zeros(G, bool)
    old = np.flatnonzero(tid0 >= 0)
    if len(old):
        olds = g_pfn[starts[old]].tolist()
        stage0[old] = list(map(s.stage.__getitem__, olds))
        present0[old] = list(map(s.present.get, olds, repeat(-1)))
        since0[old] = list(map(s.empty_since.get, olds, repeat(_ABSENT)))
        empty0[old] = since0[old] != _ABSENT
        recs = _records(log, tid0[old], f.recording)
        level0[old], mmi0[old] = recs[:, T_LEVEL], recs[:, T_MM]
        cause0[old], leak0[old] = recs[:, T_DETACH_CAUSE], recs[:, T_LEAK_TS]
        pte_old = level0[old] == v.LEVEL_PTE
        # What the handlers keep true; a stretch after one that broke it goes row by row.
        if ((present0[old] >= 0) != pte_old).any() or (empty0[old] != (
                pte_old & (stage0[old] == A) & (present0[old] == 0))).any():
            return None

    # -- tables: one run of steps per table --------------------------------------
    is_alloc = g_ek == E_ALLOC
    run_first = first | is_alloc
    run = np.cumsum(run_first) - 1
    rstart = np.flatnonzero(run_first)
    r_new, r_gid = is_alloc[rstart], gid[rstart]
    t_alloc = ek == E_ALLOC
    n_alloc = int(np.count_nonzero(t_alloc))
    arank = (np.cumsum(t_alloc) - 1)[order]            # allocation order, per step
    r_arank = np.where(r_new, arank[rstart], 0) + alloc_base
    a_lo, a_hi = alloc_base, alloc_base + n_alloc
    r_level = np.where(r_new, st.level[r_arank] if n_alloc else 0, level0[r_gid])
    # mm as an index into log.mms; mms new to the log are added in order of first use.
    a_mms = st.mm[a_lo:a_hi]
    mm_values = log.mms
    new_mms: list[int] = []
    if n_alloc:
        # One lookup per distinct mm (a fork's tables share theirs).
        distinct, first_use, inverse = np.unique(st.mm_column[a_lo:a_hi], return_index=True,
                                                 return_inverse=True)
        known = list(map(log.mm_index.get, distinct.tolist()))
        if None in known:
            if not rec:
                return None
            new = np.array([j for j, m in enumerate(known) if m is None], np.int64)
            new = new[np.argsort(first_use[new], kind="stable")]
            for i, j in enumerate(new.tolist(), len(mm_values)):
                known[j] = i
            new_mms = distinct[new].tolist()
        a_mmi = np.array(known, np.int64)[inverse]
        if new_mms:
            mm_values = mm_values + new_mms
        r_mmi = np.where(r_new, a_mmi[r_arank - alloc_base], mmi0[r_gid])
    else:
        r_mmi = mmi0[r_gid]
    r_tid = np.where(r_new, s.next_tid + r_arank - alloc_base, tid0[r_gid])
    is_pte = (r_level == v.LEVEL_PTE)[run]

    # -- stages: set by allocations, detaches and frees; queues and RCU move on --
    hard = np.full(E, _NOT_HARD, np.int64)
    hard[is_alloc] = A
    det, free = g_ek == E_DETACH, g_ek == E_FREE
    hard[det], hard[free] = D, NONE
    ar = np.arange(E)
    lh = np.maximum.accumulate(np.where(hard != _NOT_HARD, ar, -1))
    lh_in = lh >= gstart
    base = np.where(lh_in, hard[np.maximum(lh, 0)], stage0[gid])
    is_q, is_r = g_ek == E_QUEUE, g_ek == E_RCU
    ref = np.where(lh_in, lh, gstart - 1)
    cq, cr = np.cumsum(is_q), np.cumsum(is_r)
    q_since = cq - np.where(ref >= 0, cq[np.maximum(ref, 0)], 0)
    r_since = cr - np.where(ref >= 0, cr[np.maximum(ref, 0)], 0)
    after = base.copy()
    after[(base == D) & (q_since > 0)] = Q
    after[((base == D) | (base == Q)) & (r_since > 0)] = R
    before = shift_in_groups(after, first, stage0)
    setclear = (g_ek == E_SET) | (g_ek == E_CLEAR)
    delta = np.where(g_ek == E_SET, g_n, 0) - np.where(g_ek == E_CLEAR, g_n, 0)
    c = np.cumsum(delta)
    c_ref = c[rstart] - delta[rstart]
    p_after = np.where(r_new, 0, present0[r_gid])[run] + c - c_ref[run]
    p_before = p_after - delta
    bad = is_alloc & (before != NONE)
    bad |= setclear & ((before == NONE) | ~is_pte)
    bad |= det & (before != A)
    bad |= is_q & (before != A) & (before != D)
    bad |= free & ((before == A) | (before == NONE) | (is_pte & (p_before != 0)))
    bad |= (g_ek == E_SET) & (g_n <= 0)
    bad |= (g_ek == E_CLEAR) & ((g_n < 0) | (p_after < 0))
    if bad.any() or (is_q.any() and (np.bincount(run, is_q) > 1).any()):
        return None
    g_pos = st.pos[lo:hi][order]
    tids_read = None
    if reads is not None and len(reads[0]):
        # What each walker read of the stretch finds at its pfn at that moment.
        tids_read = tids_at(s, reads, g_pfn[starts], gid, g_pos, after, r_tid[run], tid0)
    if free.any() and walker_sees_free(s, st, row_lo, reads, tids_read, r_tid, run, free, g_pos):
        return None                # a walker holds a table freed here: the handler reports it

    # -- empty attached PTE tables -----------------------------------------------
    e_after = is_pte & (after == A) & (p_after == 0)
    e_before = shift_in_groups(e_after, first, empty0)
    e_delta = e_after.astype(np.int64) - e_before
    lp = np.maximum.accumulate(np.where(e_delta > 0, ar, -1))
    since = np.where(lp >= gstart, g_ts[np.maximum(lp, 0)], since0[gid])

    r_cause = np.where(r_new, 0, cause0[r_gid])
    r_cause[run[det]] = g_code[det]
    r_leak = np.where(r_new, -1, leak0[r_gid])
    last = np.r_[starts[1:], E] - 1              # each pfn's last step
    pfns = g_pfn[starts]
    marks: list[tuple[np.ndarray, int]] = []
    if rec:
        leak = find_leaks(f, st, zlo, zhi, first_index, g_ek, det, e_delta, e_before, g_code,
                          st.pos[lo:hi][order], st.pid[lo:hi][order], upfn, pfns, first,
                          gstart, gid, starts, last, ar)
        r_leak[run[leak]] = since[leak]
        marks = [(g_idx[det & (g_code == RECLAIM)], CLS_RECLAIM), (g_idx[leak], CLS_LEAK)]
        f_cause, f_leak = r_cause[run[free]], r_leak[run[free]]
        marks += [(g_idx[free][f_cause == RECLAIM], CLS_RECLAIM_FREE),
                  (g_idx[free][(f_cause != RECLAIM) & (f_leak >= 0)], CLS_LEAK_FREE)]

    # Nothing has changed so far; from here on the stretch is applied.
    back = np.empty(E, np.int64)         # step in time order → its sorted place
    back[order] = ar

    def in_time(x: np.ndarray) -> np.ndarray:
        return x[back]

    _count_frees(s, free & is_pte, r_cause[run], r_mmi[run], mm_values)
    lvl = r_level[run]
    lbytes = np.array(f._level_bytes, np.int64)[np.where((lvl > 0) & (lvl < 5), lvl, 0)]
    sign = is_alloc.astype(np.int64) - det
    empties0 = len(s.empty_since)
    e_time = in_time(e_delta)
    mm_steps = _account(f, s, in_time(sign), in_time(lbytes), in_time(r_mmi[run]),
                        in_time(lvl), ts, mm_values, pos if want_view else None)
    pages = in_time(is_alloc.astype(np.int64) - free)
    moved = pages != 0
    if moved.any():
        pt = s.pt_bytes + np.cumsum(pages[moved]) * f.sizes.page_size
        s.pt_bytes = int(pt[-1])
        s.pt_peak = max(s.pt_peak, int(pt.max()))
        if rec:
            f.series.page_table_bytes.extend(ts[moved], pt)
    if rec:
        attached = in_time(np.where(is_pte, sign, 0))
        f._pte_attached = extend_series(f.series.pte_attached, f._pte_attached, ts, attached)
        flying = in_time(np.where(is_pte, det.astype(np.int64) - free, 0))
        f._pte_in_flight = extend_series(f.series.pte_in_flight, f._pte_in_flight, ts, flying)
        extend_series(f.series.empty_attached, empties0, ts, e_time)
        log_steps(log, s, g_ts, g_idx, g_code, g_pfn, run, r_tid, r_leak, before, is_alloc,
                  det, free, is_q, is_r, st, a_lo, a_hi, a_mmi if n_alloc else None, new_mms)
        at = np.concatenate([m[0] for m in marks])
        if len(at):
            cls = np.concatenate([np.full(len(m[0]), m[1], np.int64) for m in marks])
            o = np.argsort(at, kind="stable")
            f.marks.extend(zip(at[o].tolist(), cls[o].tolist()))

    # -- the state each pfn is left in ------------------------------------------
    # Only pfns alive when the stretch started have entries to remove.
    alive = after[last] != NONE
    was = tid0 >= 0
    gone = pfns[was & ~alive].tolist()
    if gone:                   # (map: the loops run in C)
        deque(map(s.tid_of.pop, gone), 0)
        deque(map(s.stage.pop, gone), 0)
        deque(map(s.present.pop, gone, repeat(None)), 0)
        deque(map(s.empty_since.pop, gone, repeat(None)), 0)
    live = last[alive]
    live_pfns = pfns[alive]
    s.tid_of.update(zip(live_pfns.tolist(), r_tid[run[live]].tolist()))
    s.stage.update(zip(live_pfns.tolist(), after[live].tolist()))
    pte = is_pte[live]
    s.present.update(zip(live_pfns[pte].tolist(), p_after[live][pte].tolist()))
    deque(map(s.present.pop, live_pfns[~pte & (present0[alive] >= 0)].tolist()), 0)
    empty = e_after[live]
    s.empty_since.update(zip(live_pfns[empty].tolist(), since[live][empty].tolist()))
    deque(map(s.empty_since.pop, live_pfns[~empty & empty0[alive]].tolist()), 0)
    s.next_tid += n_alloc

    # pid → mm, as the allocations, zaps and mm_new rows of the stretch leave it: each
    # task's last write (a marker reads them as they were at its row, from the view).
    zpos, zpid, zbegin, zmm, _ = (x[zlo:zhi] for x in st.zaps)
    n_pos, n_pid, n_mm = mm_news if mm_news is not None else (pos[:0], pos[:0], [])
    w_pos = np.concatenate([pos[t_alloc], zpos[zbegin], n_pos])
    w_pid = np.concatenate([st.pid[lo:hi][t_alloc], zpid[zbegin], n_pid])
    w_mm = np.array(a_mms + zmm[zbegin].tolist() + list(n_mm) + [None], object)[:-1]
    keep = np.flatnonzero(w_pid != NO_PID)
    keep = keep[np.lexsort((w_pos[keep], w_pid[keep]))]      # by task, then in row order
    by_pid = w_pid[keep]
    last = keep[np.r_[by_pid[1:] != by_pid[:-1], True]] if len(keep) else keep
    writes = list(zip(w_pid[last].tolist(), w_mm[last].tolist()))
    view = None
    if want_view:
        in_rows = keep[np.argsort(w_pos[keep], kind="stable")]
        view = StretchView(s, first_index, pos, empties0 + np.cumsum(e_time), empties0,
                           mm_steps[0], mm_steps[1],
                           (w_pos[in_rows], w_pid[in_rows], w_mm[in_rows].tolist()),
                           (n_pos.tolist(), list(n_mm)))
    return writes, tids_read, view


def _count_frees(s, pte_free: np.ndarray, cause: np.ndarray, mmi: np.ndarray,
                 mm_values: list) -> None:
    """The freed-PTE-table counters, by how each table was detached."""
    if not pte_free.any():
        return
    slot = np.where(cause[pte_free] == RECLAIM, 0, np.where(cause[pte_free] == COLLAPSE, 2, 1))
    s.freed_reclaimed += int(np.count_nonzero(slot == 0))
    s.freed_unmap += int(np.count_nonzero(slot == 1))
    s.freed_collapse += int(np.count_nonzero(slot == 2))
    per = np.zeros((int(mmi.max()) + 1, 3), np.int64)
    np.add.at(per, (mmi[pte_free], slot), 1)
    for m in np.flatnonzero(per.any(axis=1)).tolist():
        mm = mm_values[m]
        had = s.mm_freed.get(mm, (0, 0, 0))
        s.mm_freed[mm] = tuple(a + int(b) for a, b in zip(had, per[m]))


def _account(f, s, sign, lbytes, mmi, lvl, ts, mm_values, rows=None) -> tuple[dict, dict]:
    """VmPTE per mm (its series and peak) and attached tables per (mm, level), as
    ``TableHandlers._account`` keeps them, for the allocations (+) and detaches (-).
    With ``rows`` (the steps' rows), returns each mm's (rows, VmPTE after each) and its
    VmPTE before (None: no entry), for a stretch's markers."""
    steps: dict = {}
    start: dict = {}
    at = np.flatnonzero(sign)
    if not len(at):
        return steps, start
    mmi, d = mmi[at], sign[at] * lbytes[at]
    order = np.argsort(mmi, kind="stable")
    mm_sorted = mmi[order]
    cuts = np.flatnonzero(np.r_[True, mm_sorted[1:] != mm_sorted[:-1]]).tolist() + [len(at)]
    for a, b in zip(cuts, cuts[1:]):
        mm = mm_values[int(mm_sorted[a])]
        which = order[a:b]
        before = s.mm_bytes.get(mm)
        values = (before or 0) + np.cumsum(d[which])
        if rows is not None:
            steps[mm], start[mm] = (rows[at[which]], values), before
        s.mm_bytes[mm] = int(values[-1])
        top = int(values.max())
        if top > s.mm_peak.get(mm, 0):
            s.mm_peak[mm] = top
        if f.recording:
            f.series.mm_bytes(mm).extend(ts[at[which]], values)
    key = mmi * 8 + np.where((lvl[at] >= 0) & (lvl[at] < 8), lvl[at], 0)
    if ((lvl[at] < 0) | (lvl[at] >= 8)).any():       # levels beyond the packing: one by one
        for m, level, sg in zip(mmi.tolist(), lvl[at].tolist(), sign[at].tolist()):
            k = (mm_values[m], level)
            s.mm_tables[k] = s.mm_tables.get(k, 0) + sg
        return steps, start
    if int(key.max()) < 1 << 16:         # few mms: count by key directly
        uniq = np.flatnonzero(np.bincount(key))
        net = np.bincount(key, sign[at])[uniq]
    else:
        uniq, inverse = np.unique(key, return_inverse=True)
        net = np.bincount(inverse, sign[at])
    # Every key touched gets its entry, even when the stretch leaves it as it was (so
    # do the handlers).
    for k, n in zip(uniq.tolist(), net.tolist()):
        pair = (mm_values[k // 8], k % 8)
        s.mm_tables[pair] = s.mm_tables.get(pair, 0) + int(n)
    return steps, start
