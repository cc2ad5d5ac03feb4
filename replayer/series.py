"""Counter series for plots: step functions recorded when a value changes.

Each :class:`Series` is two ``array('q')`` columns (time, value), appended in
time order during the full replay. ``sample(t0, t1, n)`` gives, per bucket,
the largest value the counter held during it (so a one-event spike stays
visible when zoomed out); rate series give the number of increments instead.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

import numpy as np


class Series:
    """A step function: ``value(t)`` is the last value recorded at or before t.

    During the replay :meth:`append` is two C-level appends; :meth:`compact`
    (once, at the end) keeps the last value of each instant.
    """

    __slots__ = ("ts", "values", "rate", "frozen")

    def __init__(self, rate: bool = False) -> None:
        self.ts = array("q")
        self.values = array("q")
        self.rate = rate
        #: Set by :meth:`compact`: no more appends, so queries may view the arrays.
        self.frozen = False

    def append(self, ts: int, value: int) -> None:
        """O(1); times must not decrease."""
        self.ts.append(ts)
        self.values.append(value)

    def compact(self) -> None:
        """Keep the last value recorded at each instant: O(n). The series is then frozen."""
        self.frozen = True
        ts = np.frombuffer(self.ts, np.int64)
        if len(ts) < 2:
            return
        last = np.ones(len(ts), bool)
        last[:-1] = ts[1:] != ts[:-1]
        if not last.all():
            self.ts = array("q", ts[last].tobytes())
            self.values = array("q", np.frombuffer(self.values, np.int64)[last].tobytes())

    def __len__(self) -> int:
        return len(self.ts)

    def value_at(self, t: int) -> int:
        """O(log n)."""
        k = bisect_right(self.ts, t)
        return self.values[k - 1] if k else 0

    def sample(self, t0: int, t1: int, n: int) -> list[int]:
        """``n`` buckets over ``[t0, t1)``: max per bucket, or increments for a rate.

        O(n log m + points in the window), in numpy.
        """
        if n <= 0 or t1 <= t0:
            return []
        # While the load still appends, read copies: a view would stop the arrays growing.
        ts_, values_ = (self.ts, self.values) if self.frozen else (self.ts[:], self.values[:])
        n_points = min(len(ts_), len(values_))
        ts = np.frombuffer(ts_, np.int64)[:n_points]
        values = np.frombuffer(values_, np.int64)[:n_points]
        edges = t0 + (np.arange(n + 1, dtype=np.int64) * (t1 - t0)) // n
        if self.rate:
            k = np.searchsorted(ts, edges - 1, side="right")
            level = np.where(k > 0, values[np.maximum(k - 1, 0)], 0) if len(ts) else \
                np.zeros(n + 1, np.int64)
            return np.diff(level).tolist()
        # For bucket [a, b): the value at a (changes at a included), then the
        # changes strictly inside.
        after = np.searchsorted(ts, edges, side="right").tolist()
        before = np.searchsorted(ts, edges, side="left").tolist()
        out = []
        for j in range(n):
            first, last = after[j], before[j + 1]
            carried = int(values[first - 1]) if first else 0
            out.append(max(carried, int(values[first:last].max())) if last > first
                       else carried)
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

    def compact(self) -> None:
        for series in (self.table_bytes, self.empty_attached, self.rcu_pending, self.ipis,
                       *self.per_mm.values()):
            series.compact()

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
