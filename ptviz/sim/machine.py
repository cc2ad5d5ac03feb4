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
from typing import Callable

import numpy as np

from replayer import vocab as v
from replayer.traceio import TraceWriter

from . import buffer
from .walker import WalkerCpu, fast_randrange

__all__ = ["Machine", "WalkerCpu", "fast_randrange", "NO_TASK", "CODES"]

START_NS = 1_000_000_000
NO_TASK = 0                   # the task of an event no task caused (an IPI handler): nil
IPI_LATENCY_NS = 1_500        # send → handler entry on an interruptible CPU
IPI_HANDLER_NS = 800          # a TLB-flush or empty sync handler
RCU_WAKE_NS = 200_000         # the grace-period kthread starts a period after a call_rcu
RCU_CB_NS = 2_000             # softirq delay from the end of a period to the callback
FLUSH_EVERY = 20_000          # buffered events between flushes to the writer
#: Strings records carry that every machine codes first, so that hot paths use their
#: codes (CODES) without asking :meth:`Machine.code`.
KNOWN = ("local mm shootdown", "remote shootdown", "collapse", "rcu", "batch", "reclaim")
CODES = {text: i for i, text in enumerate(KNOWN)}


class Codes(dict):
    """Value → code, a value's code made on first use (``codes[value]``: a dict lookup,
    not a call); ``values`` by code."""

    def __init__(self) -> None:
        super().__init__(CODES)
        self.values: list = list(KNOWN)

    def __missing__(self, value: str | tuple) -> int:
        code = self[value] = len(self.values)
        self.values.append(value)
        return code


