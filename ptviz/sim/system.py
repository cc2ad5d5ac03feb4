"""The simulated system as a workload drives it: processes with their own mm, forks,
and threads walking page tables locklessly, on a :class:`.machine.Machine` (CPUs,
clock, IPIs, RCU) and a :class:`.mm.Kernel` (page tables and the paths that free them)."""

from __future__ import annotations

from typing import Callable

from replayer import vocab as v
from replayer.traceio import TraceWriter

from .machine import Machine, WalkerCpu
from .mm import AddressSpace, Kernel

MM_BASE = 0xFFFF888004000000


#: ``on_step(done, total, events, writer)``: a workload finished ``done`` of its
#: ``total`` steps, having emitted ``events`` (some not yet handed to ``writer``).
StepHook = Callable[[int, int, int, TraceWriter], None]


class Sim:
    def __init__(self, machine: Machine, kernel: Kernel, on_step: StepHook | None = None
                 ) -> None:
        self.machine, self.kernel = machine, kernel
        self._next_pid = 1000
        self.spaces: list[AddressSpace] = []
        self._on_step = on_step

    def step(self, done: int, total: int) -> None:
        """The workload's main loop did ``done`` of its ``total`` steps (iterations,
        children, regions...): what progress and the size estimate go by."""
        if self._on_step is not None:
            self._on_step(done, total, self.machine.emitted, self.machine.writer)

    def process(self, comm: str, cpu: int = 0) -> AddressSpace:
        """A new process with its own mm (fork + exec)."""
        pid = self._next_pid
        self._next_pid += 1
        mm = MM_BASE + len(self.spaces) * 0x2000
        m = self.machine
        a = AddressSpace(mm, pid, comm, m.task(pid, comm), {cpu})
        self.spaces.append(a)
        m.emit(m.now, cpu, v.MM_NEW, a.task, (mm, pid, comm))
        return a

    def fork(self, parent: AddressSpace, comm: str, cpu: int = 0) -> AddressSpace:
        """A child process of ``parent`` with a copy of its page tables (fork without
        exec): its own mm, announced, then filled by the parent's CPU."""
        child = self.process(comm, cpu)
        self.kernel.copy_tables(parent, child, min(parent.cpus, default=0))
        return child

    def add_walker(self, a: AddressSpace, cpu: int, walker: str, gap: int, hold: int,
                   start: int, size: int) -> None:
        """A thread of ``a`` on ``cpu`` walking its page tables locklessly."""
        m, k = self.machine, self.kernel
        w = WalkerCpu(m, cpu, walker, gap, hold, m.task(a.pid + 100 + cpu, f"{a.comm}-walker"))
        m.walk_mm = a.mm
        a.cpus.add(cpu)

        below, span, ptes = m.below, k.span, a.ptes

        def pick() -> int | None:
            # A reader of fresh data: somewhere in the last two PMD spans the writer filled.
            addr = max(start, a.cursor - below(2 * span))
            table = ptes.get(addr // span)
            return table.pfn if table is not None else None
        w.pick = pick
        w.reads = (a, start, span)
        m.walkers[cpu] = w
