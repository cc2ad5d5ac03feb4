"""Probe-rich traces: kprobe/fprobe hits on the page-table functions, seen directly.

Stock tracepoints say nothing about page tables (docs/kernel-facts.md §6), so the importer
infers. Where a kernel has kprobe or fprobe events (docs/kernel-facts.md §5.3; qemu-capture.md
lists the symbols that worked on 7.3.4), these definitions show each step:

* ``___pte_free_tlb(tlb, pte)``: a PTE table leaves its mm (free_pte_range at
  munmap/exit, the PT_RECLAIM free in zap_pte_range at MADV_DONTNEED, §2.2–2.4);
* ``tlb_remove_table(tlb, table)``: any table level handed to mmu_gather (§2.5);
* ``call_rcu(head, func)`` with func ``tlb_remove_table_rcu`` (a batch) or
  ``__tlb_remove_table_one_rcu`` (one table): the RCU callback is queued;
* ``tlb_remove_table_rcu(head)``: the batch callback runs; the frees follow;
* ``pte_alloc_one`` returning: a PTE table is allocated;
* ``flush_tlb_mm_range(mm, start, end, stride, freed_tables)``: the range of
  the tlb_flush events that follow.

Probe arguments are kernel pointers to ``struct page``/``ptdesc`` (the same
address on x86), and ``rcu_head`` pointers inside them. They are tied to pfns
by :class:`PagePointers`, which learns the vmemmap layout from the ``page=``
values of ``kmem:mm_page_alloc``/``mm_page_free`` lines — possible only when
the ``hash-ptr`` trace option is off, which ``record`` and the QEMU capture
arrange. With hashed pointers the hits stay raw events and the steps are
inferred as without probes; the import statistics say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .textparse import checked

PROBE_GROUP = "ptviz"


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: its event name, the kernel symbol, and its argument names in order.
    ``ret``: a return probe whose one argument is the return value."""

    event: str
    symbol: str
    args: tuple[str, ...]
    ret: bool = False
    types: tuple[tuple[str, str], ...] = ()     # (arg, fetch type) where not x64


PROBE_SPECS = (
    ProbeSpec("pte_free_tlb", "___pte_free_tlb", ("tlb", "pte")),
    ProbeSpec("tlb_remove_table", "tlb_remove_table", ("tlb", "table")),
    ProbeSpec("call_rcu", "call_rcu", ("head", "func"), types=(("func", "symbol"),)),
    ProbeSpec("tlb_remove_table_rcu", "tlb_remove_table_rcu", ("head",)),
    ProbeSpec("pte_alloc_one", "pte_alloc_one", ("ret",), ret=True),
    ProbeSpec("flush_tlb_mm_range", "flush_tlb_mm_range",
              ("mm", "start", "end", "stride_shift", "freed_tables")),
    ProbeSpec("free_pgtables", "free_pgtables", ("tlb",)),
)
_X86_64_REGS = ("%di", "%si", "%dx", "%cx", "%r8", "%r9")   # SysV argument registers


def definitions(style: str = "fprobe", group: str = PROBE_GROUP) -> list[str]:
    """Lines for ``dynamic_events``: ``fprobe`` (BTF ``$argN``, 6.9+; these did not drop
    hits of the RCU callback where kprobes did, qemu-capture.md) or ``kprobe``
    (x86_64 registers, for kernels without fprobe events)."""
    out = []
    for spec in PROBE_SPECS:
        types = dict(spec.types)
        if spec.ret:
            where = (f"f:{group}/{spec.event} {spec.symbol}%return" if style == "fprobe"
                     else f"r:{group}/{spec.event} {spec.symbol}")
            fetch = ["$retval"]
        else:
            where = (f"f:{group}/{spec.event} {spec.symbol}" if style == "fprobe"
                     else f"p:{group}/{spec.event} {spec.symbol}")
            fetch = [f"$arg{i + 1}" if style == "fprobe" else _X86_64_REGS[i]
                     for i in range(len(spec.args))]
        args = " ".join(f"{name}={src}" + (f":{types[name]}" if name in types else "")
                        for name, src in zip(spec.args, fetch))
        out.append(f"{where} {args}")
    return out


