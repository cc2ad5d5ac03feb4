"""One mm's VMAs as the inference knows them (:mod:`.infer_vmas` keeps one per mm):
what mmap, munmap, mprotect, mremap and brk made of its address space, enough to tell
whether a zap covers a PTE table's whole span within one VMA (PT_RECLAIM) and where a
munmap's floor and ceiling lie (free_pgtables)."""

from __future__ import annotations

from bisect import bisect_right


class VmaMap:
    """One mm's known VMAs: disjoint ``[start, end)`` with a key that decides merging
    (protection, anonymous or not). O(log n + VMAs touched) per change."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.vmas: list[list] = []          # [start, end, key]

    def _cut(self, at: int) -> None:
        """Split the VMA holding ``at`` there."""
        i = bisect_right(self.starts, at) - 1
        if i >= 0 and self.vmas[i][0] < at < self.vmas[i][1]:
            start, end, key = self.vmas[i]
            self.vmas[i][1] = at
            self.vmas.insert(i + 1, [at, end, key])
            self.starts.insert(i + 1, at)

    def unmap(self, start: int, end: int) -> None:
        self._cut(start)
        self._cut(end)
        keep = [vma for vma in self.vmas if vma[1] <= start or vma[0] >= end]
        self.vmas, self.starts = keep, [vma[0] for vma in keep]

    def map(self, start: int, end: int, key: tuple) -> None:
        self.unmap(start, end)
        i = bisect_right(self.starts, start)
        self.vmas.insert(i, [start, end, key])
        self.starts.insert(i, start)
        self._merge(max(0, i - 1), i + 2)

    def protect(self, start: int, end: int, prot: int) -> None:
        self._cut(start)
        self._cut(end)
        lo = bisect_right(self.starts, start) - 1
        for vma in self.vmas[max(lo, 0):]:
            if vma[0] >= end:
                break
            if vma[1] > start:
                vma[2] = (prot,) + tuple(vma[2][1:])
        self._merge(max(lo - 1, 0), bisect_right(self.starts, end) + 1)

    def key_at(self, addr: int) -> tuple | None:
        i = bisect_right(self.starts, addr) - 1
        return self.vmas[i][2] if i >= 0 and addr < self.vmas[i][1] else None

    def _merge(self, lo: int, hi: int) -> None:
        """Adjacent anonymous VMAs with the same protection become one, as vma_merge
        makes them."""
        i = max(lo, 0)
        while i < min(hi, len(self.vmas)) - 1:
            a, b = self.vmas[i], self.vmas[i + 1]
            if a[1] == b[0] and a[2] == b[2] and a[2][1]:
                a[1] = b[1]
                del self.vmas[i + 1], self.starts[i + 1]
                hi -= 1
            else:
                i += 1

    def neighbours(self, start: int, end: int) -> tuple[int | None, int | None]:
        """(end of the last VMA before ``start``, start of the first after ``end``) for
        a hole ``[start, end)``; None where ptviz knows of none (there may be one
        mapped before the trace). O(log n)."""
        i = bisect_right(self.starts, start) - 1
        j = bisect_right(self.starts, end - 1)
        return (self.vmas[i][1] if i >= 0 else None,
                self.vmas[j][0] if j < len(self.vmas) else None)

    def covering(self, start: int, end: int) -> bool | None:
        """Whether one VMA covers ``[start, end)``: None when no known VMA holds
        ``start`` (mapped before the trace, or by a call it did not show)."""
        i = bisect_right(self.starts, start) - 1
        if i < 0 or self.vmas[i][1] <= start:
            return None
        return self.vmas[i][1] >= end
