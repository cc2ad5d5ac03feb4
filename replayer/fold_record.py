"""What a stretch of table steps leaves in the history, when the replay records it:
the table log's records, the counter series, and which detaches took a table that
had sat empty (the leaks PT_RECLAIM is about). The recording half of
:func:`.fold_lives.apply_lives`; see there for the arrays (steps grouped by pfn).
"""

from __future__ import annotations

from collections import Counter, deque
from itertools import repeat

import numpy as np

from .fold_bulk import NO_PID
from .state import (DETACH_CODES, DETACHED as D, QUEUED as Q, T_ADDR, T_ALLOC_IDX,
                    T_ALLOC_TS, T_DETACH_CAUSE, T_DETACH_IDX, T_DETACH_TS, T_FREE_IDX,
                    T_FREE_PATH, T_FREE_TS, T_LEAK_TS, T_LEVEL, T_MM, T_PFN, T_QUEUE_IDX,
                    T_QUEUE_TS, T_RCU_IDX, T_RCU_TS, T_VIA)

RECLAIM, COLLAPSE = DETACH_CODES["reclaim"], DETACH_CODES["collapse"]
_NO_ZAP = -2                   # "no zap by this task yet" (the handlers' None)


def shift_in_groups(x: np.ndarray, first: np.ndarray, start_values: np.ndarray) -> np.ndarray:
    """``x`` of the previous step in the same group; ``start_values`` at group starts."""
    out = np.empty_like(x)
    out[1:] = x[:-1]
    out[first] = start_values
    return out


def _latest(zpos, zpid, zval, qpos, qpid) -> tuple[np.ndarray, np.ndarray]:
    """For each query (position, pid): whether a zap row of that pid lies before it
    in the stretch, and the latest such zap's ``zval``. The zap rows (few) sorted by
    task then position; each query is one ``searchsorted`` among them."""
    q = len(qpos)
    if not len(zpos) or not q:
        return np.zeros(q, bool), np.zeros(q, np.int64)
    order = np.lexsort((zpos, zpid))
    tasks = np.unique(zpid)
    z_task = np.searchsorted(tasks, zpid[order])
    q_task = np.searchsorted(tasks, qpid)
    known = q_task < len(tasks)
    known[known] = tasks[q_task[known]] == qpid[known]
    width = int(max(zpos.max(), qpos.max())) + 1
    j = np.searchsorted(z_task * width + zpos[order], q_task * width + qpos) - 1
    found = known & (j >= 0)
    found[found] = z_task[j[found]] == q_task[found]
    return found, zval[order][np.maximum(j, 0)]


def _from_dict(table: dict, pids: np.ndarray, default: int) -> np.ndarray:
    """``table[pid]`` (None for ``NO_PID``) for each pid, ``default`` when absent or None;
    one lookup per distinct pid."""
    uniq, inverse = np.unique(pids, return_inverse=True)
    got = [table.get(None if p == NO_PID else p) for p in uniq.tolist()]
    return np.array([default if g is None else g for g in got], np.int64)[inverse]


def find_leaks(f, st, zlo, zhi, first_index, is_clear, det, e_up, e_before, g_code, g_pos,
               g_pid, pfns, first, gstart, gid, starts, last, ar) -> np.ndarray:
    """Which detaches took a table that sat empty since before the zap that took it
    (``TableHandlers._table_detach``), and ``f._emptied_by`` updated as the clears
    and detaches of the stretch leave it. ``e_up``: the steps that leave a table
    empty that was not."""
    zpos, zpid, zbegin, _, _ = (x[zlo:zhi] for x in st.zaps)
    zidx = zpos + first_index
    cplus = is_clear & e_up
    # The zap open on the clearing task when a clear empties a table.
    found, val = _latest(zpos, zpid, np.where(zbegin, zidx, -1), g_pos[cplus], g_pid[cplus])
    open_zap = np.where(found, val, 0)
    if not found.all():
        open_zap[~found] = _from_dict(f._open_zap, g_pid[cplus][~found], -1)
    emptied = np.full(len(cplus), -1, np.int64)
    emptied[cplus] = open_zap
    # The detaching task's latest zap.
    d = np.flatnonzero(det)
    found, val = _latest(zpos[zbegin], zpid[zbegin], zidx[zbegin], g_pos[d], g_pid[d])
    taken = np.where(found, val, 0)
    if not found.all():
        taken[~found] = _from_dict(f._last_zap, g_pid[d][~found], _NO_ZAP)
    # The zap that emptied a table: the latest emptying clear since the pfn's previous
    # detach; with neither in the stretch, what the dict holds. Asked at the detaches
    # only: the step before each (in its group) that is one of those.
    step = cplus | det
    lm = np.maximum.accumulate(np.where(step, ar, -1))
    lm_before = np.where(first[d], -1, lm[d - 1])        # (d - 1 read only past a start)
    in_group = lm_before >= gstart[d]
    by = np.where(cplus[lm_before], emptied[lm_before], -1)
    out = np.flatnonzero(~in_group)
    if len(out):
        get = f._emptied_by.get
        by[out] = np.fromiter(map(get, pfns[gid[d[out]]].tolist(), repeat(-1)), np.int64,
                              len(out))
    leak = np.zeros(len(cplus), bool)
    code = g_code[d]
    leak[d] = e_before[d] & (code != RECLAIM) & (code != COLLAPSE) & \
        (taken != _NO_ZAP) & (by != taken)
    final = lm[last]
    moved = final >= starts
    set_by = moved & cplus[final]
    f._emptied_by.update(zip(pfns[set_by].tolist(), emptied[final[set_by]].tolist()))
    deque(map(f._emptied_by.pop, pfns[moved & ~set_by].tolist(), repeat(None)), 0)
    return leak


