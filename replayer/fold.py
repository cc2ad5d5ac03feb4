"""Folding event rows into a :class:`ReplayState`: the replay's inner loop.

One :class:`Folder` runs the full replay with ``recording=True``: it appends to
the :class:`TableLog`, the counter series and the findings. Seeking re-runs a
short stretch from a checkpoint with ``recording=False``, which changes the
state only, so a seek never duplicates history.

Rows are ``(kind, dts, cpu, pid, *fields)`` as the trace reader yields them;
field positions come from :mod:`replayer.vocab`. The hottest kinds (entries
set and cleared, TLB flushes) are handled inline; the rest dispatch to a
method per kind. Cost: O(1) per event, except walker and IPI bookkeeping,
which is O(tables held / IPIs pending on that CPU).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable

import numpy as np
from sortedcontainers import SortedKeyList

from . import vocab as v
from .series import SeriesSet
from .state import (ATTACHED, DETACH_CODES, DETACHED, FREE_CODES, QUEUED, RCU_PENDING,
                    T_ALLOC_IDX, T_DETACH_CAUSE, T_DETACH_TS, T_FREE_IDX, T_FREE_PATH,
                    T_FREE_TS, T_QUEUE_TS, T_RCU_TS, T_VIA, VIA_CODES, Finding, ReplayState,
                    TableLog)

_kind_of, _cpu_of = itemgetter(0), itemgetter(2)
_pfn_of, _n_of = itemgetter(5), itemgetter(6)  # pte_set's pfn and n

#: Kinds the Python loop must visit; the rest change nothing (or are counted in bulk).
_HANDLED = (v.TABLE_ALLOC, v.PTE_SET, v.PTE_CLEAR, v.TABLE_DETACH, v.TABLE_QUEUE,
            v.TABLE_FREE, v.RCU_QUEUE, v.RCU_GP_START, v.RCU_GP_END, v.RCU_INVOKE,
            v.WALK_BEGIN, v.WALK_TABLE, v.WALK_END, v.IPI_SEND, v.IPI_ENTER,
            v.TABLE_SYNC_BEGIN, v.TABLE_SYNC_END, v.MM_NEW, v.MM_EXIT, v.MARKER, v.LOST,
            v.ZAP_BEGIN)
_NEEDS_PYTHON = np.zeros(1 << 16, dtype=bool)
_NEEDS_PYTHON[list(_HANDLED)] = True


def _pte_set_runs(rows, kinds: np.ndarray,
                  pos: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For the rows at ``pos``: (entries each visit adds, rows it stands for).

    A pte_set whose previous visited row is a pte_set of the same table joins
    that row's run: the run's totals go to its first row, and the joined rows
    get -1 (not visited). Other kinds get (0, 1). None when there is no pte_set.
    """
    is_set = kinds == v.PTE_SET
    n_sets = int(np.count_nonzero(is_set))
    if n_sets == 0:
        return None
    at = pos[is_set].tolist()
    set_rows = itemgetter(*at)(rows) if n_sets > 1 else (rows[at[0]],)
    pfns = np.zeros(len(pos), np.uint64)
    pfns[is_set] = np.fromiter(map(_pfn_of, set_rows), np.uint64, n_sets)
    added = np.zeros(len(pos), np.int64)
    added[is_set] = np.fromiter(map(_n_of, set_rows), np.int64, n_sets)
    joins = np.zeros(len(pos), bool)
    joins[1:] = is_set[1:] & is_set[:-1] & (pfns[1:] == pfns[:-1])
    starts = np.flatnonzero(~joins)
    out = np.full(len(pos), -1, np.int64)
    out[starts] = np.add.reduceat(added, starts)
    lengths = np.diff(np.append(starts, len(pos)))
    return out, lengths[np.cumsum(~joins) - 1] * (~joins) + joins * -1


def _finding_order(f: Finding) -> tuple:
    return (f.ts, f.events)


