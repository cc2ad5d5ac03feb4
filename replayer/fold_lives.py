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
# By step kind (E_*): the stage it sets (_NOT_HARD: none), the sign of its ``n`` in
# the present count, and the stages before it the handlers refuse (by stage + 1).
_HARD = np.array([A, _NOT_HARD, _NOT_HARD, D, _NOT_HARD, _NOT_HARD, NONE], np.int64)
_SIGN_N = np.array([0, 1, -1, 0, 0, 0, 0], np.int64)
_SIGN_TABLES = np.array([1, 0, 0, -1, 0, 0, 0], np.int64)     # attached tables
_SIGN_PAGES = np.array([1, 0, 0, 0, 0, 0, -1], np.int64)      # table pages
_SIGN_FLYING = np.array([0, 0, 0, 1, 0, 0, -1], np.int64)     # detached, not yet freed
_BAD_BEFORE = np.zeros(7 * 5, bool)
for _ek, _refused in ((E_ALLOC, (A, D, Q, R)), (E_SET, (NONE,)), (E_CLEAR, (NONE,)),
                      (E_DETACH, (NONE, D, Q, R)), (E_QUEUE, (NONE, Q, R)), (E_FREE, (NONE, A))):
    _BAD_BEFORE[[_ek * 5 + stage + 1 for stage in _refused]] = True