class Machine:
    """CPUs, the output stream and the shared mechanisms (IPIs, RCU)."""

    def __init__(self, writer: TraceWriter, cpus: int, seed: int, ipi_flush: bool) -> None:
        self.writer = writer
        self.ncpus = cpus
        self.rng = random.Random(seed)
        #: ``rng.randrange(n)`` for n >= 1, the same draws, called in hot loops.
        self.below = fast_randrange(self.rng)
        self.now = START_NS
        self.ipi_flush = ipi_flush
        # Each event's pid and comm as a task: an index into ``tasks`` (pairs, each once),
        # so that the writer checks and encodes them once per task (add_task_columns).
        self.tasks: list[tuple] = []
        self._task_codes: dict[tuple, int] = {}
        assert self.task(None, None) == NO_TASK
        #: The softirq thread of each CPU (that runs RCU callbacks); the RCU kthread.
        self.softirq = [self.task(20 + cpu, f"ksoftirqd/{cpu}") for cpu in range(cpus)]
        self._rcu_task = self.task(16, "rcu_preempt")
        # Events not yet written, in emission order: ``_parts`` (columns, see _columns),
        # then the records of ``_recs``. The position is the emission order, which breaks
        # ties in time when they are sorted.
        self._parts: list[tuple] = []
        self._parted = 0                 # events in _parts
        self._recs: list[int] = []       # records, flat (buffer.RECORD)
        # Events in _recs beyond one a record (at most: see buffer.MASK); a single
        # event's record need not count itself.
        self._in_runs = 0
        self._masks: list[int] = []      # the entries a buffer.MASK record adds
        # The strings (and tuples of CPUs) records carry, coded (each once); the other
        # objects of the records not yet closed (tuples of pfns).
        self.codes = Codes()
        self.strings = self.codes.values
        self._objects: list = []
        self._room = FLUSH_EVERY         # events until the next flush
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
    def task(self, pid: int | None, comm: str | None) -> int:
        """The code of the task (pid, comm), which events carry (registered once)."""
        code = self._task_codes.get((pid, comm))
        if code is None:
            code = self._task_codes[(pid, comm)] = len(self.tasks)
            self.tasks.append((pid, comm))
        return code

    def code(self, value: str | tuple) -> int:
        """The code of a string or a tuple of CPUs a record carries (registered once;
        ``codes[value]`` is the same without a call)."""
        return self.codes[value]

    @property
    def emitted(self) -> int:
        """Events emitted so far, written or still buffered."""
        return self.events + self._parted + len(self._recs) // buffer.WIDTH + self._in_runs

    def emit(self, ts: int, cpu: int, kind: int, task: int, fields: tuple) -> None:
        """One event of any kind, its fields a tuple (a rare kind: :meth:`record` makes
        the common ones without one)."""
        self._objects.append(fields)
        self._recs += (ts, 0, 1, cpu, task, buffer.ROW, kind, 0, 0, len(self._objects) - 1)
        self._room -= 1
        if self._room <= 0:
            self._flush_due()

    def _flush_due(self) -> None:
        self.flush(self.safe_time())
        # Amortised: what could not be written yet (kept as a part) does not trigger the
        # next flush.
        self._room = FLUSH_EVERY

    def pte_set(self, t0: int, step: int, count: int, cpu: int, task: int, mm: int,
                pfn: int, entries: int) -> None:
        """``count`` pte_set events (mm, pfn, entries, nil) ``step`` ns apart after ``t0``
        (one at ``ts``: ``ts, 0, 1``). Ten ints in a flat list, not tuples (buffer.py).
        The clock does not move (the caller knows where the faults leave it)."""
        self._recs += (t0, step, count, cpu, task, v.PTE_SET, mm, pfn, entries, 0)
        self._in_runs += count - 1
        self._room -= count
        if self._room <= 0:
            self._flush_due()

    def record(self, ts: int, cpu: int, kind: int, task: int, a: int = 0, b: int = 0,
               c: int = 0, d: int = 0) -> None:
        """One event of a kind in buffer.FIELDS, its fields made of ``a`` .. ``d`` (ints,
        strings as :meth:`code` gives them): what :meth:`emit` does, without a tuple."""
        self._recs += (ts, 0, 1, cpu, task, kind, a, b, c, d)
        self._room -= 1
        if self._room <= 0:
            self._flush_due()

    def _close_records(self) -> None:
        """Turn the records into a column part."""
        if self._recs:
            part = buffer.close(self._recs, self.strings, self._masks, self._objects)
            self._parts.append(part)
            self._parted += len(part[0])
            self._recs, self._in_runs, self._masks, self._objects = [], 0, [], []

    def _columns(self) -> tuple:
        """Every buffered event as columns (ts, cpus, kinds, tasks: int64 arrays; fields:
        a fieldcodes.Coded), in emission order; the buffer is emptied."""
        self._close_records()
        parts, self._parts, self._parted = self._parts, [], 0
        return buffer.concat(parts)

    def safe_time(self) -> int:
        """No event earlier than this will be emitted any more."""
        pending = [w.next_begin for w in self.walkers.values()]
        if self._gp_planned is not None:
            pending.append(self._gp_planned[0])
        return min([self.now] + pending)

    def flush(self, before: int | None = None) -> None:
        """Write buffered events with ``ts <= before`` (all when None), in time order."""
        if not self._parts and not self._recs:
            return
        ts, cpus, kinds, tasks, fields = self._columns()
        n = len(ts)
        if n > 1 and bool((ts[1:] < ts[:-1]).any()):
            # By time, ties in emission order (a stable sort of the emission order).
            order = np.argsort(ts, kind="stable")
            ts, cpus, kinds, tasks = ts[order], cpus[order], kinds[order], tasks[order]
            fields = fields.take(order)
        # Anything emitted later has ts >= before and comes later in emission order, so
        # events at exactly ``before`` can go now.
        cut = n if before is None else int(np.searchsorted(ts, before, side="right"))
        if cut:
            self.writer.add_task_columns(ts[:cut], kinds[:cut], cpus[:cut], tasks[:cut],
                                         self.tasks, fields[:cut])
            self.events += cut
        if cut < n:
            # Its own table of the entries it uses: the written ones' go with them.
            self._parts.append((ts[cut:], cpus[cut:], kinds[cut:], tasks[cut:],
                                fields[cut:].compact()))
            self._parted = n - cut

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
        return self._deliver(target, t, self.code(reason), lambda _, at: handler(at))

    def _deliver(self, target: int, t: int, reason: int,
                 handler: Callable[[int, int], None] | None, flush: int | None = None) -> int:
        """:meth:`deliver` of a coded reason, ``handler(target, at)`` (a call_function
        sends many: no closure a target), or a handler that flushes mm ``flush`` from
        the target's TLB: then the handling is one record (buffer.IPI)."""
        at = t + IPI_LATENCY_NS
        walker = self.walkers.get(target)
        if walker is not None:
            section = walker.section_at(at)
            if section is not None and walker.protect == "irq_off":
                at = section[1] + 300
        busy = self.busy_until.get(target, 0)
        if busy > at:
            at = busy
        done = at + IPI_HANDLER_NS
        if handler is None:
            if flush is None:
                self._recs += (at, done, 2, target, NO_TASK, buffer.IPI, reason, 0, 0, 0)
                self._in_runs += 1
                self._room -= 2
            else:
                self._recs += (at, done, 3, target, NO_TASK, buffer.IPI, reason, flush,
                               CODES["remote shootdown"], 0)
                self._in_runs += 2
                self._room -= 3
        else:
            self._recs += (at, 0, 1, target, NO_TASK, v.IPI_ENTER, reason, 0, 0, 0)
            self._room -= 1
            handler(target, at + 200)
            self._recs += (done, 0, 1, target, NO_TASK, v.IPI_EXIT, reason, 0, 0, 0)
            self._room -= 1
        if self._room <= 0:
            self._flush_due()
        self.busy_until[target] = done + 1
        return done

    def call_function(self, cpu: int, task: int, targets: tuple[int, ...],
                      reason: str, callsite: str,
                      handler: Callable[[int, int], None] | None = None,
                      flush: int | None = None) -> None:
        """smp_call_function_many(..., wait=1): send, wait for every handler:
        ``handler(target, at)``, or for a TLB shootdown the flush of mm ``flush``."""
        if not targets:
            return
        now = self.now
        codes = self.codes
        code, done = codes[reason], now
        self.record(now, cpu, v.IPI_SEND, task, codes[targets], code, codes[callsite])
        self.ipis += len(targets)
        for t in targets:
            d = self._deliver(t, now, code, handler, flush)
            if d > done:
                done = d
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
        self.record(start, gp_cpu, v.RCU_GP_START, self._rcu_task, self.gp_count)
        self.record(end, gp_cpu, v.RCU_GP_END, self._rcu_task, self.gp_count)
        at = end + RCU_CB_NS
        for cpu, cb, on_invoke in callbacks:
            self.record(at, cpu, v.RCU_INVOKE, self.softirq[cpu], cb)
            on_invoke(at + 100, cpu)
            at += 300

    def call_rcu(self, cpu: int, task: int, func: str, pfns: tuple[int, ...],
                 on_invoke: Callable[[int, int], None]) -> None:
        """Queue a callback now; it runs on ``cpu`` after a whole grace period."""
        self.cb_count += 1
        cb = self.cb_count
        self._objects.append(pfns)
        self.record(self.now, cpu, v.RCU_QUEUE, task, cb, self.codes[func],
                    len(self._objects) - 1)
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
