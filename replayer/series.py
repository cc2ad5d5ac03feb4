"""Counter series for plots: step functions recorded when a value changes.

Each :class:`Series` is two int64 columns (time, value), appended in time order
during the full replay (``array('q')`` and numpy blocks; numpy once compacted).
``sample(t0, t1, n)`` gives, per bucket, the largest value the counter held during
it (so a one-event spike stays visible when zoomed out); rate series give the number
of increments instead.
"""

from __future__ import annotations

from array import array
import threading
from bisect import bisect_right

import numpy as np


#: Guards a series' swap at compaction against readers on other threads.
_SWAP = threading.Lock()


#: A bulk append that would make the arrays at least this long moves them into a
#: numpy block instead: an ``array('q')`` grows by a sixteenth, and a large one is
#: moved (copied, and its new pages faulted in) time after time, where a block is
#: written once.
BLOCK_MIN = 8192


class Series:
    """A step function: ``value(t)`` is the last value recorded at or before t.

    While loading, the points are numpy blocks (``extend``) followed by the
    ``array('q')`` pair ``ts``/``values`` (``append``, and the fold's appenders:
    bound methods of those arrays, so the arrays are emptied in place, never
    replaced). :meth:`compact` (once, at the end) joins them, keeps the last value
    of each instant, and leaves ``ts``/``values`` holding every point (int64 numpy).
    """

    __slots__ = ("ts", "values", "rate", "frozen", "_blocks")

    def __init__(self, rate: bool = False) -> None:
        self.ts = array("q")
        self.values = array("q")
        self.rate = rate
        #: Set by :meth:`compact`: no more appends, so queries may view the arrays.
        self.frozen = False
        #: ((ts, values) int64 blocks, points in them): replaced whole under _SWAP.
        self._blocks: tuple[tuple, int] = ((), 0)

    # Values before times: a reader on another thread that finds a time by bisecting
    # ``ts`` then always finds its value.
    def append(self, ts: int, value: int) -> None:
        """O(1); times must not decrease."""
        self.values.append(value)
        self.ts.append(ts)

    def extend(self, ts: "np.ndarray", values: "np.ndarray") -> None:
        """Many appends at once (int64 arrays of one length): O(n) in C."""
        if not len(ts):
            return
        if len(self.ts) + len(ts) < BLOCK_MIN:
            # Straight from the arrays' buffers (``tobytes`` would copy them first).
            self.values.frombytes(memoryview(np.ascontiguousarray(values, np.int64)).cast("B"))
            self.ts.frombytes(memoryview(np.ascontiguousarray(ts, np.int64)).cast("B"))
            return
        # The arrays' points and these as one block (a copy: the caller's arrays may
        # be views of its own), then the arrays emptied, under the lock readers take.
        block = (np.concatenate((np.frombuffer(self.ts, np.int64), ts), dtype=np.int64),
                 np.concatenate((np.frombuffer(self.values, np.int64), values),
                                dtype=np.int64))
        blocks, n = self._blocks
        with _SWAP:
            self._blocks = (blocks + (block,), n + len(block[0]))
            del self.ts[:], self.values[:]

    def compact(self) -> None:
        """Join the blocks and the arrays and keep the last value recorded at each
        instant: O(n). ``ts``/``values`` are then int64 numpy arrays (a copy into
        ``array('q')`` cost as much as the join) and the series is frozen (the swap
        and the flag under one lock, so a reader on another thread sees the old pair
        or the new one, never one of each)."""
        blocks = self._blocks[0]
        if blocks:
            ts = np.concatenate([b[0] for b in blocks] + [np.frombuffer(self.ts, np.int64)])
            values = np.concatenate([b[1] for b in blocks] +
                                    [np.frombuffer(self.values, np.int64)])
        else:
            # Views: nothing appends to a frozen series.
            ts = np.frombuffer(self.ts, np.int64)
            values = np.frombuffer(self.values, np.int64)
        if len(ts) >= 2:
            last = np.ones(len(ts), bool)
            last[:-1] = ts[1:] != ts[:-1]
            if not last.all():
                ts, values = ts[last], values[last]
        with _SWAP:
            self.ts, self.values = ts, values
            self._blocks = ((), 0)
            self.frozen = True

    def _pair(self) -> tuple:
        """(ts, values) to read: the arrays once frozen, else copies (a view would stop
        the loading thread's appends)."""
        with _SWAP:
            if self.frozen:
                return self.ts, self.values
            blocks = self._blocks[0]
            ts = self.ts[:]
            values = self.values[:len(ts)]
        if not blocks:
            return ts, values
        return (np.concatenate([b[0] for b in blocks] + [np.frombuffer(ts, np.int64)]),
                np.concatenate([b[1] for b in blocks] + [np.frombuffer(values, np.int64)]))

    def __len__(self) -> int:
        with _SWAP:
            return self._blocks[1] + len(self.ts)

    def value_at(self, t: int) -> int:
        """O(log n)."""
        with _SWAP:
            if self.frozen:
                blocks = ((self.ts, self.values),)
            else:
                blocks = self._blocks[0]
                k = bisect_right(self.ts, t)
                if k:
                    return self.values[k - 1]
        # The last block holding a time <= t (every time fits int64, so t is clamped).
        t = min(max(t, -(1 << 63)), (1 << 63) - 1)
        for block_ts, block_values in reversed(blocks):
            j = int(np.searchsorted(block_ts, t, side="right"))
            if j:
                return int(block_values[j - 1])
        return 0

    def sample(self, t0: int, t1: int, n: int) -> list[int]:
        """``n`` buckets over ``[t0, t1)``: max per bucket, or increments for a rate.

        O(n log m + points in the window), in numpy.
        """
        if n <= 0 or t1 <= t0:
            return []
        ts_, values_ = self._pair()
        n_points = min(len(ts_), len(values_))
        ts = np.frombuffer(ts_, np.int64)[:n_points]
        values = np.frombuffer(values_, np.int64)[:n_points]
        edges = bucket_edges(t0, t1, n)
        if self.rate:
            k = np.searchsorted(ts, edges, side="left")     # points before each edge
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


