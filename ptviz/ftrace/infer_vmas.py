"""VMAs, moves and huge pages: what decides whether a zap can free a PTE table.

A mixin of :class:`.infer.Inference`. Kernel facts (docs/kernel-facts.md §2.2, mm/madvise.c,
mm/mremap.c, mm/huge_memory.c):

* MADV_DONTNEED zaps each VMA on its own, and PT_RECLAIM frees a PTE table only when
  one VMA's zap covers the table's whole PMD span. The VMAs come from mmap, munmap,
  mprotect (splits, and merges when the protections agree again), mremap and brk, by
  their arguments and return values; a mapping made before the trace is unknown, and a
  reclaim there is assumed possible (the notes count how often).
* mremap to a destination congruent modulo 2 MiB moves whole PTE tables
  (``move_normal_pmd``: no allocation, no free, the span changes); otherwise it
  allocates the destination's tables inside the call and frees the old range's.
* A huge-PMD fault deposits a PTE table (counted in VmPTE). A zap of the whole huge
  PMD frees it directly (``zap_deposited_table``); a split (mprotect, munmap or madvise
  of part of it) withdraws it as the PTE table of the span, full of entries.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice

from replayer import vocab as v

from .infer_zaps import PAGE, PMD_SPAN, PUD_SPAN
from .vma_map import VmaMap
from .textparse import I64_END, U64_END, Record, fields
from .textparse import number as _int

MAP_SHARED, MAP_ANONYMOUS = 0x01, 0x20
USER_END = I64_END          # no user address space reaches 2^63 (x86-64 LA57: 2^56)


class VmaSteps:
    def _init_vmas(self) -> None:
        self.vmas: dict[int, VmaMap] = {}
        self.pending: dict[int, tuple] = {}       # pid → (call, args) between enter and exit
        self.brk_of: dict[int, int] = {}          # mm → its program break
        self.vma_facts: Counter[str] = Counter()
        self.huge: dict[int, set[int]] = {}         # mm → pmd indexes mapped by a huge PMD
        self.pools: dict[tuple[int, int], list[int]] = {}   # (mm, pud index) → deposits

    def _vma_map(self, mm: int) -> VmaMap:
        m = self.vmas.get(mm)
        if m is None:
            m = self.vmas[mm] = VmaMap()
        return m

    def _floor_ceiling(self, mm: int, start: int, end: int) -> tuple[int, int]:
        """free_pgtables' bounds for an unmap of ``[start, end)`` (the VMAs already
        gone): the end of the VMA before it and the start of the one after. Where ptviz
        knows of none, the range's own end: a VMA mapped before the trace may be there,
        so a table is taken as freed only as far as ptviz can tell."""
        floor, ceiling = self.vmas[mm].neighbours(start, end) if mm in self.vmas else \
            (None, None)
        return (min(start, floor) if floor is not None else start,
                max(end, ceiling) if ceiling is not None else end)

    def _reclaimable(self, mm: int, start: int, end: int) -> dict[int, bool]:
        """The PMD spans with a PTE table a MADV_DONTNEED of ``[start, end)`` can
        reclaim (its zap covers the whole span inside one VMA, as PT_RECLAIM needs),
        each with whether that VMA is known (else assumed: mapped before the trace).
        Spans split across VMAs are counted as denied."""
        vmas = self.vmas.get(mm)
        out: dict[int, bool] = {}
        for i in self._spans_in(mm, start, end):
            lo, hi = i * PMD_SPAN, (i + 1) * PMD_SPAN
            if not (start <= lo and hi <= end):
                continue
            one = vmas.covering(lo, hi) if vmas is not None else None
            if one is False:
                self.vma_facts["reclaim_denied_split"] += 1
            else:
                out[i] = one is True
        return out

    def _call_args(self, rec: Record) -> dict[str, int]:
        """A syscall's arguments as numbers (the syscall tracer prints them in hex)."""
        return {k: n for k, text in fields(rec.payload).items()
                if (n := _int(text, True, hi=U64_END)) is not None}

    def _ret(self, rec: Record) -> int | None:
        """A syscall's return value; None for an error (-errno prints as 0xffff…)."""
        ret = _int(rec.payload.lstrip("-> ").strip(), True, hi=U64_END)
        return None if ret is None or ret >= U64_END - 4096 else ret

    def _enter(self, rec: Record, call: str) -> None:
        self.pending[rec.pid] = (call, self._call_args(rec))
        self._raw(rec)

    def _exit(self, rec: Record, call: str) -> tuple[dict[str, int], int] | None:
        """The arguments of the call ``rec`` returns from, and its return value."""
        self._raw(rec)
        pending = self.pending.pop(rec.pid, None)
        ret = self._ret(rec)
        if pending is None or pending[0] != call or ret is None or rec.pid is None:
            return None
        return pending[1], ret

    # -- mmap, mprotect, brk -----------------------------------------------------------
    def _mmap_enter(self, rec: Record) -> None:
        self._enter(rec, "mmap")

    def _mmap_exit(self, rec: Record) -> None:
        done = self._exit(rec, "mmap")
        if done is None:
            return
        args, addr = done
        length = _page_up(args.get("len", 0))
        flags = args.get("flags", 0)
        anon = bool(flags & MAP_ANONYMOUS) and not flags & MAP_SHARED
        if not _user(addr + length):
            return
        self._vma_map(self._mm(rec)).map(addr, addr + length, (args.get("prot", 0), anon))
        self.vma_facts["mmap"] += 1

    _on_sys_enter_mmap = _mmap_enter
    _on_sys_exit_mmap = _mmap_exit

    def _on_sys_mmap(self, rec: Record) -> None:
        (self._mmap_exit if rec.payload.startswith("->") else self._mmap_enter)(rec)

    def _mprotect_enter(self, rec: Record) -> None:
        self._enter(rec, "mprotect")

    def _mprotect_exit(self, rec: Record) -> None:
        done = self._exit(rec, "mprotect")
        if done is None:
            return
        args, _ = done
        start, length = args.get("start"), _page_up(args.get("len", 0))
        if start is None or not _user(start + length):
            return
        mm = self._mm(rec)
        self._vma_map(mm).protect(start, start + length, args.get("prot", 0))
        self._split_huge(rec, mm, start, start + length)
        self.vma_facts["mprotect"] += 1

    _on_sys_enter_mprotect = _mprotect_enter
    _on_sys_exit_mprotect = _mprotect_exit

    def _on_sys_mprotect(self, rec: Record) -> None:
        (self._mprotect_exit if rec.payload.startswith("->") else self._mprotect_enter)(rec)

    def _brk_enter(self, rec: Record) -> None:
        self._enter(rec, "brk")

    def _brk_exit(self, rec: Record) -> None:
        done = self._exit(rec, "brk")
        if done is None:
            return
        _, new = done
        if not _user(_page_up(new)):
            return
        mm = self._mm(rec)
        old = self.brk_of.get(mm)
        self.brk_of[mm] = new
        if old is None or new == old:
            return
        heap = self._vma_map(mm)
        if new > old:
            heap.map(_page_up(old), _page_up(new), (0x3, True))
        else:                                   # a shrink unmaps, like munmap
            heap.unmap(_page_up(new), _page_up(old))
            self._zap(rec, _page_up(new), _page_up(old), "munmap")

    _on_sys_enter_brk = _brk_enter
    _on_sys_exit_brk = _brk_exit

    def _on_sys_brk(self, rec: Record) -> None:
        (self._brk_exit if rec.payload.startswith("->") else self._brk_enter)(rec)

    # -- mremap ---------------------------------------------------------------------
    def _mremap_enter(self, rec: Record) -> None:
        self._close_fault(rec.pid)
        self._settle_orphans(rec)
        self.calls[rec.pid] = "mremap"
        self._enter(rec, "mremap")

    def _mremap_exit(self, rec: Record) -> None:
        self.calls.pop(rec.pid, None)
        done = self._exit(rec, "mremap")
        made = self.orphans.pop(rec.pid, [])
        if done is None:
            self.orphans[rec.pid] = made
            self._settle_orphans(rec)
            return
        args, new = done
        old, old_len = args.get("addr"), _page_up(args.get("old_len", 0))
        new_len = _page_up(args.get("new_len", 0))
        if old is None or not _user(old + old_len, old + new_len, new + new_len):
            return
        mm = self._mm(rec)
        vmas = self._vma_map(mm)
        key = vmas.key_at(old) or (0x3, True)
        self.vma_facts["mremap"] += 1
        if new == old:                          # resized in place
            if new_len < old_len:
                vmas.unmap(old + new_len, old + old_len)
                self._zap(rec, old + new_len, old + old_len, "munmap")
            else:
                vmas.map(old, old + new_len, key)
            self._place_new_tables(rec, mm, made, old + old_len, old + new_len)
            return
        vmas.unmap(old, old + old_len)
        vmas.map(new, new + new_len, key)
        if (new - old) % PMD_SPAN == 0:
            self._move_tables(rec, mm, old, old + min(old_len, new_len), new - old)
        else:
            entries = self._entries_in(mm, old, old + old_len)
            self._zap(rec, old, old + old_len, "munmap")
            self._place_new_tables(rec, mm, made, new, new + min(old_len, new_len), entries)
            made = []
        self._place_new_tables(rec, mm, made, new, new + new_len)

    _on_sys_enter_mremap = _mremap_enter
    _on_sys_exit_mremap = _mremap_exit

    def _on_sys_mremap(self, rec: Record) -> None:
        (self._mremap_exit if rec.payload.startswith("->") else self._mremap_enter)(rec)

    def _spans_in(self, mm: int, start: int, end: int) -> list[int]:
        """The PMD indexes in ``[start, end)`` where ``mm`` has a PTE table, ascending.
        O(min(spans in the range, tables known)): a range from a trace can be 2^64
        bytes long, and only the known tables are worth a look."""
        indexes = range(start // PMD_SPAN, -(-end // PMD_SPAN))
        if len(indexes) <= 2 * len(self.spans) + 64:
            return [i for i in indexes if (mm, i) in self.spans]
        return sorted(i for owner, i in self.spans if owner == mm and i in indexes)

    def _move_tables(self, rec: Record, mm: int, start: int, end: int, delta: int) -> None:
        """``move_normal_pmd``: PTE tables whose span lies in ``[start, end)`` now map
        their span moved by ``delta`` (a multiple of 2 MiB), entries and all."""
        moving = [(index, self.spans.pop((mm, index))) for index in self._spans_in(mm, start, end)
                  if start <= index * PMD_SPAN and (index + 1) * PMD_SPAN <= end]
        for _, pfn in moving:           # all out before any lands: the ranges may overlap
            table = self.tables.get(pfn)
            if table is None:
                continue
            table["addr"] += delta
            table["last"] = rec.ts
            self.spans[(mm, table["addr"] // PMD_SPAN)] = pfn
            self.vma_facts["tables_moved"] += 1

    def _entries_in(self, mm: int, start: int, end: int) -> float:
        """The fraction of pages in ``[start, end)`` mapped, from its PTE tables."""
        pages = (end - start) // PAGE
        present = 0
        for index in self._spans_in(mm, start, end):
            lo, hi = max(start, index * PMD_SPAN), min(end, (index + 1) * PMD_SPAN)
            pfn = self.spans[(mm, index)]
            if pfn in self.tables:
                present += min(self.tables[pfn]["n"], (hi - lo) // PAGE)
        return present / pages if pages > 0 else 0.0

    def _place_new_tables(self, rec: Record, mm: int, made: list, start: int, end: int,
                          filled: float = 0.0) -> None:
        """Tables a call allocated for ``[start, end)``: a PTE table for each span there
        that has none (in address order), the ones left over upper levels; each gets
        the entries the moved pages bring (``filled``: the fraction mapped)."""
        if not made:
            return
        # The spans with no table, as many as there are tables (the range may be huge).
        need = list(islice((i for i in range(start // PMD_SPAN, -(-end // PMD_SPAN))
                            if (mm, i) not in self.spans), len(made)))
        extra = max(0, len(made) - len(need))
        for k, (ts, pfn, cpu, comm) in enumerate(made):
            if k < extra:
                self._new_table(ts, cpu, rec.pid, comm, mm, v.LEVEL_PMD, pfn,
                                start - start % (1 << 30))
                continue
            index = need[k - extra]
            self._new_table(ts, cpu, rec.pid, comm, mm, v.LEVEL_PTE, pfn, index * PMD_SPAN)
            lo, hi = max(start, index * PMD_SPAN), min(end, (index + 1) * PMD_SPAN)
            n = round((hi - lo) // PAGE * filled)
            if n:
                self.tables[pfn]["n"] = n
                self.out(ts, v.PTE_SET, cpu, rec.pid, (mm, pfn, n, True), comm)

    # -- huge pages ---------------------------------------------------------------------
    # -- huge PMDs and their deposits ----------------------------------------------
    # Deposits are kept per PMD table page (x86-64 splits PMD ptlocks: pmd_huge_pte is
    # the PMD table's), not per huge PMD: a withdraw takes the list's head, which is not
    # always the table the same PMD's fault deposited (mm/pgtable-generic.c).
    def _deposit(self, mm: int, index: int, pfn: int) -> None:
        """pgtable_trans_huge_deposit: the new table becomes the head, and the old head
        is withdrawn last. ``seq`` is the withdraw order."""
        self.huge.setdefault(mm, set()).add(index)
        seq = self.pools.setdefault((mm, index * PMD_SPAN // PUD_SPAN), [])
        seq[:] = [pfn] + seq[1:] + seq[:1]

    def _withdraw(self, mm: int, index: int) -> int | None:
        seq = self.pools.get((mm, index * PMD_SPAN // PUD_SPAN))
        return seq.pop(0) if seq else None

    def _forget_deposit(self, mm: int, pfn: int, addr: int) -> None:
        """A deposited table was freed: a zap of a whole huge PMD withdrew it."""
        seq = self.pools.get((mm, addr // PUD_SPAN))
        if seq and pfn in seq:
            seq.remove(pfn)

    def _zap_huge(self, mm: int, start: int, end: int) -> dict[int, int] | None:
        """Huge PMDs a zap covers whole are gone, each taking a deposited table with it
        (seen at its free); the ones it covers in part were split first. Returns how
        many went under each PMD table (by PUD index)."""
        huge = self.huge.get(mm)
        if not huge:
            return None
        whole = range(-(-start // PMD_SPAN), end // PMD_SPAN)
        gone = [i for i in huge if i in whole]
        huge.difference_update(gone)
        return dict(Counter(i * PMD_SPAN // PUD_SPAN for i in gone)) if gone else None

    def _split_huge(self, rec: Record, mm: int, start: int, end: int) -> None:
        """A change to part of a huge PMD splits it: a deposited table is withdrawn as
        the span's PTE table, an entry for each of its pages. Only the range's first
        and last PMD can be partly covered."""
        huge = self.huge.get(mm, ())
        for index in sorted({start // PMD_SPAN, (end - 1) // PMD_SPAN}):
            lo, hi = index * PMD_SPAN, (index + 1) * PMD_SPAN
            if start <= lo and hi <= end or index not in huge:
                continue                        # the whole huge PMD: no split
            huge.discard(index)
            pfn = self._withdraw(mm, index)
            table = self.tables.get(pfn)
            if table is None:
                continue
            table.update(deposited=False, addr=lo, n=PMD_SPAN // PAGE, last=rec.ts)
            self.spans[(mm, index)] = pfn
            self.vma_facts["huge_split"] += 1
            self.out(rec.ts, v.PTE_SET, rec.cpu, rec.pid, (mm, pfn, table["n"], True), rec.comm)


def _user(*ends: int) -> bool:
    """Whether ranges ending there lie in a user address space (the kernel refuses a
    call whose range does not; a trace may say anything)."""
    return all(end <= USER_END for end in ends)


def _page_up(n: int) -> int:
    return -(-n // PAGE) * PAGE
