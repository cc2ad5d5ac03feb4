"""Workloads: what user space does to the address space, with parameters.

Each workload takes a :class:`Sim` and its parsed parameters. Sizes accept
units (``50G``), counts are plain integers. Markers carry the VmPTE the
process would read from /proc/self/status at that point, as the real
recorded workloads write it to trace_marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from replayer import vocab as v
from replayer.errors import UsageError
from replayer.units import parse_size

from .mm import AddressSpace, Gather

if TYPE_CHECKING:  # pragma: no cover
    from .run import Sim

MB2 = 2 << 20
BASE = 0x7F0000000000          # 1 GiB aligned, as a large anonymous mmap is THP-aligned


def _size(params: dict[str, str], name: str, default: int) -> int:
    return parse_size(params[name], f"--param {name}") if name in params else default


def _int(params: dict[str, str], name: str, default: int) -> int:
    if name not in params:
        return default
    return parse_size(params[name], f"--param {name}")


def _float(params: dict[str, str], name: str, default: float) -> float:
    try:
        return float(params.get(name, default))
    except ValueError:
        raise UsageError(f"--param {name}={params[name]}: expected a number") from None


def marker(sim: "Sim", a: AddressSpace, text: str) -> None:
    m = sim.machine
    m.tick(2_000)
    m.emit(m.now, 0, v.MARKER, a.pid, (f"VmPTE: {sim.kernel.vmpte(a) // 1024} kB ({text})",),
           a.comm)


def madvise_dontneed(sim: "Sim", a: AddressSpace, start: int, end: int, cpu: int) -> None:
    g = Gather(sim.kernel, a, cpu)
    sim.kernel.zap(a, start, end, "dontneed", cpu, g)
    g.finish()


def munmap(sim: "Sim", a: AddressSpace, start: int, end: int, cpu: int, cause: str) -> None:
    g = Gather(sim.kernel, a, cpu)
    sim.kernel.zap(a, start, end, cause, cpu, g)
    sim.kernel.free_tables(a, start, end, cause, cpu, g)
    g.finish()


def exit_mm(sim: "Sim", a: AddressSpace, cpu: int) -> None:
    m = sim.machine
    munmap(sim, a, 0, 1 << 57, cpu, "exit")
    m.emit(m.now, cpu, v.MM_EXIT, a.pid, (a.mm,), a.comm)


def coverletter(sim: "Sim", p: dict[str, str]) -> None:
    """mmap ``size``, then ``iterations`` × (touch ``step``, MADV_DONTNEED ``step``).

    The loop the PT_RECLAIM patches were measured with (KF §3: 50G, 25600
    iterations, VmPTE 102640 kB before / 240 kB after).
    """
    size, step = _size(p, "size", 1 << 30), _size(p, "step", MB2)
    iterations = _int(p, "iterations", max(1, size // step))
    batch = _int(p, "batch", 1)
    a = sim.process("coverletter")
    marker(sim, a, "after mmap")
    for i in range(iterations):
        start = BASE + (i * step) % size
        sim.kernel.touch(a, start, start + step, 0, batch)
        madvise_dontneed(sim, a, start, start + step, 0)
    marker(sim, a, "after the loop")
    exit_mm(sim, a, 0)


def walkers(sim: "Sim", p: dict[str, str]) -> None:
    """coverletter on CPU 0 while lockless walkers on the other CPUs read its tables.

    ``walker``: gup_fast (IRQs off), pte_offset_map (rcu_read_lock) or mix;
    ``readers``: how many CPUs walk (default all others). The batch page
    fails often (``batch_fail``, default 0.5) so the single-table path runs.
    """
    size, step = _size(p, "size", 64 << 20), _size(p, "step", MB2)
    iterations = _int(p, "iterations", 4 * max(1, size // step))
    kind = p.get("walker", "mix")
    if kind not in ("gup_fast", "pte_offset_map", "mix"):
        raise UsageError("--param walker: expected gup_fast, pte_offset_map or mix")
    readers = min(_int(p, "readers", sim.machine.ncpus - 1), sim.machine.ncpus - 1)
    a = sim.process("walkers")
    for cpu in range(1, readers + 1):
        walker = kind if kind != "mix" else ("gup_fast" if cpu % 2 else "pte_offset_map")
        sim.add_walker(a, cpu, walker, gap=_int(p, "gap_ns", 20_000),
                       hold=_int(p, "hold_ns", 30_000), start=BASE, size=size)
    marker(sim, a, "start")
    for i in range(iterations):
        start = BASE + (i * step) % size
        sim.kernel.touch(a, start, start + step, 0, _int(p, "batch", 16))
        madvise_dontneed(sim, a, start, start + step, 0)
    marker(sim, a, "end")
    exit_mm(sim, a, 0)


def munmap_workload(sim: "Sim", p: dict[str, str]) -> None:
    """mmap ``size``, touch it, munmap it in ``chunk`` pieces in a shuffled order."""
    size, chunk = _size(p, "size", 256 << 20), _size(p, "chunk", 16 << 20)
    a = sim.process("munmap")
    sim.kernel.touch(a, BASE, BASE + size, 0, _int(p, "batch", 64))
    marker(sim, a, "touched")
    pieces = list(range(0, size, chunk))
    sim.machine.rng.shuffle(pieces)
    for off in pieces:
        munmap(sim, a, BASE + off, BASE + min(size, off + chunk), 0, "munmap")
    marker(sim, a, "unmapped")
    exit_mm(sim, a, 0)


def fork_exit(sim: "Sim", p: dict[str, str]) -> None:
    """A parent forks ``children`` that each touch ``size`` on their CPU and exit."""
    children, size = _int(p, "children", 8), _size(p, "size", 32 << 20)
    parent = sim.process("parent")
    for n in range(children):
        cpu = 1 + n % max(1, sim.machine.ncpus - 1) if sim.machine.ncpus > 1 else 0
        child = sim.process(f"child-{n}", cpu=cpu)
        sim.kernel.touch(child, BASE, BASE + size, cpu, _int(p, "batch", 64))
        marker(sim, child, "child touched")
        exit_mm(sim, child, cpu)
    exit_mm(sim, parent, 0)


def allocator(sim: "Sim", p: dict[str, str]) -> None:
    """A malloc-like mix: ``ops`` allocations of 4K..``max`` and frees, big frees
    returned with MADV_DONTNEED (as glibc trims), arenas unmapped at the end."""
    ops, biggest = _int(p, "ops", 2000), _size(p, "max", 8 << 20)
    arena = _size(p, "arena", 1 << 30)
    rng = sim.machine.rng
    a = sim.process("allocator")
    live: list[tuple[int, int]] = []
    cursor = BASE
    for _ in range(ops):
        if live and rng.random() < 0.45:
            start, end = live.pop(rng.randrange(len(live)))
            if end - start >= MB2:
                madvise_dontneed(sim, a, start, end, 0)
            continue
        size = min(biggest, 4096 << rng.randrange(12))
        start = cursor
        cursor += (size + MB2 - 1) // MB2 * MB2 if size >= MB2 else size
        if cursor - BASE > arena:
            cursor = BASE
        sim.kernel.touch(a, start, start + size, 0, _int(p, "batch", 16))
        live.append((start, start + size))
    marker(sim, a, "end")
    exit_mm(sim, a, 0)


def collapse(sim: "Sim", p: dict[str, str]) -> None:
    """khugepaged collapses ``regions`` 2 MiB regions: the PTE table is detached
    (pmdp_collapse_flush), walkers are synced (tlb_remove_table_sync_one, KF §2.5),
    and the table is freed by RCU (pte_free_defer)."""
    regions = _int(p, "regions", 64)
    a = sim.process("collapse")
    m, k = sim.machine, sim.kernel
    if m.ncpus > 2:
        sim.add_walker(a, 2, "gup_fast", gap=20_000, hold=20_000, start=BASE,
                       size=regions * MB2)
    cpu = 1 if m.ncpus > 1 else 0
    for r in range(regions):
        start = BASE + r * MB2
        k.touch(a, start, start + MB2, 0, _int(p, "batch", 64))
        table = a.ptes.pop(start // k.span)
        m.catch_up()
        m.emit(m.now, cpu, v.TABLE_DETACH, 50, (a.mm, table.pfn, "collapse", None), "khugepaged")
        # The entries now live in the huge page: the old table is emptied before its free.
        m.emit(m.now, cpu, v.PTE_CLEAR, 50, (a.mm, table.pfn, table.bits.bit_count(), None),
               "khugepaged")
        Gather(k, a, cpu).flush_tlb()
        k.sync(a, cpu, k.cfg.collapse_sync)
        pfn = table.pfn
        m.call_rcu(cpu, 50, "khugepaged", "pte_free_now", (pfn,),
                   lambda at, c, pfn=pfn: m.emit(at, c, v.TABLE_FREE, 20 + c, (pfn, "rcu", None),
                                                 f"ksoftirqd/{c}"))
    marker(sim, a, "collapsed")
    exit_mm(sim, a, 0)


WORKLOADS: dict[str, Callable[["Sim", dict[str, str]], None]] = {
    "coverletter": coverletter, "allocator": allocator, "munmap": munmap_workload,
    "fork-exit": fork_exit, "walkers": walkers, "collapse": collapse,
}


#: The parameters each workload reads (model parameters are checked by the runner).
PARAMS: dict[str, set[str]] = {
    "coverletter": {"size", "step", "iterations", "batch"},
    "walkers": {"size", "step", "iterations", "walker", "readers", "gap_ns", "hold_ns", "batch"},
    "munmap": {"size", "chunk", "batch"},
    "fork-exit": {"children", "size", "batch"},
    "allocator": {"ops", "max", "arena", "batch"},
    "collapse": {"regions", "batch"},
}


def describe() -> dict[str, Any]:
    return {name: (fn.__doc__ or "").split("\n")[0] for name, fn in WORKLOADS.items()}
