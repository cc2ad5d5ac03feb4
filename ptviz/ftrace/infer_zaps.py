"""Frees and zaps: when, why and by whom each table was detached (SPEC §6).

A mixin of :class:`.infer.Inference`. ``mm_page_free`` of a table's pfn frees it (softirq
context: the RCU callback; else direct). The detach, where VmPTE drops, comes earlier
and is not traced: it is placed at the zap that freed the table (docs/kernel-facts.md
§2.2, mm/memory.c free_pgtables, mm/madvise.c): an MADV_DONTNEED covering its whole span
within one VMA (PT_RECLAIM), a munmap leaving no mapping in its span, an exit or exec
of its mm. The free may come tens of ms later; the reorder window takes the detach back
to its time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

from replayer import vocab as v

from ..arches import ARCHES
from .textparse import I64_END, Record, fields, number_field
from .textparse import number as _int

WINDOW_NS = 2_000_000_000          # RCU frees of tables come ~15-30 ms after the detach
#: A table freed with no zap covering it goes with a zap of its mm at most this long
#: before the free (the longest RCU delay measured: 100 ms under QEMU, traces/README).
NEAR_ZAP_NS = 200_000_000
#: The zaps kept per mm to place detaches at (those of the last WINDOW_NS, at most).
MAX_ZAPS = 8192
MADV = {4: "dontneed", 8: "free", 24: "dontneed"}   # MADV_DONTNEED, _FREE, _DONTNEED_LOCKED
# The captures ptviz imports come from x86_64, arm64 with 4 KiB pages or riscv64: one
# geometry, x86_64's (4 KiB pages, 512 entries a table; docs/kernel-facts.md §1.3).
CAPTURED = ARCHES["x86_64"]
PAGE = CAPTURED.page_size
PMD_SPAN, PUD_SPAN, P4D_SPAN = CAPTURED.pmd_span, CAPTURED.pud_span, CAPTURED.p4d_span
SPANS = {v.LEVEL_PTE: PMD_SPAN, v.LEVEL_PMD: PUD_SPAN, v.LEVEL_PUD: P4D_SPAN}
# A user address is in the lower half on the architectures ftrace captures come from
# (x86_64, arm64, riscv64: the upper half is the kernel's).
USER_END = I64_END
PFN_END = I64_END


class ZapSteps:
    def _on_mm_page_free(self, rec: Record) -> None:
        # The most frequent line of a capture: the pfn without a full field parse.
        p = rec.payload
        pfn = number_field(p, "pfn=", PFN_END)
        if self.pages.learning:
            self._learn_page(fields(p), pfn)
        if pfn is not None and pfn in self.tables:
            self._free(rec, pfn, "rcu" if "s" in rec.flags[2:3] else "direct")
            return
        self._raw(rec)

    _on_mm_page_free_batched = _on_mm_page_free

    def _free(self, rec: Record, pfn: int, path: str) -> None:
        t = self.tables.pop(pfn)
        mm, level, base = t["mm"], t["level"], t["addr"]
        if level == v.LEVEL_PTE and self.spans.get((mm, base // PMD_SPAN)) == pfn:
            del self.spans[(mm, base // PMD_SPAN)]
        if t.get("queued"):
            self._unqueued_at_free(pfn)
        if t.get("deposited"):
            self._forget_deposit(mm, pfn, base)
        if t.get("detached"):        # a probe saw the detach: this is the table's free
            self.out(rec.ts, v.TABLE_FREE, rec.cpu, rec.pid, (pfn, path, False), rec.comm)
            self.counts["frees"] += 1
            return
        at, cause, zap = self._detach_point(t, rec.ts)
        # The detach is the zapping task's step, on its CPU (the free may run anywhere).
        cpu, pid, comm = zap[6:] if zap is not None else (rec.cpu, rec.pid, rec.comm)
        if level == v.LEVEL_PTE and t["n"]:
            self.out(at, v.PTE_CLEAR, cpu, pid, (mm, pfn, t["n"], True), comm)
        self.out(at, v.TABLE_DETACH, cpu, pid, (mm, pfn, cause, True), comm)
        self.out(rec.ts, v.TABLE_FREE, rec.cpu, rec.pid, (pfn, path, True), rec.comm)
        self.counts["frees"] += 1

    def _detach_point(self, t: dict[str, Any], free_ts: int
                      ) -> tuple[int, str, tuple | None]:
        """When and why a table freed at ``free_ts`` was detached, and the zap that did
        it: the first zap since its last fault that frees it — an exit; a munmap whose
        floor and ceiling (the neighbouring VMAs, free_pgtables) take in the table's
        span; an MADV_DONTNEED whose zap covered its whole span within one VMA when it
        ran (PT_RECLAIM, docs/kernel-facts.md §2.2); for a deposited table, a zap of a
        whole huge PMD.
        The first, as a detached table is gone: a later zap cannot be its (its free
        waits a grace period, so an exit may come between). Without one: an exec, a
        zap just before, or just before the free, cause unknown. O(log z + the zaps
        since its last fault), z ≤ MAX_ZAPS the zaps kept per mm."""
        mm, level, base = t["mm"], t["level"], t["addr"]
        span = SPANS.get(level, P4D_SPAN)
        deposited = t.get("deposited", False)
        known = t.get("span_known", True)
        near = maybe = None
        zaps, stamps = self.zaps.get(mm, ((), ()))
        for k in range(bisect_left(stamps, max(t["last"], free_ts - WINDOW_NS + 1)),
                       bisect_right(stamps, free_ts)):
            zap = zaps[k]
            ts, start, end, cause, frees, deposits = zap[:6]
            if free_ts - ts <= NEAR_ZAP_NS and (cause == "munmap" or cause == "dontneed"
                                                and level == v.LEVEL_PTE):
                near = zap                          # the latest such, by the loop's end
            if cause == "exit":          # the whole mm (exit, or exec's exit_mmap)
                return self._placed(zap, "exit", maybe)
            if not known:
                continue
            if deposited:
                # Deposits are a pool per PMD table page (pmd_huge_pte): each huge PMD a
                # zap takes whole withdraws one of them, not always the one its own fault
                # deposited.
                pool = base // PUD_SPAN
                if deposits and deposits.get(pool):
                    deposits[pool] -= 1
                    return self._placed(zap, "munmap" if cause == "munmap" else "huge_zap")
                continue
            if cause == "munmap" and start < base + span and base < end and \
                    frees[0] <= base and base + span <= frees[1]:
                return self._placed(zap, "munmap", maybe)
            if cause == "dontneed" and level == v.LEVEL_PTE and base // PMD_SPAN in frees:
                if self.pt_reclaim:
                    return self._reclaimed(zap, base)
                # PT_RECLAIM unknown: this reclaim only may have happened; a munmap or
                # exit that surely freed the table before its free is preferred.
                maybe = maybe or zap
        if maybe is not None:
            return self._reclaimed(maybe, base)
        if t.get("exec_end") is not None and t["exec_end"] <= free_ts:
            # setup_arg_pages moved the stack down: free_pgd_range, munmap's path
            return t["exec_end"], "munmap", None
        burst = self.bursts.get(mm)
        if burst is not None and t["last"] < burst[0] <= free_ts:
            self.counts["detach_at_burst"] += 1
            return burst[0], burst[1], None
        if near is not None and (near[3] == "munmap" or self.pt_reclaim is not False):
            # A zap of this mm just before the free that does not cover the table as
            # ptviz knows it: the mapping likely moved where the trace cannot show
            # (mremap untraced). Its time is the best there is; the cause is not known.
            self.counts["detach_near_zap"] += 1
            return near[0] + 1, "other", near
        self.counts["detach_guessed"] += 1
        return free_ts - 1, "other", None

    def _reclaimed(self, zap: tuple, base: int) -> tuple[int, str, tuple]:
        self.vma_facts["reclaim_vma_unknown"] += not zap[4][base // PMD_SPAN]
        return self._placed(zap, "reclaim")

    def _placed(self, zap: tuple, cause: str, maybe: tuple | None = None
                ) -> tuple[int, str, tuple]:
        self.counts["detach_at_zap"] += 1
        self.counts["reclaims"] += cause == "reclaim"
        self.counts["maybe_reclaims_passed"] += maybe is not None
        return zap[0] + 1, cause, zap

    def _note_zap(self, mm: int, rec: Record, start: int, end: int, cause: str,
                  deposits: dict[int, int] | None = None) -> None:
        """Remember a zap of ``mm`` (the last 64) for placing detaches at frees, with
        what it can free, decided now (the VMAs may change before the frees come): a
        munmap's floor and ceiling, the PMD spans a MADV_DONTNEED can reclaim, and
        ``deposits``, how many huge PMDs it takes whole under each PMD table (by PUD
        index; spent as their deposited tables are freed)."""
        frees: Any = None
        if cause == "munmap":
            frees = self._floor_ceiling(mm, start, end)
        elif cause == "dontneed":
            frees = self._reclaimable(mm, start, end) if self.pt_reclaim is not False else {}
        zaps, stamps = self.zaps.setdefault(mm, ([], []))
        zaps.append((rec.ts, start, end, cause, frees, deposits, rec.cpu, rec.pid, rec.comm))
        stamps.append(rec.ts)
        if len(stamps) > MAX_ZAPS or stamps[0] < rec.ts - 2 * WINDOW_NS:
            # Only zaps in the reorder window can take a table freed from now on;
            # past MAX_ZAPS (a program unmapping at a furious rate), the oldest go.
            # (Pruned a window at a time: amortized O(1) per zap.)
            old = bisect_left(stamps, rec.ts - WINDOW_NS)
            drop = max(old, len(stamps) - MAX_ZAPS // 2) if len(stamps) > MAX_ZAPS else old
            del zaps[:drop], stamps[:drop]

    def _zap(self, rec: Record, start: int, end: int, cause: str) -> None:
        mm = self._mm(rec)
        self._split_huge(rec, mm, start, end)
        self._note_zap(mm, rec, start, end, cause, self._zap_huge(mm, start, end))
        self.out(rec.ts, v.ZAP_BEGIN, rec.cpu, rec.pid, (mm, start, end, cause, True), rec.comm)
        # Every entry of a PTE table whose whole span the zap covers is now none; the
        # table stays attached unless PT_RECLAIM or free_pgtables detaches it (seen at
        # its free). O(tables of this mm).
        for (owner, index), pfn in list(self.spans.items()):
            table = self.tables.get(pfn)
            if owner != mm or table is None or not table["n"]:
                continue
            if start <= index * PMD_SPAN and (index + 1) * PMD_SPAN <= end:
                self.out(rec.ts, v.PTE_CLEAR, rec.cpu, rec.pid, (mm, pfn, table["n"], True),
                         rec.comm)
                table["n"] = 0

    def _on_sys_madvise(self, rec: Record) -> None:
        """The syscall tracer's layout: ``sys_madvise(start: …)`` or ``sys_madvise -> ret``."""
        if rec.payload.startswith("->"):
            self._madvise_exit(rec)
        else:
            self._madvise_enter(rec)

    def _madvise_enter(self, rec: Record) -> None:
        f = fields(rec.payload)
        start, length, behavior = (_int(f.get("start"), True), _int(f.get("len_in"), True),
                                   _int(f.get("behavior"), True))
        cause = MADV.get(behavior)
        if start is None or length is None or cause is None or rec.pid is None \
                or start + length > USER_END:
            self._raw(rec)
            return
        self.madvise[rec.pid] = (rec.ts, start, start + length, cause)
        self._zap(rec, start, start + length, cause)

    def _madvise_exit(self, rec: Record) -> None:
        begin = self.madvise.pop(rec.pid, None)
        if begin is not None:
            self.out(rec.ts, v.ZAP_END, rec.cpu, rec.pid, (self._mm(rec), *begin[1:], True),
                     rec.comm)

    # trace-cmd report names the syscall events and prints the format files' fmt
    # ("start: 0x…, len_in: 0x…, behavior: 0x…" / "0x0").
    _on_sys_enter_madvise = _madvise_enter
    _on_sys_exit_madvise = _madvise_exit

    def _on_sys_munmap(self, rec: Record) -> None:
        if rec.payload.startswith("->"):
            self._munmap_exit(rec)
        else:
            self._munmap_enter(rec)

    def _munmap_enter(self, rec: Record) -> None:
        f = fields(rec.payload)
        addr, length = _int(f.get("addr"), True), _int(f.get("len"), True)
        if addr is not None and length is not None and rec.pid is not None \
                and addr + length <= USER_END:
            self.in_teardown[rec.pid] = "munmap"
            mm = self._mm(rec)
            if mm in self.vmas:         # first: the zap's floor and ceiling are what is left
                self.vmas[mm].unmap(addr, addr + -(-length // 4096) * 4096)
            self._zap(rec, addr, addr + length, "munmap")
        else:
            self._raw(rec)

    def _munmap_exit(self, rec: Record) -> None:
        if self.in_teardown.get(rec.pid) == "munmap":
            del self.in_teardown[rec.pid]
        self._raw(rec)

    _on_sys_enter_munmap = _munmap_enter
    _on_sys_exit_munmap = _munmap_exit
