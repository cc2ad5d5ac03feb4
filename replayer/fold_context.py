"""Handlers for what surrounds the tables: RCU, lockless walkers, IPIs and walker
syncs, address spaces, markers and lost events.

A mixin of :class:`replayer.fold.Folder`; see there for the ``recording`` contract.
"""

from __future__ import annotations

from .state import DETACHED, QUEUED, RCU_PENDING, T_FREE_IDX, T_FREE_TS, T_RCU_TS, Finding


class ContextHandlers:
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
                f"RCU callback {row[4]} ({entry[1]}) ran before any grace period "
                f"that started after it was queued", (entry[3], i), since=entry[0]))

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
                           self.log.get(last[-1], T_FREE_IDX), i,
                           since=self.log.get(last[-1], T_FREE_TS))

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

    def _ipi_answer(self, row: tuple, ts: int, i: int) -> None:
        """:meth:`_ipi_enter` without the count (the fast path counts in bulk)."""
        self.state.ipi_inflight.pop(row[2], None)

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

    def _marker(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        s.markers += 1
        if self.recording:
            mm = s.pid_mm.get(row[3])
            self.markers.append({"ts": ts, "cpu": row[2], "pid": row[3], "text": row[4],
                                 "mm": mm, "table_bytes": s.mm_bytes.get(mm) if mm else None,
                                 "empty_attached": len(s.empty_since), "index": i})

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
