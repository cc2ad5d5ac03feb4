"""Handlers for what surrounds the tables: RCU, lockless walkers, IPIs and walker
syncs, address spaces, markers and lost events.

A mixin of :class:`replayer.fold.Folder`; see there for the ``recording`` contract.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from . import vocab as v
from .vmpte import kernel_sample
from .state import (DETACHED, QUEUED, RCU_PENDING, T_ALLOC_IDX, T_FREE_IDX, T_FREE_TS,
                    T_RCU_TS, Finding)


def _counts(cpus: np.ndarray, weights: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``(cpu, count)`` for each CPU in ``cpus`` (each counted ``weights`` times; a
    CPU whose rows weigh nothing is still listed, as the per-row handlers list it)."""
    rows = np.bincount(cpus)
    per = np.bincount(cpus, weights) if weights is not None else rows
    return [(cpu, int(per[cpu])) for cpu in np.flatnonzero(rows).tolist()]


class ContextHandlers:
    # -- RCU ---------------------------------------------------------------
    def _rcu_queue(self, row: tuple, ts: int, i: int) -> None:
        self._rcu_tables(row, ts, i)
        self._rcu_callback(row, ts, i)

    def _rcu_tables(self, row: tuple, ts: int, i: int) -> None:
        """The tables half of an rcu_queue (its callback half done in bulk)."""
        s = self.state
        for pfn in row[6] or ():
            if s.stage.get(pfn) in (DETACHED, QUEUED):
                s.stage[pfn] = RCU_PENDING
                if self.recording:
                    tid = s.tid_of[pfn]
                    self.log.set_step(tid, T_RCU_TS, ts, i)

    def _rcu_callback(self, row: tuple, ts: int, i: int) -> None:
        """The callback half of an rcu_queue (its tables' half done in bulk)."""
        s = self.state
        s.rcu_pending[row[4]] = (ts, row[5], tuple(row[6] or ()), i)
        if self.recording:
            self.series.rcu_pending.append(ts, len(s.rcu_pending))

    def _gp_start(self, row: tuple, ts: int, i: int) -> None:
        self.state.gp_open[row[4]] = (ts, i)

    def _gp_end(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        self.gp_ends_seen += 1
        if self.recording:
            self.gp_end_times.append(ts)
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
        if s.gp_done_after < entry[3] and self.recording:
            # Kept aside: only a trace with grace-period events can prove it (Replay adds
            # these at the end when some rcu_gp_end was seen).
            pfns = entry[2]
            self.early_callbacks.append(Finding(
                "rcu_early", ts, row[2], pfns[0] if pfns else None, None,
                f"RCU callback {row[4]} ({entry[1] or 'function unknown'}) ran before any "
                f"grace period that started after it was queued", (entry[3], i),
                since=entry[0]))

    # -- walkers -----------------------------------------------------------
    def _walk_begin(self, row: tuple, ts: int, i: int) -> None:
        self.state.walkers[row[2]] = (ts, row[5], row[6], row[4], (), i)

    def _walk_table(self, row: tuple, ts: int, i: int) -> None:
        self._walk_read(row, ts, i, self.state.tid_of.get(row[4], -1))

    def _walk_read(self, row: tuple, ts: int, i: int, tid: int) -> None:
        """A walker reads table ``row[4]``, which is table ``tid`` at that moment (-1:
        none; the bulk path knows it from its steps, the log may hold later ones)."""
        s = self.state
        cpu, pfn = row[2], row[4]
        walk = s.walkers.get(cpu)
        if walk is not None:
            s.walkers[cpu] = walk[:4] + (walk[4] + ((pfn, tid, i),), walk[5])
        if tid == -1 and self.recording:
            log = self.log
            last = [t for t in log.tids_of(pfn) if log.get(t, T_ALLOC_IDX) < i]
            if last and 0 <= log.get(last[-1], T_FREE_IDX) < i:
                self._find("use_after_free", ts, cpu, pfn, log.mm(last[-1]),
                           f"walker on CPU {cpu} dereferences table {pfn:#x}, freed at "
                           f"event {log.get(last[-1], T_FREE_IDX)}",
                           log.get(last[-1], T_FREE_IDX), i,
                           since=log.get(last[-1], T_FREE_TS))

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
        cpu = row[2]
        s.ipis_received[cpu] = s.ipis_received.get(cpu, 0) + 1
        # The handler drains the CPU's whole queue (flush_smp_call_function_queue), so
        # one entry answers every IPI pending there (several senders' IPIs coalesce).
        s.ipi_inflight.pop(cpu, None)

    def _ipis_in_bulk(self, rows, kr, c: np.ndarray, stamps, first_index: int,
                      field) -> np.ndarray:
        """What every ipi_send and ipi_enter row of the stretch does, at once: the
        per-CPU counts, the IPIs-sent series, and what is left pending on each CPU
        (the sends after its last handler entry). Returns their positions, which the
        loop then skips. ``field(kind, j, at)``: a field of the rows at ``at``. O(n)
        in C, plus Python per IPI still pending at the end of the stretch."""
        s = self.state
        entered = kr.at(v.IPI_ENTER)
        sends = kr.at(v.IPI_SEND)
        if len(entered):
            per_cpu = np.bincount(c[entered])
            cpus = np.flatnonzero(per_cpu).tolist()
            received = s.ipis_received
            for cpu, n in zip(cpus, per_cpu[cpus].tolist()):
                received[cpu] = received.get(cpu, 0) + n
            for cpu in cpus:
                s.ipi_inflight.pop(cpu, None)      # its last entry answered all before
        if len(sends):
            targets = field(v.IPI_SEND, 0, sends)
            try:
                lens = np.array(list(map(len, targets)), np.int64)
            except TypeError:                       # a nil: no target
                targets = [t or () for t in targets]
                lens = np.array(list(map(len, targets)), np.int64)
            total = sum(s.ipis_sent.values())
            for cpu, n in _counts(c[sends], lens):
                s.ipis_sent[cpu] = s.ipis_sent.get(cpu, 0) + n
            ts = np.frombuffer(stamps, np.int64)[sends]      # stamps: array('q')
            if self.recording:
                self.series.ipis.extend(ts, total + np.cumsum(lens))
            # The targets as the rows hold them (dict keys as the per-row handler makes
            # them), and as numbers for the comparisons.
            flat_targets = list(chain.from_iterable(targets))
            if not flat_targets:
                return np.concatenate([sends, entered])
            flat = np.array(flat_targets, np.int64)
            last_entry = np.full(int(max(flat.max(), c[entered].max() if len(entered)
                                         else 0)) + 1, -1, np.int64)
            np.maximum.at(last_entry, c[entered], entered)
            late = np.flatnonzero(np.repeat(sends, lens) > last_entry[flat])
            if len(late):
                owner = np.repeat(np.arange(len(sends)), lens)
                reasons = field(v.IPI_SEND, 1, sends)
                pending = s.ipi_inflight
                for j, t in zip(owner[late].tolist(), late.tolist()):
                    target = flat_targets[t]
                    p = int(sends[j])
                    pending[target] = pending.get(target, ()) + (
                        (int(ts[j]), reasons[j], int(c[p]), first_index + p),)
        return np.concatenate([sends, entered])

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
            self._last_zap[row[3]] = self._open_zap[row[3]] = i

    def _zap_end(self, row: tuple, ts: int, i: int) -> None:
        if self.recording:
            self._open_zap.pop(row[3], None)

    def _marker(self, row: tuple, ts: int, i: int, view=None) -> None:
        """A marker; ``view`` (a :class:`.fold_view.StretchView`): what it reads as it
        was at its row, when the bulk path has applied its stretch already."""
        s = self.state
        s.markers += 1
        if self.recording:
            # A kernel VmPTE sample names the process it read (record writes it from
            # ptviz's own pid): ptviz's count is that process's.
            sample = kernel_sample(row[4])
            pid = sample[0] if sample is not None and sample[0] is not None else row[3]
            if view is None:
                mm = s.pid_mm.get(pid)
                vmpte, empty = s.mm_bytes.get(mm) if mm else None, len(s.empty_since)
            else:
                mm = view.pid_mm(pid, i)
                vmpte, empty = view.mm_bytes(mm, i) if mm else None, view.empty_count(i)
            self.markers.append({"ts": ts, "cpu": row[2], "pid": row[3], "text": row[4],
                                 "mm": mm, "vmpte_bytes": vmpte, "empty_attached": empty,
                                 "index": i})

    def _lost(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        cpu, n = row[2], row[4]
        # An unknown count (nil) still marks the CPU as lossy: count it as one.
        s.lost[cpu] = s.lost.get(cpu, 0) + (n if n is not None else 1)
        if self.recording:
            self.losses.append((cpu, ts))
        dropped = f"{n}" if n is not None else "an unknown number of"
        self._find("events_lost", ts, cpu, None, None,
                   f"the ring buffer dropped {dropped} events on CPU {cpu}: counts after this "
                   f"point may be wrong", i)