def extend_series(series, start: int, ts: np.ndarray, deltas: np.ndarray) -> int:
    """Append the running value at each step that changes it; returns the end value."""
    moved = deltas != 0
    if not moved.any():
        return start
    values = start + np.cumsum(deltas[moved])
    series.extend(ts[moved], values)
    return int(values[-1])


def log_steps(log, s, g_ts, g_idx, g_code, g_pfn, run, r_tid, r_leak, before, is_alloc,
              det, free, is_q, is_r, st, a_lo, a_hi, a_mmi, new_mms) -> None:
    """The steps' times, indices and codes in the table log: new records for the
    allocations, slots of older records set in place."""
    tid = r_tid[run]
    took_rcu = is_r & ((before == D) | (before == Q))
    writes = [(det, ((T_DETACH_TS, g_ts), (T_DETACH_IDX, g_idx), (T_DETACH_CAUSE, g_code),
                     (T_LEAK_TS, r_leak[run]))),
              (is_q, ((T_QUEUE_TS, g_ts), (T_QUEUE_IDX, g_idx), (T_VIA, g_code))),
              (took_rcu, ((T_RCU_TS, g_ts), (T_RCU_IDX, g_idx))),
              (free, ((T_FREE_TS, g_ts), (T_FREE_IDX, g_idx), (T_FREE_PATH, g_code)))]
    n_new = a_hi - a_lo
    first_new = s.next_tid
    # The records, the new ones past the last (the log publishes them once written).
    view = log.spare(n_new)
    if n_new:
        records = view[len(view) - n_new:]
        records.fill(-1)
        t_alloc = np.flatnonzero(is_alloc)
        rows = tid[t_alloc] - first_new
        records[rows, T_PFN] = g_pfn[t_alloc]
        records[rows, T_ALLOC_TS] = g_ts[t_alloc]
        records[rows, T_ALLOC_IDX] = g_idx[t_alloc]
        records[:, T_MM] = a_mmi
        records[:, T_ADDR] = st.addr[a_lo:a_hi]
        records[:, T_LEVEL] = st.level[a_lo:a_hi]
    for mask, slots in writes:
        at = np.flatnonzero(mask)
        if not len(at):
            continue
        t = tid[at]
        for slot, values in slots:
            view[t, slot] = values[at]
    for m in new_mms:
        log.mm_index[m] = len(log.mms)
        log.mms.append(m)
    log.publish(n_new)


def record_zaps(f, st, zlo: int, zhi: int, first_index: int) -> None:
    """What the zap rows ``zlo:zhi`` of ``st.zaps`` record (``_zap_begin`` and
    ``_zap_end``; the pid → mm writes are :func:`.fold_lives.apply_lives`'s): zaps by
    cause, and each task's latest zap and the one still open. Python per task."""
    zpos, zpid, zbegin, _, causes = (x[zlo:zhi] for x in st.zaps)
    if not len(zpos):
        return
    counts = Counter(causes[zbegin].tolist())
    for cause, n in counts.items():
        f.zaps[cause] = f.zaps.get(cause, 0) + n
    order = np.argsort(zpid, kind="stable")
    by_pid = zpid[order]
    ends = np.r_[by_pid[1:] != by_pid[:-1], True]
    begin_at = np.where(zbegin, np.arange(len(zpos)), -1)[order]
    # The latest zap_begin of each task: a running maximum within its group.
    starts = np.r_[True, ends[:-1]]          # a task's first row follows another's last
    group = np.cumsum(starts) - 1
    latest = np.full(len(zpos), -1, np.int64)
    np.maximum.at(latest, group, begin_at)
    last_row = order[ends]
    for pid, last, row in zip(by_pid[ends].tolist(), latest[:int(group[-1]) + 1].tolist(),
                              last_row.tolist()):
        key = None if pid == NO_PID else pid
        if last >= 0:
            f._last_zap[key] = first_index + int(zpos[last])
        if zbegin[row]:
            f._open_zap[key] = first_index + int(zpos[row])
        else:
            f._open_zap.pop(key, None)
