"""Counter series for plots: step functions recorded when a value changes.

Each :class:`Series` is two ``array('q')`` columns (time, value), appended in
time order during the full replay. ``sample(t0, t1, n)`` gives, per bucket,
the largest value the counter held during it (so a one-event spike stays
visible when zoomed out); rate series give the number of increments instead.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right


class Series:
    """A step function: ``value(t)`` is the last value recorded at or before t."""

    __slots__ = ("ts", "values", "rate")

    def __init__(self, rate: bool = False) -> None:
        self.ts = array("q")
        self.values = array("q")
        self.rate = rate

    def append(self, ts: int, value: int) -> None:
        """O(1). Several changes at one instant keep the last."""
        if self.ts and self.ts[-1] == ts:
            self.values[-1] = value
        else:
            self.ts.append(ts)
            self.values.append(value)

    def __len__(self) -> int:
        return len(self.ts)

    def value_at(self, t: int) -> int:
        """O(log n)."""
        k = bisect_right(self.ts, t)
        return self.values[k - 1] if k else 0

    def sample(self, t0: int, t1: int, n: int) -> list[int]:
        """``n`` buckets over ``[t0, t1)``: max per bucket, or increments for a rate.

        O(n log m + points in the window).
        """
        if n <= 0 or t1 <= t0:
            return []
        edges = [t0 + (t1 - t0) * k // n for k in range(n + 1)]
        ts, values = self.ts, self.values
        out = []
        for a, b in zip(edges, edges[1:]):
            if self.rate:
                out.append(self.value_at(b - 1) - self.value_at(a - 1))
                continue
            i0 = bisect_left(ts, a)
            i1 = bisect_left(ts, b)
            carried = values[i0 - 1] if i0 else 0
            out.append(max(carried, max(values[i0:i1])) if i1 > i0 else carried)
        return out


class SeriesSet:
    """The counters a replay keeps: global, per mm, and rates.

    ``table_bytes``: global page-table memory (the kernel's PageTables);
    ``mm_bytes(mm)``: one address space's VmPTE; ``empty_attached``: PTE tables
    attached with no present entry; ``rcu_pending``: callbacks queued, not run;
    ``ipis``: IPIs sent (a rate series).
    """

    def __init__(self) -> None:
        self.table_bytes = Series()
        self.empty_attached = Series()
        self.rcu_pending = Series()
        self.ipis = Series(rate=True)
        self.per_mm: dict[int, Series] = {}

    def mm_bytes(self, mm: int) -> Series:
        s = self.per_mm.get(mm)
        if s is None:
            s = self.per_mm[mm] = Series()
        return s

    def names(self) -> list[str]:
        return ["table_bytes", "empty_attached", "rcu_pending", "ipis"] + [
            f"table_bytes:{mm:#x}" for mm in self.per_mm]

    def get(self, name: str) -> Series | None:
        if name.startswith("table_bytes:"):
            try:
                return self.per_mm.get(int(name.split(":", 1)[1], 0))
            except ValueError:
                return None
        return getattr(self, name, None) if name in self.names()[:4] else None
