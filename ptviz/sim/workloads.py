"""Workloads: what user space does to the address space, with parameters.

Each workload takes a :class:`Sim` and its parameters, parsed and checked against
:data:`PARAMS` before anything is written (``run.parse_params``). Sizes
take binary units (``50G``), counts decimal ones (``25.6k``): ``replayer.units``. Markers carry the VmPTE the
process would read from /proc/self/status at that point, as the real recorded
workloads write it to trace_marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from replayer import vocab as v

from ..arches import Arch
from .machine import CODES
from .mm import AddressSpace, Gather
from .system import Sim

MB2 = 2 << 20
BASE = 0x7F0000000000          # 1 GiB aligned, as a large anonymous mmap is THP-aligned
# Every mapping starts at BASE, so it must end by the top of user space. Arch carries no
# such limit: x86_64's 4-level one, TASK_SIZE_MAX = DEFAULT_MAP_WINDOW = (1 << 47) - PAGE_SIZE
# (arch/x86/include/asm/page_64_types.h), is at or below what the other 4-level 64-bit
# profiles give a default mmap (arm64 48-bit VA, riscv64 Sv48, powerpc64's 128 TiB window),
# so it is the one conservative bound for all.
USER_TOP = (1 << 47) - 4096
SPAN_MAX = USER_TOP - BASE     # 1 TiB - 4 KiB
# Counts need a bound only to stay sane: a larger one would just be a run of days.
COUNT_MAX = 10**9
# One event moves the simulated clock by at most about a grace period (8-20 ms) or an IPI
# waiting out a walk (up to 2 x hold), so with walks of at most 10 ms the trace's int64
# nanoseconds (292 years) last for more than 10^11 events: days of simulation. Real
# lockless walks (GUP-fast with IRQs off, pte_offset_map under RCU) take microseconds.
HOLD_MAX = 10**7


# -- parameters --------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """A bound or default that depends on the run: the arch, --cpus, an earlier parameter."""
    text: str
    of: Callable[["Run"], Any]


@dataclass(frozen=True)
class Param:
    kind: str                          # size | count | probability | choice
    default: Any                       # a value, or a Bound
    lo: int | Bound = 0
    hi: int | Bound = 0
    align: int | Bound = 1             # sizes: a multiple of this
    divides: str = ""                  # sizes: an earlier parameter this must divide
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass
class Run:
    workload: str
    arch: Arch
    cpus: int
    values: dict[str, Any]


PAGE = Bound("a page", lambda r: r.arch.page_size)
OTHER_CPUS = Bound("cpus-1", lambda r: r.cpus - 1)
SIZE = Bound("size", lambda r: r.values["size"])


def _size(default: Any, lo: Any = PAGE, hi: Any = SPAN_MAX, align: Any = PAGE,
          divides: str = "") -> Param:
    return Param("size", default, lo, hi, align, divides)


def _count(default: Any, lo: Any = 1, hi: Any = COUNT_MAX) -> Param:
    return Param("count", default, lo, hi)


def _steps(times: int) -> Bound:
    return Bound(f"{times}×size/step" if times > 1 else "size/step",
                 lambda r: times * max(1, r.values["size"] // r.values["step"]))


def _probability(default: Any, doc: str) -> Param:
    return Param("probability", default, 0, 1, doc=doc)


# More than PTRS_PER_PTE pages per batch is the same as PTRS_PER_PTE: one event per table.
BATCH = {n: _count(n) for n in (1, 16, 64)}
# The loop steps through the mapping and wraps at its end: a step that straddled the end
# would touch pages past it, and madvise needs a page-aligned start.
STEP = _size(MB2, hi=SIZE, divides="size")
# An allocation may start at the arena's last byte, so the span is arena + max.
MAX_ALLOC = (SPAN_MAX // 2) // 4096 * 4096
ARENA = _size(Bound("1G or max", lambda r: max(1 << 30, r.values["max"])),
              lo=Bound("max", lambda r: r.values["max"]),
              hi=Bound("1T-4K-max", lambda r: SPAN_MAX - r.values["max"]))

#: What each workload reads, in the order they are parsed (a bound may name an earlier one).
PARAMS: dict[str, dict[str, Param]] = {
    "coverletter": {"size": _size(1 << 30), "step": STEP, "iterations": _count(_steps(1)),
                    "batch": BATCH[1]},
    "walkers": {"size": _size(64 << 20), "step": STEP, "iterations": _count(_steps(4)),
                "walker": Param("choice", "mix", choices=("gup_fast", "pte_offset_map", "mix")),
                "readers": _count(OTHER_CPUS, lo=0, hi=OTHER_CPUS),
                # 0 is fine: a walk lasts at least 200 ns, so back-to-back walks still end.
                "gap_ns": _count(20_000, lo=0), "hold_ns": _count(30_000, lo=0, hi=HOLD_MAX),
                "batch": BATCH[16]},
    "munmap": {"size": _size(256 << 20), "chunk": _size(16 << 20), "batch": BATCH[64]},
    "fork-exit": {"children": _count(8), "size": _size(32 << 20),
                  "parent_size": _size(8 << 20, lo=0), "batch": BATCH[64]},
    # Allocations are 4K << n, so they need not be whole pages of a larger-page arch.
    "allocator": {"ops": _count(2000), "max": _size(8 << 20, lo=4096, hi=MAX_ALLOC, align=4096),
                  "arena": ARENA, "batch": BATCH[16]},
    "collapse": {"regions": _count(64, hi=SPAN_MAX // MB2), "batch": BATCH[64]},
}

#: Model parameters, for any workload (read by the runner, not the workload).
MODEL: dict[str, Param] = {
    "batch_fail": _probability(Bound("0 (walkers: 0.5)",
                                     lambda r: 0.5 if r.workload == "walkers" else 0.0),
                               "the mmu_gather batch page cannot be allocated"),
    "pmd_contention": _probability(0.0, "the PMD trylock fails: the re-check path runs"),
    "refault": _probability(0.0, "on the re-check path another thread refaults the table"),
    "skipped": _probability(0.0, "a zap leaves an entry in place (a swap entry): no reclaim"),
}


def marker(sim: Sim, a: AddressSpace, text: str) -> None:
    m = sim.machine
    m.tick(2_000)
    m.emit(m.now, 0, v.MARKER, a.task, (f"VmPTE: {sim.kernel.vmpte(a) // 1024} kB ({text})",))


def madvise_dontneed(sim: Sim, a: AddressSpace, start: int, end: int, cpu: int) -> None:
    g = Gather(sim.kernel, a, cpu)
    sim.kernel.zap(a, start, end, "dontneed", cpu, g)
    g.finish()


def munmap(sim: Sim, a: AddressSpace, start: int, end: int, cpu: int, cause: str) -> None:
    g = Gather(sim.kernel, a, cpu)
    sim.kernel.zap(a, start, end, cause, cpu, g)
    sim.kernel.free_tables(a, start, end, cause, cpu, g)
    g.finish()


def exit_mm(sim: Sim, a: AddressSpace, cpu: int) -> None:
    m = sim.machine
    munmap(sim, a, 0, 1 << 57, cpu, "exit")
    m.record(m.now, cpu, v.MM_EXIT, a.task, a.mm)


def coverletter(sim: Sim, p: dict[str, Any]) -> None:
    """mmap ``size``, then ``iterations`` × (touch ``step``, MADV_DONTNEED ``step``).

    The loop the PT_RECLAIM patches were measured with (docs/kernel-facts.md §3: 50G, 25600
    iterations, VmPTE 102640 kB before / 240 kB after).
    """
    size, step, iterations, batch = p["size"], p["step"], p["iterations"], p["batch"]
    a = sim.process("coverletter")
    marker(sim, a, "after mmap")
    for i in range(iterations):
        start = BASE + (i * step) % size
        sim.kernel.touch(a, start, start + step, 0, batch)
        madvise_dontneed(sim, a, start, start + step, 0)
        sim.step(i + 1, iterations)
    marker(sim, a, "after the loop")
    exit_mm(sim, a, 0)


def walkers(sim: Sim, p: dict[str, Any]) -> None:
    """coverletter on CPU 0 while lockless walkers on the other CPUs read its tables.

    ``walker``: gup_fast (IRQs off), pte_offset_map (rcu_read_lock) or mix;
    ``readers``: how many CPUs walk (default all others). The batch page
    fails often (``batch_fail``, default 0.5) so the single-table path runs.
    """
    size, step, iterations, kind = p["size"], p["step"], p["iterations"], p["walker"]
    a = sim.process("walkers")
    for cpu in range(1, p["readers"] + 1):
        walker = kind if kind != "mix" else ("gup_fast" if cpu % 2 else "pte_offset_map")
        sim.add_walker(a, cpu, walker, gap=p["gap_ns"], hold=p["hold_ns"], start=BASE,
                       size=size)
    marker(sim, a, "start")
    for i in range(iterations):
        start = BASE + (i * step) % size
        sim.kernel.touch(a, start, start + step, 0, p["batch"])
        madvise_dontneed(sim, a, start, start + step, 0)
        sim.step(i + 1, iterations)
    marker(sim, a, "end")
    exit_mm(sim, a, 0)


def munmap_workload(sim: Sim, p: dict[str, Any]) -> None:
    """mmap ``size``, touch it, munmap it in ``chunk`` pieces in a shuffled order."""
    size, chunk = p["size"], p["chunk"]
    a = sim.process("munmap")
    sim.kernel.touch(a, BASE, BASE + size, 0, p["batch"])
    marker(sim, a, "touched")
    pieces = list(range(0, size, chunk))
    sim.step(len(pieces), 2 * len(pieces))     # the touch: about as many events as the rest
    sim.machine.rng.shuffle(pieces)
    for done, off in enumerate(pieces, len(pieces) + 1):
        munmap(sim, a, BASE + off, BASE + min(size, off + chunk), 0, "munmap")
        sim.step(done, 2 * len(pieces))
    marker(sim, a, "unmapped")
    exit_mm(sim, a, 0)


def fork_exit(sim: Sim, p: dict[str, Any]) -> None:
    """A parent touches ``parent_size``, then forks ``children``: each starts with a
    copy of the parent's tables, touches ``size`` more on its CPU and exits."""
    children, size = p["children"], p["size"]
    parent = sim.process("parent")
    if p["parent_size"]:
        sim.kernel.touch(parent, BASE, BASE + p["parent_size"], 0, p["batch"])
        marker(sim, parent, "parent touched")
    for n in range(children):
        cpu = 1 + n % max(1, sim.machine.ncpus - 1) if sim.machine.ncpus > 1 else 0
        child = sim.fork(parent, f"child-{n}", cpu=cpu)
        marker(sim, child, "child forked")
        start = BASE + p["parent_size"]
        sim.kernel.touch(child, start, start + size, cpu, p["batch"])
        marker(sim, child, "child touched")
        exit_mm(sim, child, cpu)
        sim.step(n + 1, children)
    exit_mm(sim, parent, 0)


