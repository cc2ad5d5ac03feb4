"""Write the hand-made sample traces in this folder.

    python traces/make_samples.py [OUTDIR]     # default: this folder

Each story is written event by event, the way a perfect tracer on a small
x86_64 machine would see it; the numbers follow the kernel (4 KiB pages,
512 entries per PTE table, one table covering 2 MiB: ``ptviz/arches.py``). Each
header's kernel config is the one the story was written for, as
``ptviz simulate --explain`` resolves it for that kernel; a flag set against the
kernel's own choice is listed in ``overridden`` (tests/test_sample_headers.py holds
them to the model). The output is byte-for-byte deterministic: tests regenerate it
and compare.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ptviz.arches import ARCHES  # noqa: E402
from replayer import vocab as v  # noqa: E402
from replayer.traceio import TraceWriter  # noqa: E402

MB2 = 2 << 20
X86_64 = ARCHES["x86_64"].header()


def kernel(version: str, reclaim: bool, table_free: str, sync: str,
           overridden: tuple[str, ...] = ()) -> dict:
    """An x86_64 kernel's config (MMU_GATHER_RCU_TABLE_FREE on, the generic
    __tlb_remove_table, khugepaged's sync a broadcast IPI), as the trace header holds it."""
    return {"version": version, "pt_reclaim": reclaim, "mmu_gather_rcu_table_free": True,
            "have_arch_tlb_remove_table": False, "table_free": table_free, "sync": sync,
            "collapse_sync": "ipi_broadcast", "overridden": list(overridden)}


class Story:
    """Appends events with a clock that only moves forward (1 µs per step)."""

    def __init__(self, path: str, header: dict) -> None:
        self.w = TraceWriter(path, {"source": "hand", "clock": "ns", **header}, force=True)
        self.ts = 1_000_000_000  # traces start one second after boot

    def ev(self, kind: int, cpu: int, pid: int | None, *fields, comm: str | None = None,
           step: int = 1000) -> None:
        self.ts += step
        self.w.add(self.ts, kind, cpu, pid, fields, comm)

    def close(self) -> None:
        self.w.close()


MM, PID, COMM = 0xFFFF888003A1C000, 4242, "touch-dontneed"
BASE = 0x7F0000000000


def tlb_flush(s: Story, start: int | None, end: int | None, pages: int,
              freed_tables: bool) -> None:
    """flush_tlb_mm_range() on CPU 0. CPU 1 is idle with the mm lazily loaded: x86 sends it
    the IPI only when page tables were freed (on_each_cpu_mask), not for pages alone
    (on_each_cpu_cond_mask(should_flush_tlb) skips lazy CPUs; docs/kernel-facts.md §1.4)."""
    s.ev(v.TLB_FLUSH, 0, PID, MM, start, end, pages, "local mm shootdown", comm=COMM)
    if not freed_tables:
        return
    s.ev(v.IPI_SEND, 0, PID, (1,), "tlb_shootdown", "flush_tlb_mm_range", comm=COMM)
    s.ev(v.IPI_ENTER, 1, 0, "tlb_shootdown", comm="<idle>")
    s.ev(v.TLB_FLUSH, 1, 0, MM, start, end, pages, "remote shootdown", comm="<idle>")
    s.ev(v.IPI_EXIT, 1, 0, "tlb_shootdown", comm="<idle>")