class ArchSizes:
    """What a table page costs, from the trace header's ``arch``.

    ``pte_bytes``: what one PTE table adds to VmPTE (PTRS_PER_PTE × sizeof(pte_t));
    ``upper_bytes``: the same for PMD/PUD tables; ``page_size``: what one table
    page adds to the global PageTables count.
    """

    def __init__(self, arch: dict[str, Any] | None) -> None:
        arch = arch or {}
        self.page_size = int(arch.get("page_size") or 4096)
        word = int(arch.get("pte_size") or 8)
        self.pte_bytes = int(arch.get("pte_table_bytes")
                             or int(arch.get("ptrs_per_pte") or self.page_size // word) * word)
        self.upper_bytes = int(arch.get("pmd_table_bytes") or self.page_size)

    def table_bytes(self, level: int) -> int:
        return self.pte_bytes if level == v.LEVEL_PTE else self.upper_bytes


class Folder:
    """Applies rows to ``state``; records history when ``recording``."""

    def __init__(self, sizes: ArchSizes, state: ReplayState, log: TableLog,
                 series: SeriesSet | None, recording: bool,
                 has_gp_events: bool = True) -> None:
        self.sizes = sizes
        self.state = state
        self.log = log
        self.series = series
        self.recording = recording
        self.has_gp_events = has_gp_events
        # Findings stay in time order even when an end-of-trace check adds older ones.
        self._level_bytes = [sizes.upper_bytes, sizes.pte_bytes] + [sizes.upper_bytes] * 3
        self._mm_series: dict[int, Any] = {}
        self.findings: SortedKeyList = SortedKeyList(key=_finding_order)
        self.markers: list[dict[str, Any]] = []
        self.syncs: list[tuple[int, str, int, int, int]] = []  # cpu, method, t0, t1, targets
        self.gp_durations: list[int] = []
        self.zaps: dict[str, int] = {}
        self._handlers: dict[int, Callable[[tuple, int, int], None]] = {
            v.TABLE_ALLOC: self._table_alloc, v.PTE_CLEAR: self._pte_clear,
            v.TABLE_DETACH: self._table_detach, v.TABLE_QUEUE: self._table_queue,
            v.TABLE_FREE: self._table_free, v.RCU_QUEUE: self._rcu_queue,
            v.RCU_GP_START: self._gp_start, v.RCU_GP_END: self._gp_end,
            v.RCU_INVOKE: self._rcu_invoke, v.WALK_BEGIN: self._walk_begin,
            v.WALK_TABLE: self._walk_table, v.WALK_END: self._walk_end,
            v.IPI_SEND: self._ipi_send, v.IPI_ENTER: self._ipi_enter,
            v.TABLE_SYNC_BEGIN: self._sync_begin, v.TABLE_SYNC_END: self._sync_end,
            v.MM_NEW: self._mm_new, v.MM_EXIT: self._mm_exit, v.MARKER: self._marker,
            v.LOST: self._lost, v.ZAP_BEGIN: self._zap_begin,
        }

    # -- the loop ----------------------------------------------------------
    def fold(self, rows, stamps, first_index: int, kinds=None, cpus=None) -> None:
        """Apply ``rows`` (absolute ``stamps``) whose first is event ``first_index``.

        ``kinds``/``cpus`` are the rows' uint16 columns when the caller has them. numpy finds the work first: TLB flushes are counted per CPU in
        bulk, kinds that change nothing are skipped, and a run of ``pte_set`` on
        one table (other kinds may sit between) is applied as one step. The
        Python loop then visits only what is left. O(n) in C plus O(work) in Python.
        """
        if not rows:
            return
        if kinds is None:
            kinds = np.fromiter(map(_kind_of, rows), np.uint16, len(rows))
            cpus = np.fromiter(map(_cpu_of, rows), np.uint16, len(rows))
        s = self.state
        k = np.asarray(kinds, np.uint16)
        flushes = k == v.TLB_FLUSH
        if flushes.any():
            tlb = s.tlb_flushes
            per_cpu = np.bincount(np.asarray(cpus, np.uint16)[flushes])
            for cpu in np.flatnonzero(per_cpu).tolist():
                tlb[cpu] = tlb.get(cpu, 0) + int(per_cpu[cpu])
        pos = np.flatnonzero(_NEEDS_PYTHON[k])
        runs = _pte_set_runs(rows, k[pos], pos)
        if runs is None:
            work_pos = pos.tolist()
        else:
            keep = runs[0] >= 0
            work_pos, work_n, work_rows = (pos[keep].tolist(), runs[0][keep].tolist(),
                                           runs[1][keep].tolist())
        present, empty_since = s.present, s.empty_since
        handlers = self._handlers
        record_empty = self.series.empty_attached.append if self.recording else None
        PTE_SET = v.PTE_SET
        for j, p in enumerate(work_pos):
            row = rows[p]
            if row[0] == PTE_SET:
                pfn = row[5]
                before = present.get(pfn)
                if before is None:
                    s.orphans += work_rows[j]
                    continue
                if before == 0 and pfn in empty_since:
                    del empty_since[pfn]
                    if record_empty:
                        record_empty(stamps[p], len(empty_since))
                present[pfn] = before + work_n[j]
            else:
                handlers[row[0]](row, stamps[p], first_index + p)
        s.index = first_index + len(rows)
        s.ts = stamps[len(rows) - 1]

    # -- helpers -----------------------------------------------------------
    def _find(self, kind: str, ts: int, cpu: int | None, pfn: int | None, mm: int | None,
              message: str, *events: int) -> None:
        if self.recording:
            self.findings.add(Finding(kind, ts, cpu, pfn, mm, message, tuple(events)))

    def _account(self, mm: int, level: int, sign: int, ts: int) -> None:
        """One table of ``level`` attached (sign 1) to or detached (-1) from ``mm``."""
        s = self.state
        b = s.mm_bytes.get(mm, 0) + sign * self._level_bytes[level if 0 < level < 5 else 0]
        s.mm_bytes[mm] = b
        if b > s.mm_peak.get(mm, 0):
            s.mm_peak[mm] = b
        key = (mm, level)
        s.mm_tables[key] = s.mm_tables.get(key, 0) + sign
        if self.recording:
            series = self._mm_series.get(mm)
            if series is None:
                series = self._mm_series[mm] = self.series.mm_bytes(mm)
            series.append(ts, b)

    def _pages(self, sign: int, ts: int) -> None:
        """One table page allocated (1) or freed (-1): the global PageTables count."""
        s = self.state
        s.pt_bytes += sign * self.sizes.page_size
        if s.pt_bytes > s.pt_peak:
            s.pt_peak = s.pt_bytes
        if self.recording:
            self.series.table_bytes.append(ts, s.pt_bytes)

    def _empty_changed(self, ts: int) -> None:
        if self.recording:
            self.series.empty_attached.append(ts, len(self.state.empty_since))

    # -- tables ------------------------------------------------------------
    def _table_alloc(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        mm, level, pfn, addr = row[4], row[5], row[6], row[7]
        if pfn in s.tid_of:
            # The previous table at this pfn was never seen freed (events lost, or a
            # trace that started late): drop it from the state, note it.
            s.orphans += 1
            self._forget(pfn, ts)
        tid = s.next_tid
        s.next_tid = tid + 1
        if self.recording:
            self.log.append(pfn, mm, level, addr, ts, i)
        s.tid_of[pfn] = tid
        s.stage[pfn] = ATTACHED
        if level == v.LEVEL_PTE:
            s.present[pfn] = 0
            s.empty_since[pfn] = ts
            self._empty_changed(ts)
        if row[3] is not None:
            s.pid_mm[row[3]] = mm
        self._account(mm, level, 1, ts)
        self._pages(1, ts)

    def _forget(self, pfn: int, ts: int) -> None:
        """Drop a table from the state: its page, and its VmPTE share if still attached."""
        s = self.state
        tid = s.tid_of.pop(pfn)
        if s.stage.pop(pfn) == ATTACHED:
            self._account(self.log.mm(tid), self.log.level(tid), -1, ts)
        s.present.pop(pfn, None)
        if s.empty_since.pop(pfn, None) is not None:
            self._empty_changed(ts)
        self._pages(-1, ts)

    def _pte_clear(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn = row[5]
        p = s.present.get(pfn)
        if p is None:
            s.orphans += 1
            return
        p = max(0, p - row[6])
        s.present[pfn] = p
        if p == 0 and s.stage.get(pfn) == ATTACHED and pfn not in s.empty_since:
            s.empty_since[pfn] = ts
            self._empty_changed(ts)

    def _table_detach(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn = row[5]
        if s.stage.get(pfn) != ATTACHED:
            s.orphans += 1
            return
        tid = s.tid_of[pfn]
        log = self.log
        level = log.level(tid)
        s.stage[pfn] = DETACHED
        if s.empty_since.pop(pfn, None) is not None:
            self._empty_changed(ts)
        if self.recording:
            log.set_step(tid, T_DETACH_TS, ts, i)
            log.set(tid, T_DETACH_CAUSE, DETACH_CODES.get(row[6], DETACH_CODES["other"]))
        self._account(log.mm(tid), level, -1, ts)

    def _table_queue(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn = row[4]
        if s.stage.get(pfn) not in (DETACHED, ATTACHED):
            s.orphans += 1
            return
        s.stage[pfn] = QUEUED if s.stage[pfn] == DETACHED else s.stage[pfn]
        if self.recording:
            tid = s.tid_of[pfn]
            self.log.set_step(tid, T_QUEUE_TS, ts, i)
            self.log.set(tid, T_VIA, VIA_CODES.get(row[5], 0))

    def _table_free(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn, cpu = row[4], row[2]
        tid = s.tid_of.get(pfn)
        log = self.log
        if tid is None:
            s.orphans += 1  # the same in both modes: seeking must reach the same state
            last = log.generations.get(pfn) if self.recording else None
            if last and log.get(last[-1], T_FREE_IDX) >= 0:
                self._find("double_free", ts, cpu, pfn, log.mm(last[-1]),
                           f"table {pfn:#x} freed again; it was freed at event "
                           f"{log.get(last[-1], T_FREE_IDX)}", log.get(last[-1], T_FREE_IDX), i)
            return
        mm = log.mm(tid)
        st = s.stage[pfn]
        if st == ATTACHED:
            self._find("free_attached", ts, cpu, pfn, mm,
                       f"table {pfn:#x} freed while still attached to mm {mm:#x}",
                       log.get(tid, T_ALLOC_IDX), i)
        if s.present.get(pfn, 0) > 0:
            self._find("free_nonempty", ts, cpu, pfn, mm,
                       f"table {pfn:#x} freed with {s.present[pfn]} present entries",
                       log.get(tid, T_ALLOC_IDX), i)
        for wcpu, walk in s.walkers.items():
            if wcpu == cpu:
                continue
            for held_pfn, held_tid, held_idx in walk[4]:
                if held_pfn == pfn and held_tid == tid:
                    self._find("use_after_free", ts, wcpu, pfn, mm,
                               f"table {pfn:#x} freed on CPU {cpu} ({row[5]}) while a "
                               f"{walk[1]} walker on CPU {wcpu} ({walk[2]}) still holds it",
                               walk[5], held_idx, i)
        if log.level(tid) == v.LEVEL_PTE:
            cause = log.get(tid, T_DETACH_CAUSE)
            slot = 0 if cause == DETACH_CODES["reclaim"] else (
                2 if cause == DETACH_CODES["collapse"] else 1)
            if slot == 0:
                s.freed_reclaimed += 1
            elif slot == 2:
                s.freed_collapse += 1
            else:
                s.freed_unmap += 1
            f = list(s.mm_freed.get(mm, (0, 0, 0)))
            f[slot] += 1
            s.mm_freed[mm] = tuple(f)
        if self.recording:
            log.set_step(tid, T_FREE_TS, ts, i)
            log.set(tid, T_FREE_PATH, FREE_CODES.get(row[5], 0))
        self._forget(pfn, ts)

    # -- RCU ---------------------------------------------------------------
    def _rcu_queue(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        cb, pfns = row[4], row[6] or ()
        s.rcu_pending[cb] = (ts, row[5], tuple(pfns), i)
        for pfn in pfns:
            if s.stage.get(pfn) in (DETACHED, QUEUED):
                s.stage[pfn] = RCU_PENDING
                if self.recording:
                    tid = s.tid_of[pfn]
                    self.log.set_step(tid, T_RCU_TS, ts, i)
        if self.recording:
            self.series.rcu_pending.append(ts, len(s.rcu_pending))

    def _gp_start(self, row: tuple, ts: int, i: int) -> None:
        self.state.gp_open[row[4]] = (ts, i)

    def _gp_end(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        start = s.gp_open.pop(row[4], None)
        if start is not None:
            s.gp_done_after = max(s.gp_done_after, start[1])
            if self.recording:
                self.gp_durations.append(ts - start[0])

    def _rcu_invoke(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        entry = s.rcu_pending.pop(row[4], None)
        s.rcu_invoked += 1
        if entry is None:
            return
        if self.recording:
            self.series.rcu_pending.append(ts, len(s.rcu_pending))
        if self.has_gp_events and s.gp_done_after < entry[3]:
            pfns = entry[2]
            self._find("rcu_early", ts, row[2], pfns[0] if pfns else None, None,
                       f"RCU callback {row[4]} ({entry[1]}) ran before any grace period "
                       f"that started after it was queued", entry[3], i)

    # -- walkers -----------------------------------------------------------
    def _walk_begin(self, row: tuple, ts: int, i: int) -> None:
        self.state.walkers[row[2]] = (ts, row[5], row[6], row[4], (), i)

    def _walk_table(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        cpu, pfn = row[2], row[4]
        walk = s.walkers.get(cpu)
        tid = s.tid_of.get(pfn, -1)
        if walk is not None:
            s.walkers[cpu] = walk[:4] + (walk[4] + ((pfn, tid, i),), walk[5])
        if tid == -1 and self.recording:
            last = self.log.generations.get(pfn)
            if last and 0 <= self.log.get(last[-1], T_FREE_IDX) < i:
                self._find("use_after_free", ts, cpu, pfn, self.log.mm(last[-1]),
                           f"walker on CPU {cpu} dereferences table {pfn:#x}, freed at "
                           f"event {self.log.get(last[-1], T_FREE_IDX)}",
                           self.log.get(last[-1], T_FREE_IDX), i)

    def _walk_end(self, row: tuple, ts: int, i: int) -> None:
        self.state.walkers.pop(row[2], None)

    # -- IPIs and syncs ----------------------------------------------------
    def _ipi_send(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        cpu, targets, reason = row[2], row[4] or (), row[5]
        s.ipis_sent[cpu] = s.ipis_sent.get(cpu, 0) + len(targets)
        pending = s.ipi_inflight
        for t in targets:
            pending[t] = pending.get(t, ()) + ((ts, reason, cpu, i),)
        if self.recording:
            self.series.ipis.append(ts, sum(s.ipis_sent.values()))

    def _ipi_enter(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        cpu, reason = row[2], row[4]
        s.ipis_received[cpu] = s.ipis_received.get(cpu, 0) + 1
        pending = s.ipi_inflight.get(cpu)
        if not pending:
            return
        # Answer the oldest IPI of this reason; else the oldest of any.
        if pending[0][1] == reason:
            rest = pending[1:]
        else:
            k = next((j for j, p in enumerate(pending) if p[1] == reason), 0)
            rest = pending[:k] + pending[k + 1:]
        if rest:
            s.ipi_inflight[cpu] = rest
        else:
            del s.ipi_inflight[cpu]

    def _sync_begin(self, row: tuple, ts: int, i: int) -> None:
        self.state.sync_open[row[2]] = (row[4], tuple(row[5] or ()), ts, i)

    def _sync_end(self, row: tuple, ts: int, i: int) -> None:
        begin = self.state.sync_open.pop(row[2], None)
        if begin is not None and self.recording:
            self.syncs.append((row[2], begin[0], begin[2], ts, len(begin[1])))

    # -- address spaces, markers, loss ---------------------------------------
    def _mm_new(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        mm, tgid, command = row[4], row[5], row[6]
        if mm in s.mm_exit:  # an mm_struct address reused by a new process
            del s.mm_exit[mm]
            s.mm_pids.pop(mm, None)
            s.mm_peak[mm] = s.mm_bytes.get(mm, 0)
        pids = s.mm_pids.get(mm, ())
        if tgid is not None and tgid not in pids:
            s.mm_pids[mm] = pids + (tgid,)
        if command is not None:
            s.mm_comm[mm] = command
        s.mm_bytes.setdefault(mm, 0)
        if tgid is not None:
            s.pid_mm[tgid] = mm

    def _mm_exit(self, row: tuple, ts: int, i: int) -> None:
        self.state.mm_exit[row[4]] = ts

    def _zap_begin(self, row: tuple, ts: int, i: int) -> None:
        if row[3] is not None:
            self.state.pid_mm[row[3]] = row[4]
        if self.recording:
            self.zaps[row[7]] = self.zaps.get(row[7], 0) + 1

    def _marker(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        s.markers += 1
        if self.recording:
            mm = s.pid_mm.get(row[3])
            self.markers.append({"ts": ts, "cpu": row[2], "pid": row[3], "text": row[4],
                                 "mm": mm, "table_bytes": s.mm_bytes.get(mm) if mm else None,
                                 "index": i})

    def _lost(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        cpu, n = row[2], row[4] or 0
        s.lost[cpu] = s.lost.get(cpu, 0) + n
        self._find("events_lost", ts, cpu, None, None,
                   f"the ring buffer dropped {n} events on CPU {cpu}: counts after this "
                   f"point may be wrong", i)
