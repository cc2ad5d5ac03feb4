"""The steps probes see directly (see :mod:`.probes`), as a mixin of :class:`.infer.Inference`.

Every event made here carries ``inferred=False``: the kernel said it. A hit whose
pointer cannot be tied to a known table (hashed pointers, a table allocated
before the trace began) stays a raw event and is counted in ``probe_unmapped``.
"""

from __future__ import annotations

from replayer import vocab as v

from .infer_zaps import PMD_SPAN
from .probes import RCU_CALLBACKS, PagePointers, parse_hit, symbol_name
from .textparse import Record, checked

_BATCH_CB, _ONE_CB = RCU_CALLBACKS
FLUSH_RANGE_NS = 1_000_000      # a tlb_flush belongs to the flush_tlb_mm_range just before


class ProbeSteps:
    def _init_probes(self) -> None:
        self.pages = PagePointers()
        self.pending: dict[int, list] = {}        # pid → [(ts, pfn, cpu, comm)] in mmu_gather
        self.confirmed: set[int] = set()          # pfns a pte_alloc_one return named
        self.flush_range: dict[int, tuple] = {}   # cpu → (ts, pid, mm, start, end)
        self.counts.update(probe_hits=0, probe_unmapped=0, detach_seen=0)

    def _learn_page(self, f: dict[str, str], pfn: int | None) -> None:
        if pfn is not None:
            self.pages.learn(f.get("page"), pfn)

    def _probe(self, rec: Record) -> bool:
        """Handle ``rec`` if it is a probe hit this module maps; False otherwise."""
        hit = parse_hit(rec.name, rec.payload)
        if hit is None:
            return False
        event, args = hit
        self.counts["probe_hits"] += 1
        if not getattr(self, "_hit_" + event)(rec, args):
            self.counts["probe_unmapped"] += 1
            self._raw(rec)
        return True

    def _known_table(self, pointer: str | None) -> int | None:
        pfn = self.pages.pfn(pointer)
        return pfn if pfn is not None and pfn in self.tables else None

    def _detach_cause(self, pid: int | None) -> str:
        madvise = self.madvise.get(pid)
        if madvise is not None:
            return "reclaim" if madvise[3] == "dontneed" else "other"
        return self.in_teardown.get(pid, "other")

    def _detach_now(self, rec: Record, pfn: int) -> None:
        table = self.tables[pfn]
        if table.get("detached"):
            return
        table["detached"] = True
        self.counts["detach_seen"] += 1
        mm = table["mm"]
        key = (mm, table["addr"] // PMD_SPAN)
        if table["level"] == v.LEVEL_PTE and self.spans.get(key) == pfn:
            del self.spans[key]          # later faults there need a new table
        if table["level"] == v.LEVEL_PTE and table["n"]:
            self.out(rec.ts, v.PTE_CLEAR, rec.cpu, rec.pid, (mm, pfn, table["n"], True),
                     rec.comm)
            table["n"] = 0
        self.out(rec.ts, v.TABLE_DETACH, rec.cpu, rec.pid,
                 (mm, pfn, self._detach_cause(rec.pid), False), rec.comm)

    # -- hits ----------------------------------------------------------------
    def _hit_pte_free_tlb(self, rec: Record, args: dict[str, str]) -> bool:
        pfn = self._known_table(args.get("pte"))
        if pfn is None:
            return False
        self._detach_now(rec, pfn)
        return True

    def _hit_tlb_remove_table(self, rec: Record, args: dict[str, str]) -> bool:
        # Every level reaches mmu_gather here (___pmd_free_tlb, ___pud_free_tlb too):
        # a table not yet seen detached is detached now.
        pfn = self._known_table(args.get("table"))
        if pfn is None:
            return False
        self._detach_now(rec, pfn)
        self.tables[pfn]["queued"] = True
        self.pending.setdefault(rec.pid, []).append((rec.ts, pfn, rec.cpu, rec.comm))
        return True

    def _hit_call_rcu(self, rec: Record, args: dict[str, str]) -> bool:
        func, head = symbol_name(args.get("func", "")), args.get("head")
        if head is None:
            return False
        if func not in (_BATCH_CB, _ONE_CB):
            self._raw(rec)    # another callback (the probe's filter did not take): raw
            return True
        cb = checked(head, 16)
        if cb is None:
            return False
        self.rcu_cbs.add(cb)
        if func == _BATCH_CB:
            queued, via = self.pending.pop(rec.pid, []), "batch"
        else:
            pfn = self._known_table(head)     # the rcu_head inside the ptdesc
            mine = self.pending.get(rec.pid, [])
            queued, via = [q for q in mine if q[1] == pfn], "single"
            self.pending[rec.pid] = [q for q in mine if q[1] != pfn]
        for ts, pfn, cpu, comm in queued:
            self.out(ts, v.TABLE_QUEUE, cpu, rec.pid, (pfn, via, False), comm)
            self.tables[pfn]["queued"] = False
        self.out(rec.ts, v.RCU_QUEUE, rec.cpu, rec.pid,
                 (cb, func, tuple(q[1] for q in queued)), rec.comm)
        return True

    def _hit_tlb_remove_table_rcu(self, rec: Record, args: dict[str, str]) -> bool:
        cb = checked(args.get("head"), 16)
        if cb is None:
            return False
        self.rcu_cbs.discard(cb)
        if cb != self.last_invoked:         # else rcu_invoke_callback already said so
            self.out(rec.ts, v.RCU_INVOKE, rec.cpu, rec.pid, (cb,), rec.comm)
        return True

    def _hit_pte_alloc_one(self, rec: Record, args: dict[str, str]) -> bool:
        pfn = self.pages.pfn(args.get("ret"))
        if pfn is None:
            return False
        self.confirmed.add(pfn)
        self._raw(rec)
        return True

    def _hit_flush_tlb_mm_range(self, rec: Record, args: dict[str, str]) -> bool:
        start, end = checked(args.get("start"), 16), checked(args.get("end"), 16)
        if start is None or end is None:
            return False
        self.flush_range[rec.cpu] = (rec.ts, rec.pid, self._task_mm(rec), start, end)
        self._raw(rec)
        return True

    def _hit_free_pgtables(self, rec: Record, args: dict[str, str]) -> bool:
        self._raw(rec)
        return True

    def _flush_range_for(self, rec: Record) -> tuple:
        """(mm, start, end) of the flush_tlb_mm_range this tlb_flush belongs to, else
        (mm of the task, None, None)."""
        last = self.flush_range.get(rec.cpu)
        if last is not None and last[1] == rec.pid and rec.ts - last[0] <= FLUSH_RANGE_NS:
            return last[2:]
        return self._task_mm(rec), None, None

    def _task_mm(self, rec: Record) -> int | None:
        return self.mm_of.get(self.tgid_of.get(rec.pid, rec.pid))

    def _unqueued_at_free(self, pfn: int) -> None:
        """A table handed to mmu_gather whose call_rcu was not seen (no call_rcu probe,
        or the single path without PT_RECLAIM): its queue step at the hand-over."""
        for owner, items in self.pending.items():
            for item in items:
                if item[1] == pfn:
                    items.remove(item)
                    ts, _, cpu, comm = item
                    self.out(ts, v.TABLE_QUEUE, cpu, owner, (pfn, "batch", False), comm)
                    return