def touch_and_dontneed(s: Story, reclaim: bool) -> None:
    """mmap 4 MiB, touch all of it, MADV_DONTNEED the first 2 MiB, then exit.

    ``reclaim``: 6.14's PT_RECLAIM with RCU table freeing — the emptied table is detached
    at MADV_DONTNEED, and every table is freed by an RCU callback. Without it, 6.13 on
    x86: the emptied table stays until exit, where tables ride the mmu_gather page batch
    (native_tlb_remove_table() = tlb_remove_page(), docs/kernel-facts.md §1.2) and are
    freed right after the TLB flush, no RCU."""
    s.ev(v.MM_NEW, 0, PID, MM, PID, COMM, comm=COMM)
    s.ev(v.MARKER, 0, PID, "VmPTE: 0 kB (start)", comm=COMM)
    s.ev(v.TABLE_ALLOC, 0, PID, MM, v.LEVEL_PMD, 0x11000, BASE, None, comm=COMM)
    for i, pfn in enumerate((0x12000, 0x12001)):
        s.ev(v.TABLE_ALLOC, 0, PID, MM, v.LEVEL_PTE, pfn, BASE + i * MB2, None, comm=COMM)
        s.ev(v.PTE_SET, 0, PID, MM, pfn, 512, None, comm=COMM, step=50_000)
    s.ev(v.MARKER, 0, PID, "VmPTE: 12 kB (touched 4 MiB)", comm=COMM)
    s.ev(v.ZAP_BEGIN, 0, PID, MM, BASE, BASE + MB2, "dontneed", None, comm=COMM)
    s.ev(v.PTE_CLEAR, 0, PID, MM, 0x12000, 512, None, comm=COMM)
    if reclaim:
        s.ev(v.TABLE_DETACH, 0, PID, MM, 0x12000, "reclaim", None, comm=COMM)
        s.ev(v.TABLE_QUEUE, 0, PID, 0x12000, "batch", None, comm=COMM)
    tlb_flush(s, BASE, BASE + MB2, 512, freed_tables=reclaim)
    s.ev(v.ZAP_END, 0, PID, MM, BASE, BASE + MB2, "dontneed", None, comm=COMM)
    if reclaim:
        s.ev(v.RCU_QUEUE, 0, PID, 1, "tlb_remove_table_rcu", (0x12000,), comm=COMM)
        s.ev(v.RCU_GP_START, 1, 16, 7, comm="rcu_preempt", step=100_000)
    s.ev(v.MARKER, 0, PID, "VmPTE: %d kB (after MADV_DONTNEED)" % (8 if reclaim else 12),
         comm=COMM)
    if reclaim:
        s.ev(v.RCU_GP_END, 1, 16, 7, comm="rcu_preempt", step=20_000_000)
        s.ev(v.RCU_INVOKE, 1, 22, 1, comm="ksoftirqd/1")
        s.ev(v.TABLE_FREE, 1, 22, 0x12000, "rcu", None, comm="ksoftirqd/1")
    # exit_mmap: unmap everything, free the remaining tables through the batch;
    # tlb_finish_mmu flushes the whole mm (pages -1: TLB_FLUSH_ALL) before any is freed.
    s.ev(v.ZAP_BEGIN, 0, PID, MM, BASE, BASE + 2 * MB2, "exit", None, comm=COMM)
    s.ev(v.PTE_CLEAR, 0, PID, MM, 0x12001, 512, None, comm=COMM)
    left = (0x12001,) if reclaim else (0x12000, 0x12001)
    for pfn in left:
        s.ev(v.TABLE_DETACH, 0, PID, MM, pfn, "exit", None, comm=COMM)
        s.ev(v.TABLE_QUEUE, 0, PID, pfn, "batch", None, comm=COMM)
    s.ev(v.TABLE_DETACH, 0, PID, MM, 0x11000, "exit", None, comm=COMM)
    s.ev(v.TABLE_QUEUE, 0, PID, 0x11000, "batch", None, comm=COMM)
    s.ev(v.ZAP_END, 0, PID, MM, BASE, BASE + 2 * MB2, "exit", None, comm=COMM)
    tlb_flush(s, None, None, -1, freed_tables=True)
    if not reclaim:
        for pfn in left + (0x11000,):
            s.ev(v.TABLE_FREE, 0, PID, pfn, "direct", None, comm=COMM)
        s.ev(v.MM_EXIT, 0, PID, MM, comm=COMM)
        return
    s.ev(v.MM_EXIT, 0, PID, MM, comm=COMM)
    s.ev(v.RCU_QUEUE, 0, PID, 2, "tlb_remove_table_rcu", left + (0x11000,), comm=COMM)
    s.ev(v.RCU_GP_START, 1, 16, 8, comm="rcu_preempt")
    s.ev(v.RCU_GP_END, 1, 16, 8, comm="rcu_preempt", step=20_000_000)
    s.ev(v.RCU_INVOKE, 0, 15, 2, comm="ksoftirqd/0")
    for pfn in left + (0x11000,):
        s.ev(v.TABLE_FREE, 0, 15, pfn, "rcu", None, comm="ksoftirqd/0")


