"""Address spaces, page tables and the paths that free them.

Rules encoded (docs/kernel-facts.md):
* zap_pte_range (§2.2/§2.3): a PTE table is reclaimed only for
  MADV_DONTNEED (``details->reclaim_pt``), only when the zap covers its whole
  PMD span, and only if no entry was skipped. Fast path: the PMD lock is
  taken with a trylock and the table detached at once; if that fails (or the
  zap had to retry) the re-check path looks at every entry again, and a
  concurrent refault makes the table non-empty, so it stays.
* munmap/exit (§2.4): free_pgtables() detaches every table whose span the
  unmapped range covers and hands it to pte_free_tlb.
* mmu_gather (§2.5): tlb_remove_table() puts tables in a batch page of
  MAX_TABLE_BATCH; if the batch page cannot be allocated, the single-table
  path runs: call_rcu (PT_RECLAIM), IPI + immediate free (semi-RCU), or
  synchronize_rcu + free (after 7.0). A full batch and tlb_finish_mmu flush
  the TLB then call_rcu the batch. Without RCU-TF tables ride the page batch
  and are freed right after the TLB flush.
* VmPTE (§6) drops at the detach (mm_dec_nr_ptes), PageTables at the free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replayer import vocab as v

from ..arches import Arch
from . import buffer
from .kernels import KernelConfig
from .machine import CODES, Machine

FAULT_NS = 700        # one anonymous page fault, zeroing included
ZAP_PAGE_NS = 25      # per present entry cleared
TABLE_OP_NS = 300


@dataclass
class PteTable:
    pfn: int
    bits: int = 0       # present entries, one bit per page


@dataclass
class AddressSpace:
    mm: int
    pid: int
    comm: str
    task: int           # the machine's code for (pid, comm): what events carry
    cpus: set[int] = field(default_factory=set)
    ptes: dict[int, PteTable] = field(default_factory=dict)   # PMD-span index → table
    pmds: dict[int, int] = field(default_factory=dict)        # PUD-span index → pfn
    puds: dict[int, int] = field(default_factory=dict)        # P4D-span index → pfn
    cursor: int = 0     # the last address faulted in: where readers of fresh data look


class Kernel:
    """The page-table side of the kernel, on a :class:`Machine`."""

    def __init__(self, machine: Machine, arch: Arch, cfg: KernelConfig,
                 batch_fail: float = 0.0, pmd_contention: float = 0.0,
                 refault: float = 0.0, skipped: float = 0.0) -> None:
        self.m, self.arch, self.cfg = machine, arch, cfg
        self.span = arch.pmd_span
        self.pages = arch.ptrs_per_pte
        self.upper_span = arch.pud_span
        self.top_span = arch.p4d_span
        self.batch_max = arch.max_table_batch(cfg.mmu_gather_rcu_table_free)
        self.batch_fail, self.pmd_contention = batch_fail, pmd_contention
        self.refault, self.skipped = refault, skipped
        self._next_pfn = 0x100000
        self._free_pfns: list[tuple[int, int]] = []   # (free time, pfn), reused when past
        self.reclaimed = 0

    # -- page allocator --------------------------------------------------------
    def _alloc_pfn(self) -> int:
        now = self.m.now
        for i, (t, pfn) in enumerate(self._free_pfns[:8]):
            if t <= now:
                del self._free_pfns[i]
                return pfn
        self._next_pfn += 1
        return self._next_pfn

    def _freed(self, pfn: int, at: int) -> None:
        self._free_pfns.append((at, pfn))

    # -- faults ------------------------------------------------------------
    def _table(self, a: AddressSpace, addr: int, cpu: int) -> PteTable:
        m, arch = self.m, self.arch
        if arch.page_table_levels >= 4 and addr // self.top_span not in a.puds:
            pfn = self._alloc_pfn()
            a.puds[addr // self.top_span] = pfn
            m.record(m.now, cpu, v.TABLE_ALLOC, a.task, a.mm, v.LEVEL_PUD, pfn, addr)
        if arch.page_table_levels >= 3 and addr // self.upper_span not in a.pmds:
            pfn = self._alloc_pfn()
            a.pmds[addr // self.upper_span] = pfn
            m.record(m.now, cpu, v.TABLE_ALLOC, a.task, a.mm, v.LEVEL_PMD, pfn, addr)
        key = addr // self.span
        table = a.ptes.get(key)
        if table is None:
            table = a.ptes[key] = PteTable(self._alloc_pfn())
            m.record(m.now, cpu, v.TABLE_ALLOC, a.task, a.mm, v.LEVEL_PTE, table.pfn,
                     key * self.span)
        return table

    def touch(self, a: AddressSpace, start: int, end: int, cpu: int, batch: int = 1) -> None:
        """Fault in every page of [start, end): one pte_set per ``batch`` pages that
        adds an entry, stamped when the batch's faults are done; the clock moves
        FAULT_NS a fault whether or not it adds an entry.

        Nothing runs between the faults of a table (walkers caught up before), so its
        events are made in one go, as records (buffer.py): a run when every entry is
        new, else the new entries' bits (buffer.MASK), each batch that adds one a
        pte_set. The faults are inline: a call a span costs as much as they do."""
        m, page, span = self.m, self.arch.page_size, self.span
        a.cpus.add(cpu)
        walkers, ptes = m.walkers, a.ptes
        task, mm, pte_set, ns, step = a.task, a.mm, v.PTE_SET, FAULT_NS, FAULT_NS * batch
        addr = start
        while addr < end:
            if walkers:             # (a call to catch up with none costs a span's work)
                m.catch_up()
            # A PTE table's PMD and PUD tables are there while it is: _table and fork
            # make them first, free_tables frees a span's tables together, collapse and
            # reclaim take PTE tables alone.
            table = ptes.get(addr // span)
            if table is None:
                table = self._table(a, addr, cpu)
            stop = (addr // span + 1) * span
            if stop > end:
                stop = end
            first, count = (addr % span) // page, (stop - addr + page - 1) // page
            addr = stop
            full = ((1 << count) - 1) << first
            new = full & ~table.bits
            table.bits |= full
            now = m.now
            m.now = done = now + ns * count
            if not new:
                continue
            if new == full:
                whole, rest = divmod(count, batch)
                if whole and rest:
                    m._recs += (now, step, whole, cpu, task, pte_set, mm, table.pfn, batch, 0,
                                done, 0, 1, cpu, task, pte_set, mm, table.pfn, rest, 0)
                elif whole:
                    m._recs += (now, step, whole, cpu, task, pte_set, mm, table.pfn, batch, 0)
                else:
                    m._recs += (done, 0, 1, cpu, task, pte_set, mm, table.pfn, rest, 0)
                events = whole + (rest > 0)
                m._in_runs += whole - 1 if whole else 0
            else:
                # ``events`` is at most what buffer.close counts from the bits.
                new >>= first
                low = ((new & -new).bit_length() - 1) // batch * batch
                events = (min(count, new.bit_length()) - low + batch - 1) // batch
                m._recs += (now, batch, count, cpu, task, buffer.MASK, mm, table.pfn, ns,
                            len(m._masks))
                m._masks.append(new)
                m._in_runs += events - 1
            m._room -= events
            if m._room <= 0:
                m._flush_due()
        a.cursor = end - page

    # -- fork ----------------------------------------------------------------
    def copy_tables(self, parent: AddressSpace, child: AddressSpace, cpu: int) -> None:
        """dup_mmap → copy_page_range: the child gets a table for each of the parent's,
        with its present entries (private anonymous memory is copied, entries write-
        protected for COW), allocated by the parent inside fork (§6: they count in
        the child's VmPTE and go with its exit or exec)."""
        m = self.m
        m.catch_up()
        for level, tables in ((v.LEVEL_PUD, parent.puds), (v.LEVEL_PMD, parent.pmds)):
            span = self.top_span if level == v.LEVEL_PUD else self.upper_span
            mine = child.puds if level == v.LEVEL_PUD else child.pmds
            for key in sorted(tables):
                mine[key] = pfn = self._alloc_pfn()
                m.tick(TABLE_OP_NS)
                m.record(m.now, cpu, v.TABLE_ALLOC, parent.task, child.mm, level, pfn,
                         key * span)
        for key in sorted(parent.ptes):
            table = child.ptes[key] = PteTable(self._alloc_pfn(), parent.ptes[key].bits)
            m.tick(TABLE_OP_NS + ZAP_PAGE_NS * table.bits.bit_count())
            m.record(m.now, cpu, v.TABLE_ALLOC, parent.task, child.mm, v.LEVEL_PTE,
                     table.pfn, key * self.span)
            if table.bits:
                m.pte_set(m.now, 0, 1, cpu, parent.task, child.mm, table.pfn,
                          table.bits.bit_count())

    # -- zapping -----------------------------------------------------------
    def zap(self, a: AddressSpace, start: int, end: int, cause: str, cpu: int,
            gather: "Gather") -> None:
        """unmap_page_range over [start, end); reclaims empty tables for MADV_DONTNEED."""
        m, page = self.m, self.arch.page_size
        m.catch_up()
        why = m.codes[cause]
        m.record(m.now, cpu, v.ZAP_BEGIN, a.task, a.mm, start, end, why)
        span, ptes, skipped, random = self.span, a.ptes, self.skipped, m.rng.random
        reclaim = cause == "dontneed" and self.cfg.pt_reclaim
        lo, hi = start // span, (end - 1) // span
        # Only spans with a table have entries to clear: O(tables), not O(range).
        keys = sorted(k for k in ptes if lo <= k <= hi) if hi - lo > len(ptes) else \
            [k for k in range(lo, hi + 1) if k in ptes]
        for key in keys:
            addr, stop = key * span, (key + 1) * span
            if addr < start:
                addr = start
            if stop > end:
                stop = end
            table = ptes.get(key)
            if table is not None:
                first = (addr % span) // page
                n = (stop - addr + page - 1) // page
                mask = ((1 << n) - 1) << first
                any_skipped = skipped > 0 and random() < skipped
                cleared = table.bits & mask
                if any_skipped and cleared:
                    cleared &= cleared - 1      # one entry left in place (e.g. a swap entry)
                table.bits &= ~cleared
                if cleared:
                    gone = cleared.bit_count()
                    m.now += ZAP_PAGE_NS * gone
                    m.record(m.now, cpu, v.PTE_CLEAR, a.task, a.mm, table.pfn, gone)
                    gather.freed_pages = True
                # reclaim_pt_is_enabled: end - start >= PMD_SIZE
                if reclaim and stop - addr >= span and not any_skipped:
                    self._reclaim(a, key, table, cpu, gather)
        m.record(m.now, cpu, v.ZAP_END, a.task, a.mm, start, end, why)

    def _reclaim(self, a: AddressSpace, key: int, table: PteTable, cpu: int,
                 gather: "Gather") -> None:
        m = self.m
        fast = not (self.pmd_contention and m.rng.random() < self.pmd_contention)
        if not fast and self.refault and m.rng.random() < self.refault:
            # The PTE lock was dropped before the re-check: another thread refaulted.
            other = (cpu + 1) % m.ncpus
            table.bits |= 1
            m.pte_set(m.now, 0, 1, other, a.task, a.mm, table.pfn, 1)
        if table.bits:
            return
        del a.ptes[key]
        m.now += TABLE_OP_NS
        m.record(m.now, cpu, v.TABLE_DETACH, a.task, a.mm, table.pfn, CODES["reclaim"])
        self.reclaimed += 1
        gather.remove_table(table.pfn)

    def free_tables(self, a: AddressSpace, start: int, end: int, cause: str, cpu: int,
                    gather: "Gather") -> None:
        """free_pgtables(): detach every table whose whole span [start, end) covers."""
        m = self.m
        m.catch_up()
        for spans, level, table_map in ((self.span, v.LEVEL_PTE, a.ptes),
                                        (self.upper_span, v.LEVEL_PMD, a.pmds),
                                        (self.top_span, v.LEVEL_PUD, a.puds)):
            for key in sorted(table_map):
                if start <= key * spans and (key + 1) * spans <= end:
                    entry = table_map.pop(key)
                    pfn = entry.pfn if level == v.LEVEL_PTE else entry
                    m.tick(TABLE_OP_NS)
                    m.record(m.now, cpu, v.TABLE_DETACH, a.task, a.mm, pfn, m.codes[cause])
                    gather.remove_table(pfn)

    def sync(self, a: AddressSpace, cpu: int, method: str) -> None:
        """The walker sync before freeing a table at once (tlb_remove_table_sync_one & co)."""
        m = self.m
        if method == "none":
            return
        t0 = m.now
        if method == "synchronize_rcu":
            m.record(t0, cpu, v.TABLE_SYNC_BEGIN, a.task, m.codes[method], m.codes[()])
            m.synchronize_rcu(cpu)
        else:
            others = [c for c in range(m.ncpus) if c != cpu]
            if method == "ipi_targeted":
                # Only CPUs inside an IRQ-off lockless walk of this mm (§4, v4 series).
                others = [c for c in others if c in m.walkers and m.walkers[c].protect == "irq_off"
                          and m.walkers[c].section_at(m.now) is not None and m.walk_mm == a.mm]
            targets = tuple(others)
            m.record(t0, cpu, v.TABLE_SYNC_BEGIN, a.task, m.codes[method], m.codes[targets])
            m.call_function(cpu, a.task, targets, "table_sync",
                            "tlb_remove_table_sync_one")
        m.record(m.now, cpu, v.TABLE_SYNC_END, a.task, m.codes[method])
        m.sync_wait_ns += m.now - t0

    def vmpte(self, a: AddressSpace) -> int:
        """The process's VmPTE now (mm->pgtables_bytes; PUD tables count too)."""
        return (len(a.ptes) * self.arch.pte_table_bytes
                + (len(a.pmds) + len(a.puds)) * self.arch.upper_table_bytes)


class Gather:
    """One mmu_gather: tlb_gather_mmu() … tlb_finish_mmu()."""

    def __init__(self, kernel: Kernel, a: AddressSpace, cpu: int) -> None:
        self.k, self.a, self.cpu = kernel, a, cpu
        self.batch: list[int] | None = None
        self.pages: list[int] = []          # tables riding the page batch (no RCU-TF)
        self.freed_pages = False
        self.freed_tables = False

    def remove_table(self, pfn: int) -> None:
        """tlb_remove_table()."""
        k, m, cfg = self.k, self.k.m, self.k.cfg
        self.freed_tables = True
        if cfg.table_free == "page":
            m.record(m.now, self.cpu, v.TABLE_QUEUE, self.a.task, pfn, CODES["batch"])
            self.pages.append(pfn)
            return
        if self.batch is None:
            if k.batch_fail and m.rng.random() < k.batch_fail:
                self._single(pfn)
                return
            self.batch = []
        m.record(m.now, self.cpu, v.TABLE_QUEUE, self.a.task, pfn, CODES["batch"])
        self.batch.append(pfn)
        if len(self.batch) == k.batch_max:
            self._table_flush()

    def _single(self, pfn: int) -> None:
        """The batch page could not be allocated: tlb_table_invalidate + one table."""
        k, m, cfg, a = self.k, self.k.m, self.k.cfg, self.a
        self.flush_tlb()
        m.record(m.now, self.cpu, v.TABLE_QUEUE, a.task, pfn, m.codes["single"])
        if cfg.table_free == "rcu":
            m.call_rcu(self.cpu, a.task, "__tlb_remove_table_one_rcu", (pfn,),
                       lambda at, cpu: self._free(pfn, at, cpu, "rcu"))
            return
        k.sync(a, self.cpu, cfg.sync)
        self._free(pfn, m.now, self.cpu, "ipi_sync" if cfg.sync.startswith("ipi") else "direct")

    def _free(self, pfn: int, at: int, cpu: int, path: str) -> None:
        m = self.k.m
        task = m.softirq[cpu] if path == "rcu" else self.a.task
        m.record(at, cpu, v.TABLE_FREE, task, pfn, m.codes[path])
        self.k._freed(pfn, at)

    def _table_flush(self) -> None:
        """tlb_table_flush(): invalidate, then call_rcu(batch, tlb_remove_table_rcu)."""
        batch, self.batch = self.batch, None
        if not batch:
            return
        self.flush_tlb()
        self.k.m.call_rcu(self.cpu, self.a.task, "tlb_remove_table_rcu",
                          tuple(batch), lambda at, cpu: [self._free(p, at, cpu, "rcu")
                                                        for p in batch])

    def flush_tlb(self) -> None:
        """flush_tlb_mm_range(): local flush; IPIs to the mm's other CPUs on IPI arches."""
        m, a = self.k.m, self.a
        m.record(m.now, self.cpu, v.TLB_FLUSH, a.task, a.mm, CODES["local mm shootdown"])
        if m.ipi_flush:
            targets = tuple(sorted(a.cpus - {self.cpu}))
            m.call_function(self.cpu, a.task, targets, "tlb_shootdown",
                            "flush_tlb_mm_range", flush=a.mm)

    def finish(self) -> None:
        """tlb_finish_mmu(): flush if anything was unmapped, then free the tables."""
        m = self.k.m
        if self.freed_pages or self.freed_tables:
            self.flush_tlb()
        for pfn in self.pages:
            self._free(pfn, m.now, self.cpu, "direct")
        self.pages = []
        self._table_flush()