def allocator(sim: Sim, p: dict[str, Any]) -> None:
    """A malloc-like mix: ``ops`` allocations of 4K..``max`` and frees, big frees
    returned with MADV_DONTNEED (as glibc trims), arenas unmapped at the end."""
    ops, biggest, arena = p["ops"], p["max"], p["arena"]
    rng = sim.machine.rng
    below = sim.machine.below          # rng.randrange's draws, without its checks
    a = sim.process("allocator")
    live: list[tuple[int, int]] = []
    cursor = BASE
    step, random, touch, batch = sim.step, rng.random, sim.kernel.touch, p["batch"]
    for op in range(ops):
        step(op, ops)
        if live and random() < 0.45:
            start, end = live.pop(below(len(live)))
            if end - start >= MB2:
                madvise_dontneed(sim, a, start, end, 0)
            continue
        size = 4096 << below(12)
        if size > biggest:
            size = biggest
        start = cursor
        cursor += (size + MB2 - 1) // MB2 * MB2 if size >= MB2 else size
        if cursor - BASE > arena:
            cursor = BASE
        touch(a, start, start + size, 0, batch)
        live.append((start, start + size))
    marker(sim, a, "end")
    exit_mm(sim, a, 0)


def collapse(sim: Sim, p: dict[str, Any]) -> None:
    """khugepaged collapses ``regions`` 2 MiB regions: the PTE table is detached
    (pmdp_collapse_flush), walkers are synced (tlb_remove_table_sync_one,
    docs/kernel-facts.md §2.5), and the table is freed by RCU (pte_free_defer)."""
    regions = p["regions"]
    a = sim.process("collapse")
    m, k = sim.machine, sim.kernel
    khugepaged = m.task(50, "khugepaged")
    if m.ncpus > 2:
        sim.add_walker(a, 2, "gup_fast", gap=20_000, hold=20_000, start=BASE,
                       size=regions * MB2)
    cpu = 1 if m.ncpus > 1 else 0
    for r in range(regions):
        start = BASE + r * MB2
        k.touch(a, start, start + MB2, 0, p["batch"])
        table = a.ptes.pop(start // k.span)
        m.catch_up()
        m.record(m.now, cpu, v.TABLE_DETACH, khugepaged, a.mm, table.pfn, CODES["collapse"])
        # The entries now live in the huge page: the old table is emptied before its free.
        m.record(m.now, cpu, v.PTE_CLEAR, khugepaged, a.mm, table.pfn, table.bits.bit_count())
        Gather(k, a, cpu).flush_tlb()
        k.sync(a, cpu, k.cfg.collapse_sync)
        pfn = table.pfn
        m.call_rcu(cpu, khugepaged, "pte_free_now", (pfn,),
                   lambda at, c, pfn=pfn: m.record(at, c, v.TABLE_FREE, m.softirq[c], pfn,
                                                   CODES["rcu"]))
        sim.step(r + 1, regions)
    marker(sim, a, "collapsed")
    exit_mm(sim, a, 0)


WORKLOADS: dict[str, Callable[[Sim, dict[str, Any]], None]] = {
    "coverletter": coverletter, "allocator": allocator, "munmap": munmap_workload,
    "fork-exit": fork_exit, "walkers": walkers, "collapse": collapse,
}


def describe() -> dict[str, Any]:
    return {name: (fn.__doc__ or "").split("\n")[0] for name, fn in WORKLOADS.items()}
