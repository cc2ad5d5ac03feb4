"""The simulated machine: CPUs, lockless walkers, IPIs, RCU, the output stream.

The workload's task is the master clock (``Machine.now``). Other CPUs run
lockless page-table walkers whose sessions are generated lazily, always up to
the moment the workload is about to act, so a walker sees the page tables as
they are when it starts. Facts that make it a model of the kernel rather than
a drawing (docs/kernel-facts.md):

* An IPI is handled only when the target has interrupts on: a GUP-fast walker
  (IRQs off) delays it until its walk ends; a pte_offset_map walker
  (rcu_read_lock only) does not (§2.5 GUP-fast comment, §3 cover letter).
* A grace period ends only after every CPU has left the read-side or IRQ-off
  section it was in when the period started (consolidated RCU, §2.5).
* smp_call_function() waits for every target (wait=1) (§2.5).

Events are buffered and written in time order (ties by emission order).
Deterministic: one ``random.Random(seed)``, no wall clock, no hash order.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from operator import itemgetter
from typing import Callable

from replayer import vocab as v
from replayer.traceio import TraceWriter

START_NS = 1_000_000_000
IPI_LATENCY_NS = 1_500        # send → handler entry on an interruptible CPU
IPI_HANDLER_NS = 800          # a TLB-flush or empty sync handler
RCU_WAKE_NS = 200_000         # the grace-period kthread starts a period after a call_rcu
RCU_CB_NS = 2_000             # softirq delay from the end of a period to the callback
FLUSH_EVERY = 20_000          # buffered events between flushes to the writer


class WalkerCpu:
    """Sessions of one lockless walker on one CPU: ``[begin, end)`` intervals."""

    def __init__(self, machine: "Machine", cpu: int, walker: str, mean_gap: int,
                 mean_hold: int, pid: int, comm: str) -> None:
        self.m, self.cpu, self.walker = machine, cpu, walker
        self.protect = "irq_off" if walker == "gup_fast" else "rcu"
        self.mean_gap, self.mean_hold = mean_gap, mean_hold
        self.pid, self.comm = pid, comm
        self.next_begin = machine.now + machine.rng.randrange(mean_gap + 1)
        self.current: tuple[int, int] | None = None     # the latest session
        self.pick: Callable[[], int | None] = lambda: None  # the table a walk reaches

    def advance(self, t: int) -> None:
        """Generate every session that begins at or before ``t``."""
        rng, m = self.m.rng, self.m
        while self.next_begin <= t:
            begin = max(self.next_begin, m.busy_until.get(self.cpu, 0))
            if begin > t:
                self.next_begin = begin
                return
            end = begin + 200 + rng.randrange(2 * self.mean_hold + 1)
            mm = m.walk_mm
            m.emit(begin, self.cpu, v.WALK_BEGIN, self.pid, (mm, self.walker, self.protect),
                   self.comm)
            pfn = self.pick()
            if pfn is not None:
                m.emit(begin + 100, self.cpu, v.WALK_TABLE, self.pid, (pfn,), self.comm)
            m.emit(end, self.cpu, v.WALK_END, self.pid, (), self.comm)
            self.current = (begin, end)
            self.next_begin = end + 1 + rng.randrange(2 * self.mean_gap + 1)

    def section_at(self, t: int) -> tuple[int, int] | None:
        """The session containing ``t``, if any (sessions up to ``t`` are generated)."""
        self.advance(t)
        cur = self.current
        return cur if cur is not None and cur[0] <= t < cur[1] else None


#: What the writer takes of a buffered event (ts, seq, kind, cpu, pid, fields, comm).
_WRITTEN = itemgetter(0, 2, 3, 4, 5, 6)


class Machine:
    """CPUs, the output stream and the shared mechanisms (IPIs, RCU)."""

    def __init__(self, writer: TraceWriter, cpus: int, seed: int, ipi_flush: bool) -> None:
        self.writer = writer
        self.ncpus = cpus
        self.rng = random.Random(seed)
        self.now = START_NS
        self.ipi_flush = ipi_flush
        self._buffer: list[tuple] = []
        self._seq = 0
        self._flush_at = FLUSH_EVERY
        self.events = 0
        self.busy_until: dict[int, int] = {}
        self.walkers: dict[int, WalkerCpu] = {}
        self.walk_mm = 0
        self.gp_end = 0          # end of the latest grace period planned
        self._gp_planned: list | None = None   # [start, end, cpu, callbacks], not yet written
        self.gp_count = 0
        self.cb_count = 0
        self.ipis = 0
        self.sync_wait_ns = 0

    # -- output ------------------------------------------------------------
    @property
    def emitted(self) -> int:
        """Events emitted so far, written or still buffered."""
        return self._seq

    def emit(self, ts: int, cpu: int, kind: int, pid: int | None, fields: tuple,
             comm: str | None = None) -> None:
        self._seq += 1
        self._buffer.append((ts, self._seq, kind, cpu, pid, fields, comm))
        if len(self._buffer) >= self._flush_at:
            self.flush(self.safe_time())
            # Amortised: what could not be written yet does not trigger the next flush.
            self._flush_at = len(self._buffer) + FLUSH_EVERY

    def emit_many(self, t0: int, step: int, count: int, cpu: int, kind: int,
                  pid: int | None, fields: tuple, comm: str | None) -> None:
        """``count`` identical events ``step`` ns apart after ``t0``; advances the clock."""
        seq = self._seq
        self._buffer.extend([(t0 + step * j, seq + j, kind, cpu, pid, fields, comm)
                             for j in range(1, count + 1)])
        self._seq = seq + count
        self.now = t0 + step * count
        if len(self._buffer) >= self._flush_at:
            self.flush(self.safe_time())
            self._flush_at = len(self._buffer) + FLUSH_EVERY

    def safe_time(self) -> int:
        """No event earlier than this will be emitted any more."""
        pending = [w.next_begin for w in self.walkers.values()]
        if self._gp_planned is not None:
            pending.append(self._gp_planned[0])
        return min([self.now] + pending)

    def flush(self, before: int | None = None) -> None:
        """Write buffered events with ``ts <= before`` (all when None), in time order."""
        buf = self._buffer
        buf.sort()
        # Anything emitted later has ts >= before and a larger sequence number, so
        # events at exactly ``before`` can go now.
        cut = len(buf) if before is None else bisect_right(buf, (before, 1 << 62))
        self.writer.add_many(map(_WRITTEN, buf[:cut]))
        self.events += cut
        del buf[:cut]

    def tick(self, ns: int) -> None:
        """The workload spends ``ns`` on its CPU."""
        self.now += ns

    def catch_up(self) -> None:
        """Let every walker run up to now: call before changing page tables."""
        for w in self.walkers.values():
            w.advance(self.now)

    # -- IPIs --------------------------------------------------------------
    def deliver(self, target: int, t: int, reason: str, handler: Callable[[int], None]) -> int:
        """Handle an IPI on ``target`` sent at ``t``; returns when its handler is done.

        Delayed while the target is in an IRQ-off walker section, and behind
        whatever that CPU was already handling.
        """
        at = t + IPI_LATENCY_NS
        walker = self.walkers.get(target)
        if walker is not None:
            section = walker.section_at(at)
            if section is not None and walker.protect == "irq_off":
                at = section[1] + 300
        at = max(at, self.busy_until.get(target, 0))
        self.emit(at, target, v.IPI_ENTER, None, (reason,), None)
        handler(at + 200)
        done = at + IPI_HANDLER_NS
        self.emit(done, target, v.IPI_EXIT, None, (reason,), None)
        self.busy_until[target] = done + 1
        return done

    def call_function(self, cpu: int, pid: int, comm: str, targets: tuple[int, ...],
                      reason: str, callsite: str,
                      handler: Callable[[int, int], None] | None = None) -> None:
        """smp_call_function_many(..., wait=1): send, wait for every handler."""
        if not targets:
            return
        self.emit(self.now, cpu, v.IPI_SEND, pid, (targets, reason, callsite), comm)
        self.ipis += len(targets)
        done = self.now
        for t in targets:
            done = max(done, self.deliver(
                t, self.now, reason, (lambda at, t=t: handler(t, at)) if handler else
                (lambda at: None)))
        self.now = done + 300

    # -- RCU ---------------------------------------------------------------
    # Callbacks queued before a grace period starts share it; one queued after
    # waits for the next, which starts when the current one ends. The period's
    # events are written when it closes, so ``safe_time`` holds back at its start.

    def _plan_gp(self, cpu: int) -> list:
        gp = self._gp_planned
        if gp is not None and gp[0] > self.now:
            return gp                          # not started yet: join it
        if gp is not None:
            self._close_gp()
        start = max(self.now + RCU_WAKE_NS, self.gp_end)
        latency = 8_000_000 + self.rng.randrange(12_000_000)   # 8-20 ms, as seen on 6.18
        gp = self._gp_planned = [start, start + latency, cpu % self.ncpus, []]
        self.gp_end = gp[1]
        return gp

    def _hold_off(self, gp: list) -> None:
        """Readers inside a section now (they may hold what is being freed) delay the end."""
        for w in self.walkers.values():
            section = w.section_at(self.now)
            if section is not None and section[1] + 1_000 > gp[1]:
                gp[1] = section[1] + 1_000
        self.gp_end = max(self.gp_end, gp[1])

    def _close_gp(self) -> None:
        gp, self._gp_planned = self._gp_planned, None
        if gp is None:
            return
        start, end, gp_cpu, callbacks = gp
        self.gp_count += 1
        self.emit(start, gp_cpu, v.RCU_GP_START, 16, (self.gp_count,), "rcu_preempt")
        self.emit(end, gp_cpu, v.RCU_GP_END, 16, (self.gp_count,), "rcu_preempt")
        at = end + RCU_CB_NS
        for cpu, cb, on_invoke in callbacks:
            self.emit(at, cpu, v.RCU_INVOKE, 20 + cpu, (cb,), f"ksoftirqd/{cpu}")
            on_invoke(at + 100, cpu)
            at += 300

    def call_rcu(self, cpu: int, pid: int, comm: str, func: str, pfns: tuple[int, ...],
                 on_invoke: Callable[[int, int], None]) -> None:
        """Queue a callback now; it runs on ``cpu`` after a whole grace period."""
        self.cb_count += 1
        cb = self.cb_count
        self.emit(self.now, cpu, v.RCU_QUEUE, pid, (cb, func, pfns), comm)
        gp = self._plan_gp(cpu)
        self._hold_off(gp)
        gp[3].append((cpu, cb, on_invoke))

    def synchronize_rcu(self, cpu: int) -> None:
        """The caller sleeps until a grace period that starts after now has ended."""
        gp = self._plan_gp(cpu)
        self._hold_off(gp)
        self.now = gp[1] + RCU_CB_NS
        self._close_gp()

    def finish(self) -> int:
        self._close_gp()
        self.flush()
        return self.events