def semi_rcu_walker(s: Story) -> None:
    """A pte_offset_map walker (rcu_read_lock only) on CPU 1 holds a PTE table
    while CPU 0 reclaims it on the single-table path with semi-RCU freeing:
    the sync IPI does not wait for an RCU reader, the page is freed at once."""
    s.ev(v.MM_NEW, 0, PID, MM, PID, COMM, comm=COMM)
    s.ev(v.TABLE_ALLOC, 0, PID, MM, v.LEVEL_PMD, 0x21000, BASE, None, comm=COMM)
    s.ev(v.TABLE_ALLOC, 0, PID, MM, v.LEVEL_PTE, 0x22000, BASE, None, comm=COMM)
    s.ev(v.PTE_SET, 0, PID, MM, 0x22000, 512, None, comm=COMM)
    s.ev(v.WALK_BEGIN, 1, PID + 1, MM, "pte_offset_map", "rcu", comm="reader")
    s.ev(v.WALK_TABLE, 1, PID + 1, 0x22000, comm="reader")
    s.ev(v.ZAP_BEGIN, 0, PID, MM, BASE, BASE + MB2, "dontneed", None, comm=COMM)
    s.ev(v.PTE_CLEAR, 0, PID, MM, 0x22000, 512, None, comm=COMM)
    s.ev(v.TABLE_DETACH, 0, PID, MM, 0x22000, "reclaim", None, comm=COMM)
    s.ev(v.TABLE_QUEUE, 0, PID, 0x22000, "single", None, comm=COMM)
    s.ev(v.TABLE_SYNC_BEGIN, 0, PID, "ipi_broadcast", (1,), comm=COMM)
    s.ev(v.IPI_SEND, 0, PID, (1,), "table_sync", "tlb_remove_table_sync_one", comm=COMM)
    s.ev(v.IPI_ENTER, 1, PID + 1, "table_sync", comm="reader")
    s.ev(v.IPI_EXIT, 1, PID + 1, "table_sync", comm="reader")
    s.ev(v.TABLE_SYNC_END, 0, PID, "ipi_broadcast", comm=COMM)
    s.ev(v.TABLE_FREE, 0, PID, 0x22000, "ipi_sync", None, comm=COMM)
    s.ev(v.ZAP_END, 0, PID, MM, BASE, BASE + MB2, "dontneed", None, comm=COMM)
    s.ev(v.WALK_END, 1, PID + 1, comm="reader")


SAMPLES = {
    "reclaim-6.14-x86_64.msgpack": (
        {"cpus": 2, "arch": X86_64, "kernel": kernel("6.14", True, "rcu", "none"),
         "workload": {"name": "hand:touch-dontneed", "params": {"size": "4M"}}},
        lambda s: touch_and_dontneed(s, reclaim=True)),
    "leak-6.13-x86_64.msgpack": (
        {"cpus": 2, "arch": X86_64, "kernel": kernel("6.13", False, "page", "none"),
         "workload": {"name": "hand:touch-dontneed", "params": {"size": "4M"}}},
        lambda s: touch_and_dontneed(s, reclaim=False)),
    "semi-rcu-walker-uaf.msgpack": (
        {"cpus": 2, "arch": X86_64,
         # The combination the x86 "free page table pages by RCU instead of semi RCU"
         # patch forbids, as `ptviz simulate --set table_free=semi_rcu` makes it.
         "kernel": kernel("6.14", True, "semi_rcu", "ipi_broadcast",
                          overridden=("table_free",)),
         "workload": {"name": "hand:semi-rcu-walker"}},
        semi_rcu_walker),
}


def main(outdir: str) -> None:
    for name, (header, tell) in SAMPLES.items():
        story = Story(os.path.join(outdir, name), header)
        tell(story)
        story.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