def bucket_edges(t0: int, t1: int, n: int) -> np.ndarray:
    """The ``n + 1`` edges of ``n`` equal buckets over ``[t0, t1)`` (int64 times),
    ``t0 + k * (t1 - t0) // n``. In numpy when ``(t1 - t0) * n`` fits 62 bits, else
    in Python integers: a view of a trace's whole int64 range would overflow. O(n)."""
    width = t1 - t0
    if width * n < 1 << 62:
        return t0 + (np.arange(n + 1, dtype=np.int64) * width) // n
    return np.array([t0 + width * k // n for k in range(n + 1)], dtype=np.int64)


class SeriesSet:
    """The counters a replay keeps: global, per mm, and rates.

    ``page_table_bytes``: global page-table memory (the kernel's PageTables);
    ``mm_bytes(mm)``: one address space's VmPTE; ``empty_attached``: PTE tables
    attached with no present entry; ``rcu_pending``: callbacks queued, not run;
    ``ipis``: IPIs sent (a rate series); ``pte_attached``, ``pte_in_flight``: PTE tables
    attached, and detached but not yet freed (counts).
    """

    def __init__(self) -> None:
        self.page_table_bytes = Series()
        self.empty_attached = Series()
        self.rcu_pending = Series()
        self.ipis = Series(rate=True)
        self.pte_attached = Series()
        self.pte_in_flight = Series()
        self.per_mm: dict[int, Series] = {}

    def mm_bytes(self, mm: int) -> Series:
        s = self.per_mm.get(mm)
        if s is None:
            s = self.per_mm[mm] = Series()
        return s

    def compact(self) -> None:
        for series in (self.page_table_bytes, self.empty_attached, self.rcu_pending, self.ipis,
                       self.pte_attached, self.pte_in_flight, *self.per_mm.values()):
            series.compact()

    _GLOBAL = ("page_table_bytes", "empty_attached", "rcu_pending", "ipis", "pte_attached",
               "pte_in_flight")

    def names(self) -> list[str]:
        """Every series' name. Safe while a load adds mms from another thread (a copy
        of the keys is taken)."""
        return list(self._GLOBAL) + [f"vmpte_bytes:{mm:#x}" for mm in list(self.per_mm)]

    def get(self, name: str) -> Series | None:
        """The series called ``name``, or None. O(1); safe during a load."""
        if name.startswith("vmpte_bytes:"):
            try:
                return self.per_mm.get(int(name.split(":", 1)[1], 0))
            except ValueError:
                return None
        return getattr(self, name) if name in self._GLOBAL else None
