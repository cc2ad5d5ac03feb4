"""One simulation run: resolve the config, build the machine, run a workload, write."""

from __future__ import annotations

import os
import time
from typing import Any

from replayer import __version__
from replayer import vocab as v
from replayer.errors import UsageError
from replayer.traceio import TraceWriter

from . import arches, kernels
from .machine import Machine, WalkerCpu
from .mm import AddressSpace, Kernel
from .workloads import PARAMS, WORKLOADS, _float

MM_BASE = 0xFFFF888004000000


class Sim:
    def __init__(self, machine: Machine, kernel: Kernel) -> None:
        self.machine, self.kernel = machine, kernel
        self._next_pid = 1000
        self.spaces: list[AddressSpace] = []

    def process(self, comm: str, cpu: int = 0) -> AddressSpace:
        """A new process with its own mm (fork + exec)."""
        pid = self._next_pid
        self._next_pid += 1
        mm = MM_BASE + len(self.spaces) * 0x2000
        a = AddressSpace(mm, pid, comm, {cpu})
        self.spaces.append(a)
        m = self.machine
        m.emit(m.now, cpu, v.MM_NEW, pid, (mm, pid, comm), comm)
        return a

    def add_walker(self, a: AddressSpace, cpu: int, walker: str, gap: int, hold: int,
                   start: int, size: int) -> None:
        """A thread of ``a`` on ``cpu`` walking its page tables locklessly."""
        m, k = self.machine, self.kernel
        w = WalkerCpu(m, cpu, walker, gap, hold, a.pid + 100 + cpu, f"{a.comm}-walker")
        m.walk_mm = a.mm
        a.cpus.add(cpu)

        def pick() -> int | None:
            # A reader of fresh data: somewhere in the last two PMD spans the writer filled.
            addr = max(start, a.cursor - m.rng.randrange(2 * k.span))
            table = a.ptes.get(addr // k.span)
            return table.pfn if table is not None else None
        w.pick = pick
        m.walkers[cpu] = w


def simulate(out: str, arch_name: str, kernel_version: str, workload: str,
             params: dict[str, str], overrides: dict[str, str], cpus: int = 4,
             seed: int = 1, command: list[str] | None = None) -> dict[str, Any]:
    """Run one simulation into ``out``; returns a summary (events, seconds, ...)."""
    arch = arches.get(arch_name)
    cfg = kernels.resolve(arch, kernel_version, overrides)
    if workload not in WORKLOADS:
        raise UsageError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    if cpus < 1 or cpus > 4096:
        raise UsageError(f"--cpus {cpus}: expected 1..4096")
    model = {k: params.pop(k) for k in ("batch_fail", "pmd_contention", "refault", "skipped")
             if k in params}
    unknown = sorted(set(params) - PARAMS[workload])
    if unknown:
        raise UsageError(f"--param {unknown[0]}: {workload} takes "
                         f"{', '.join(sorted(PARAMS[workload]))} (and batch_fail, "
                         f"pmd_contention, refault, skipped)")
    default_fail = 0.5 if workload == "walkers" else 0.0
    header = {
        "source": "sim", "clock": "ns (simulated)", "cpus": cpus, "arch": arch.header(),
        "kernel": cfg.header(),
        "workload": {"name": workload, "params": dict(params), "model": dict(model)},
        "seed": seed, "simulator": f"ptviz {__version__}",
        "command": command or [],
        "warnings": list(cfg.warnings),
    }
    started = time.perf_counter()
    with TraceWriter(out, header) as writer:
        machine = Machine(writer, cpus, seed, ipi_flush=arch.tlb_flush == "ipi")
        kernel = Kernel(machine, arch, cfg,
                        batch_fail=_float(model, "batch_fail", default_fail),
                        pmd_contention=_float(model, "pmd_contention", 0.0),
                        refault=_float(model, "refault", 0.0),
                        skipped=_float(model, "skipped", 0.0))
        WORKLOADS[workload](Sim(machine, kernel), params)
        events = machine.finish()
    seconds = time.perf_counter() - started
    return {"path": os.fspath(out), "events": events, "seconds": seconds,
            "events_per_s": events / seconds if seconds else 0.0,
            "reclaimed": kernel.reclaimed, "ipis": machine.ipis,
            "grace_periods": machine.gp_count, "sync_wait_ns": machine.sync_wait_ns,
            "config": cfg}
