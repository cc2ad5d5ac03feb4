"""A synthetic, coherent trace of any size for ``ptviz bench``.

The cover letter's loop on an x86_64 machine with PT_RECLAIM and RCU table
freeing, spread over CPUs: each 2 MiB step allocates a PTE table, faults it
in (anonymous memory: one page per fault, so 512 faults per table; pass
``faults_per_table`` lower for a table-heavy mix), MADV_DONTNEEDs it, detaches and
batches the table, flushes the TLB with IPIs to the other CPUs, and every
few steps an RCU grace period frees the batch. Lockless walkers run on the
other CPUs now and then. The mix is what a real replay spends its time on;
the built-in simulator (``ptviz simulate``) is the faithful model.
"""

from __future__ import annotations

import random

from replayer import vocab as v
from replayer.traceio import TraceWriter

from ..arches import ARCHES
from ..sim.kernels import resolve

MB2 = 2 << 20


def write_synthetic(path: str, events: int, cpus: int = 4, seed: int = 1,
                    faults_per_table: int = 512, force: bool = False) -> int:
    """Write at least ``events`` events to ``path``; returns the number written."""
    rng = random.Random(seed)
    arch = ARCHES["x86_64"]
    header = {"source": "bench", "clock": "ns", "cpus": cpus, "arch": arch.header(),
              "kernel": resolve(arch, "6.14").header(),
              "workload": {"name": "bench:coverletter-mix",
                           "params": {"events": events, "faults_per_table": faults_per_table}}}
    mm, pid, comm = 0xFFFF888004000000, 1000, "bench"
    others = tuple(range(1, cpus))
    ts = 1_000_000_000
    n = 0
    pfn_next = 0x100000
    batch: list[int] = []
    cb = gp = 0
    with TraceWriter(path, header, force=force) as w:
        add = w.add
        add(ts, v.MM_NEW, 0, pid, (mm, pid, comm), comm)
        add(ts, v.TABLE_ALLOC, 0, pid, (mm, v.LEVEL_PMD, 0xFFFFF, 0x7F0000000000, None), comm)
        n += 2
        addr = 0x7F0000000000
        while n < events:
            pfn = pfn_next
            pfn_next += 1
            ts += 500
            add(ts, v.TABLE_ALLOC, 0, pid, (mm, v.LEVEL_PTE, pfn, addr, None), comm)
            pages = 512 // faults_per_table
            for _ in range(faults_per_table):
                ts += rng.randrange(200, 400)
                add(ts, v.PTE_SET, 0, pid, (mm, pfn, pages, None), comm)
            if rng.random() < 0.3:  # a lockless walker on another CPU
                cpu = rng.choice(others)
                add(ts + 1, v.WALK_BEGIN, cpu, pid + cpu, (mm, "gup_fast", "irq_off"), comm)
                add(ts + 2, v.WALK_TABLE, cpu, pid + cpu, (pfn,), comm)
                add(ts + 3, v.WALK_END, cpu, pid + cpu, (), comm)
                n += 3
                ts += 3
            ts += 100
            add(ts, v.ZAP_BEGIN, 0, pid, (mm, addr, addr + MB2, "dontneed", None), comm)
            add(ts + 10, v.PTE_CLEAR, 0, pid, (mm, pfn, 512, None), comm)
            add(ts + 20, v.TABLE_DETACH, 0, pid, (mm, pfn, "reclaim", None), comm)
            add(ts + 30, v.TABLE_QUEUE, 0, pid, (pfn, "batch", None), comm)
            add(ts + 40, v.TLB_FLUSH, 0, pid, (mm, addr, addr + MB2, 512, "local mm shootdown"),
                comm)
            add(ts + 50, v.IPI_SEND, 0, pid, (others, "tlb_shootdown", "flush_tlb_mm_range"),
                comm)
            t = ts + 60
            for cpu in others:
                add(t, v.IPI_ENTER, cpu, 0, ("tlb_shootdown",), "<idle>")
                add(t + 5, v.TLB_FLUSH, cpu, 0, (mm, addr, addr + MB2, 512, "remote shootdown"),
                    "<idle>")
                add(t + 10, v.IPI_EXIT, cpu, 0, ("tlb_shootdown",), "<idle>")
                t += 15
            ts = t
            add(ts, v.ZAP_END, 0, pid, (mm, addr, addr + MB2, "dontneed", None), comm)
            n += 8 + faults_per_table + 3 * len(others)
            batch.append(pfn)
            addr += MB2
            if len(batch) == 8:
                cb += 1
                gp += 1
                add(ts + 10, v.RCU_QUEUE, 0, pid, (cb, "tlb_remove_table_rcu", tuple(batch)),
                    comm)
                add(ts + 20, v.RCU_GP_START, 1, 16, (gp,), "rcu_preempt")
                add(ts + 20_000, v.RCU_GP_END, 1, 16, (gp,), "rcu_preempt")
                add(ts + 20_010, v.RCU_INVOKE, 1, 22, (cb,), "ksoftirqd/1")
                for p in batch:
                    add(ts + 20_020, v.TABLE_FREE, 1, 22, (p, "rcu", None), "ksoftirqd/1")
                n += 4 + len(batch)
                batch = []
                ts += 20_030
    return w.events_written