def _records(log, tids: np.ndarray, loading: bool) -> np.ndarray:
    """The log's records of ``tids`` (rows of T_WIDTH). The loading fold, the only one
    that writes the log, reads it in place; a query running meanwhile (a seek in
    another thread) copies the span it needs first (``tobytes``, under the GIL), so
    that it never reads a record the load is halfway through writing."""
    if loading:
        return log.spare(0)[tids]
    lo, hi = int(tids.min()), int(tids.max()) + 1
    span = np.frombuffer(log.data[lo * T_WIDTH:hi * T_WIDTH].tobytes(), np.int64)
    return span.reshape(-1, T_WIDTH)[tids - lo]


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
    ts = ts_all[pos]
    order = np.argsort(st.pfn[lo:hi], kind="stable")
    g_pos = pos[order]
    g_pfn, g_ek = st.pfn[lo:hi][order], ek[order]
    g_ts, g_idx = ts[order], g_pos + first_index
    g_n, g_code = st.n[lo:hi][order], st.code[lo:hi][order]
    first = np.empty(E, bool)
    first[0] = True
    np.not_equal(g_pfn[1:], g_pfn[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    G = len(starts)
    last = np.empty(G, np.int64)                 # each pfn's last step
    last[:-1] = starts[1:] - 1
    last[-1] = E - 1
    # Group of each step, and where it starts: repeats (a cumsum costs three times more).
    sizes = last - starts + 1
    gid = np.repeat(np.arange(G), sizes)
    gstart = np.repeat(starts, sizes)
    pfns = g_pfn[starts]
    upfn = pfns.tolist()

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
        olds = pfns[old].tolist()
        k = len(olds)
        stage0[old] = np.fromiter(map(s.stage.__getitem__, olds), np.int64, k)
        present0[old] = np.fromiter(map(s.present.get, olds, repeat(-1)), np.int64, k)
        since0[old] = np.fromiter(map(s.empty_since.get, olds, repeat(_ABSENT)), np.int64, k)
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
    # The kinds' masks once each (a comparison per use cost as much as the use).
    is_alloc, det, free = g_ek == E_ALLOC, g_ek == E_DETACH, g_ek == E_FREE
    is_q, is_r = g_ek == E_QUEUE, g_ek == E_RCU
    is_set, is_clear = g_ek == E_SET, g_ek == E_CLEAR
    run_first = first | is_alloc
    rstart = np.flatnonzero(run_first)
    run = np.repeat(np.arange(len(rstart)), np.diff(rstart, append=E))
    r_new, r_gid = is_alloc[rstart], gid[rstart]
    t_alloc = np.flatnonzero(ek == E_ALLOC)
    n_alloc = len(t_alloc)
    # Allocation order of the runs an allocation starts (the others: 0).
    r_arank = np.full(len(rstart), alloc_base, np.int64)
    if n_alloc:
        rank = np.empty(E, np.int64)
        rank[t_alloc] = np.arange(alloc_base, alloc_base + n_alloc)
        r_arank[r_new] = rank[order[rstart[r_new]]]
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
    r_pte = r_level == v.LEVEL_PTE
    is_pte = r_pte[run]

    # -- stages: set by allocations, detaches and frees; queues and RCU move on --
    hard = _HARD[g_ek]
    ar = np.arange(E)
    lh = np.maximum.accumulate(np.where(hard != _NOT_HARD, ar, -1))
    base = np.where(lh >= gstart, hard[lh], stage0[gid])     # (hard[-1]: not taken)
    # A queue (an RCU step) since the group's last hard step, or its start: the
    # latest one lies after that.
    ref = np.maximum(lh, gstart - 1)
    q_since = np.maximum.accumulate(np.where(is_q, ar, -1)) > ref
    r_since = np.maximum.accumulate(np.where(is_r, ar, -1)) > ref
    b_d = base == D
    after = np.where(r_since & (b_d | (base == Q)), R, np.where(q_since & b_d, Q, base))
    before = shift_in_groups(after, first, stage0)
    delta = g_n * _SIGN_N[g_ek]                  # entries a set adds, a clear removes
    c = np.cumsum(delta)
    p_after = (np.where(r_new, 0, present0[r_gid]) - (c[rstart] - delta[rstart]))[run] + c
    p_before = p_after - delta
    # A step its stage does not allow, then what the entries allow.
    bad = _BAD_BEFORE[g_ek * 5 + (before + 1)]
    bad |= (is_set | is_clear) & ~is_pte
    bad |= free & is_pte & (p_before != 0)
    bad |= is_set & (g_n <= 0)
    bad |= is_clear & ((g_n < 0) | (p_after < 0))
    if bad.any() or (is_q.any() and (np.bincount(run, is_q) > 1).any()):
        return None
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
    e_up = e_after & ~e_before
    lp = np.maximum.accumulate(np.where(e_up, ar, -1))
    since = np.where(lp >= gstart, g_ts[lp], since0[gid])

    r_cause = np.where(r_new, 0, cause0[r_gid])
    r_cause[run[det]] = g_code[det]
    r_leak = np.where(r_new, -1, leak0[r_gid])
    marks: list[tuple[np.ndarray, int]] = []
    if rec:
        leak = find_leaks(f, st, zlo, zhi, first_index, is_clear, det, e_up, e_before, g_code,
                          g_pos, st.pid[lo:hi][order], pfns, first,
                          gstart, gid, starts, last, ar)
        r_leak[run[leak]] = since[leak]
        marks = [(g_idx[det & (g_code == RECLAIM)], CLS_RECLAIM), (g_idx[leak], CLS_LEAK)]
        f_cause, f_leak = r_cause[run[free]], r_leak[run[free]]
        marks += [(g_idx[free][f_cause == RECLAIM], CLS_RECLAIM_FREE),
                  (g_idx[free][(f_cause != RECLAIM) & (f_leak >= 0)], CLS_LEAK_FREE)]

    # Nothing has changed so far; from here on the stretch is applied. In time order
    # from here: each step's run (one scatter), the rest from the kinds and the runs.
    run_t = np.empty(E, np.int64)
    run_t[order] = run
    pte_t = r_pte[run_t]
    pte_free = run[free & is_pte]
    _count_frees(s, r_cause[pte_free], r_mmi[pte_free], mm_values)
    sign = _SIGN_TABLES[ek]                      # +1 an allocation, -1 a detach
    empties0 = len(s.empty_since)
    e_time = np.empty(E, np.int64)
    e_time[order] = e_delta
    at = np.flatnonzero(sign)
    run_at = run_t[at]
    mm_steps = _account(f, s, at, sign[at], r_level[run_at], r_mmi[run_at], ts, mm_values,
                        pos if want_view else None)
    pages = _SIGN_PAGES[ek]                      # +1 an allocation, -1 a free
    moved = pages != 0
    if moved.any():
        pt = s.pt_bytes + np.cumsum(pages[moved]) * f.sizes.page_size
        s.pt_bytes = int(pt[-1])
        s.pt_peak = max(s.pt_peak, int(pt.max()))
        if rec:
            f.series.page_table_bytes.extend(ts[moved], pt)
    if rec:
        f._pte_attached = extend_series(f.series.pte_attached, f._pte_attached, ts,
                                        sign * pte_t)
        f._pte_in_flight = extend_series(f.series.pte_in_flight, f._pte_in_flight, ts,
                                         _SIGN_FLYING[ek] * pte_t)
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


def _count_frees(s, cause: np.ndarray, mmi: np.ndarray, mm_values: list) -> None:
    """The freed-PTE-table counters, by how each table was detached (``cause`` and
    ``mmi``: the freed PTE tables')."""
    if not len(cause):
        return
    slot = np.where(cause == RECLAIM, 0, np.where(cause == COLLAPSE, 2, 1))
    s.freed_reclaimed += int(np.count_nonzero(slot == 0))
    s.freed_unmap += int(np.count_nonzero(slot == 1))
    s.freed_collapse += int(np.count_nonzero(slot == 2))
    per = np.zeros((int(mmi.max()) + 1, 3), np.int64)
    np.add.at(per, (mmi, slot), 1)
    for m in np.flatnonzero(per.any(axis=1)).tolist():
        mm = mm_values[m]
        had = s.mm_freed.get(mm, (0, 0, 0))
        s.mm_freed[mm] = tuple(a + int(b) for a, b in zip(had, per[m]))


def _account(f, s, at, sign, lvl, mmi, ts, mm_values, rows=None) -> tuple[dict, dict]:
    """VmPTE per mm (its series and peak) and attached tables per (mm, level), as
    ``TableHandlers._account`` keeps them, for the allocations (+) and detaches (-):
    the steps at ``at`` (in time order) with their ``sign``, level and mm index.
    With ``rows`` (the steps' rows), returns each mm's (rows, VmPTE after each) and its
    VmPTE before (None: no entry), for a stretch's markers."""
    steps: dict = {}
    start: dict = {}
    if not len(at):
        return steps, start
    lbytes = np.array(f._level_bytes, np.int64)[np.where((lvl > 0) & (lvl < 5), lvl, 0)]
    d = sign * lbytes
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
    key = mmi * 8 + np.where((lvl >= 0) & (lvl < 8), lvl, 0)
    if ((lvl < 0) | (lvl >= 8)).any():       # levels beyond the packing: one by one
        for m, level, sg in zip(mmi.tolist(), lvl.tolist(), sign.tolist()):
            k = (mm_values[m], level)
            s.mm_tables[k] = s.mm_tables.get(k, 0) + sg
        return steps, start
    if int(key.max()) < 1 << 16:         # few mms: count by key directly
        uniq = np.flatnonzero(np.bincount(key))
        net = np.bincount(key, sign)[uniq]
    else:
        uniq, inverse = np.unique(key, return_inverse=True)
        net = np.bincount(inverse, sign)
    # Every key touched gets its entry, even when the stretch leaves it as it was (so
    # do the handlers).
    for k, n in zip(uniq.tolist(), net.tolist()):
        pair = (mm_values[k // 8], k % 8)
        s.mm_tables[pair] = s.mm_tables.get(pair, 0) + int(n)
    return steps, start