# Which handler a probe hit goes to: by the probed symbol (tracefs prints
# "(sym+off/size)", or "(caller+off/size <- sym)" for return probes), else by the
# event name (trace-cmd prints the raw IP), accepting the auto-generated names
# (p_SYM_0, r_SYM_0, SYM__entry, SYM__exit).
RCU_CALLBACKS = ("tlb_remove_table_rcu", "__tlb_remove_table_one_rcu")  # call_rcu filter
_BY_SYMBOL = {s.symbol: s.event for s in PROBE_SPECS}
_EVENTS = frozenset(s.event for s in PROBE_SPECS)
_SITE = re.compile(r"\((?P<site>[^)]*+)\)\s*+(?P<args>(?s:.*))")
# The lazy symbol tries each end once against a suffix of bounded or digit-run length.
_AUTO_NAME = re.compile(r"(?:[prf]_)?(?P<sym>.+?)(?:_\d++|__entry|__exit)?$")
# A name starts where no word character precedes it (else findall retries every
# position of a long run that no "=" follows: quadratic).
_ARG = re.compile(r"(?<!\w)(\w++)=(\S++)")


def parse_hit(name: str, payload: str) -> tuple[str, dict[str, str]] | None:
    """``(event, args)`` of a probe line this module maps, or None."""
    m = _SITE.match(payload)
    if m is None:
        return None
    site = m.group("site")
    event = None
    if "<- " in site:
        event = _BY_SYMBOL.get(site.rsplit("<- ", 1)[1].strip())
    elif site[:1].isalpha() or site[:1] == "_":
        event = _BY_SYMBOL.get(site.split("+", 1)[0])
    if event is None:
        event = name if name in _EVENTS else None
        if event is None:
            auto = _AUTO_NAME.match(name)
            event = _BY_SYMBOL.get(auto.group("sym")) if auto else None
    if event is None:
        return None
    return event, dict(_ARG.findall(m.group("args")))


def symbol_name(value: str) -> str:
    """``tlb_remove_table_rcu+0x0/0x30`` → ``tlb_remove_table_rcu`` (a ``:symbol`` arg)."""
    return value.split("+", 1)[0]


_KERNEL_POINTER = 1 << 63     # x86 LA57 kernels map the vmemmap at 0xffc1…


class PagePointers:
    """``struct page`` pointer ↔ pfn on a vmemmap kernel: page = base + pfn × stride.

    Learnt from (pointer, pfn) pairs of ``mm_page_alloc``/``mm_page_free`` lines;
    a hashed pointer (``00000000b2d6dee8``, the default) is not a kernel address and
    is ignored. Two pairs fix base and stride; every later pair is checked until a
    few agree, and one that disagrees turns the map off for good (not a vmemmap
    layout). O(1) per call.
    """

    CONFIRMATIONS = 8

    def __init__(self) -> None:
        self.base: int | None = None
        self.stride: int | None = None
        self._first: tuple[int, int] | None = None
        self.agreed = 0
        self.state = "unknown"      # unknown | hashed | learnt | inconsistent
        self.learning = True

    def learn(self, page: str | None, pfn: int) -> None:
        if page is None:
            return
        ptr = checked(page, 16)
        if ptr is None:
            return
        if ptr < _KERNEL_POINTER:
            if self.state == "unknown":       # hash-ptr is on: nothing to learn, ever
                self.state, self.learning = "hashed", False
            return
        if self.base is None:
            if self._first is None or self._first[1] == pfn:
                self._first = (ptr, pfn)
                return
            p0, f0 = self._first
            stride, rest = divmod(ptr - p0, pfn - f0)
            if rest or stride <= 0:
                self._give_up()
                return
            self.base, self.stride, self.state = p0 - f0 * stride, stride, "learnt"
            return
        if ptr != self.base + pfn * self.stride:
            self._give_up()
            return
        self.agreed += 1
        if self.agreed >= self.CONFIRMATIONS:
            self.learning = False

    def _give_up(self) -> None:
        self.base = self.stride = None
        self.state, self.learning = "inconsistent", False

    def pfn(self, pointer: str | None) -> int | None:
        """The pfn whose ``struct page`` holds ``pointer`` (also an ``rcu_head`` inside
        it), or None when the map is unknown or the pointer is not in the vmemmap."""
        ptr = checked(pointer, 16) if self.base is not None else None
        if ptr is None:
            return None
        off = ptr - self.base
        return off // self.stride if off >= 0 else None
