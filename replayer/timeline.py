"""Per-CPU event columns for timelines: time, kind, timeline class and event index.

Built chunk by chunk during the replay and readable while it grows (a UI draws
the part loaded so far): each CPU's columns live in buffers that double when
full, and a new :class:`CpuColumns` of views is published only after the data
it shows is written, so a reader in another thread always sees a consistent
prefix. Memory: 15 bytes per event (int64 time, uint16 kind, uint8 class,
uint32 index), plus the doubling slack until :meth:`Timeline.finish`.

Bucketing a window is a searchsorted and a bincount per CPU: O(log n + events
in the window) in numpy, never a Python loop over events.
"""

from __future__ import annotations

import numpy as np

from .series import bucket_edges
from .vocab import FIRST_FOREIGN_ID, TIMELINE_CLASS_OF_KIND, TIMELINE_CLASSES

N_CLASSES = len(TIMELINE_CLASSES)
_OTHER = TIMELINE_CLASSES.index("other")
_LUT = np.full(FIRST_FOREIGN_ID + 1, _OTHER, dtype=np.uint8)
for _kind, _cls in TIMELINE_CLASS_OF_KIND.items():
    _LUT[_kind] = _cls


class CpuColumns:
    """One CPU's events in time order: ``ts`` (int64), ``kind`` (uint16), ``cls``
    (uint8, a :data:`TIMELINE_CLASSES` index) and ``idx`` (uint32 global index)."""

    __slots__ = ("ts", "kind", "cls", "idx")

    def __init__(self, ts: np.ndarray, kind: np.ndarray, cls: np.ndarray,
                 idx: np.ndarray) -> None:
        self.ts, self.kind, self.cls, self.idx = ts, kind, cls, idx

    def __len__(self) -> int:
        return len(self.ts)


_EMPTY = CpuColumns(np.zeros(0, np.int64), np.zeros(0, np.uint16), np.zeros(0, np.uint8),
                    np.zeros(0, np.uint32))


class _Growing:
    """One CPU's buffers while loading: capacity doubles, views are republished."""

    __slots__ = ("ts", "kind", "cls", "idx", "n")

    def __init__(self, capacity: int = 1024) -> None:
        self.ts = np.empty(capacity, np.int64)
        self.kind = np.empty(capacity, np.uint16)
        self.cls = np.empty(capacity, np.uint8)
        self.idx = np.empty(capacity, np.uint32)
        self.n = 0

    def extend(self, ts: np.ndarray, kind: np.ndarray, cls: np.ndarray, take: np.ndarray,
               first_index: int) -> CpuColumns:
        """Append the events at positions ``take`` of a chunk's columns (the chunk's
        first event has index ``first_index``), gathered straight into the buffers."""
        n, k = self.n, len(take)
        if n + k > len(self.ts):
            size = max(2 * len(self.ts), n + k)
            for name in ("ts", "kind", "cls", "idx"):
                old = getattr(self, name)
                new = np.empty(size, old.dtype)
                new[:n] = old[:n]
                setattr(self, name, new)
        np.take(ts, take, out=self.ts[n:n + k])
        np.take(kind, take, out=self.kind[n:n + k])
        np.take(cls, take, out=self.cls[n:n + k])
        np.add(take, first_index, out=self.idx[n:n + k], casting="unsafe")
        self.n = n + k
        return CpuColumns(self.ts[:n + k], self.kind[:n + k], self.cls[:n + k],
                          self.idx[:n + k])


#: With CPU numbers below this, a chunk is split by a comparison per CPU (each a pass
#: in C) rather than a sort.
_FEW_CPUS = 8


class Timeline:
    """Columns of every event, per CPU. :meth:`add` chunks (readable meanwhile), then
    :meth:`finish`. ``cpus`` maps a CPU to its published :class:`CpuColumns`."""

    def __init__(self, expected: dict[int, int] | None = None) -> None:
        """``expected``: events per CPU, when known (a trace's footer says): each CPU's
        buffers are made that size at once, so loading copies nothing."""
        self._growing: dict[int, _Growing] = {}
        self._expected = expected or {}
        self.cpus: dict[int, CpuColumns] = {}
        self.finished = False

    def add(self, stamps, kinds, cpus, first_index: int,
            marks: list[tuple[int, int]] | None = None) -> None:
        """Append one chunk's columns: times (``array('q')``), kinds and CPUs (uint16),
        the chunk's first global index, and ``(index, class)`` overrides for events
        whose class is not their kind's (a reclaim's detach, a leaked table's free).

        Splits by CPU with a comparison per CPU when their numbers are small, else a
        stable sort of the CPU column: O(n) in numpy.
        """
        ts = np.frombuffer(stamps, np.int64)
        kind = np.asarray(kinds, np.uint16)
        cpu = np.asarray(cpus, np.uint16)
        if not len(ts):
            return
        cls = np.take(_LUT, kind, mode="clip")      # a foreign kind: "other"
        if marks:
            at, mark = np.array(marks, np.int64).T
            cls[at - first_index] = mark
        top = int(cpu.max())
        if top < _FEW_CPUS:
            split = ((c, np.flatnonzero(cpu == c)) for c in range(top + 1))
        else:
            order = np.argsort(cpu, kind="stable")
            ends = np.cumsum(np.bincount(cpu)).tolist()
            split = ((c, order[ends[c - 1] if c else 0:ends[c]]) for c in range(top + 1))
        for c, take in split:
            if not len(take):
                continue
            grow = self._growing.get(c)
            if grow is None:
                try:
                    grow = _Growing(max(1024, self._expected.get(c, 0)))
                except (MemoryError, ValueError):     # a footer that lies: grown instead
                    grow = _Growing()
                self._growing[c] = grow
            self.cpus[c] = grow.extend(ts, kind, cls, take, first_index)

    def finish(self) -> None:
        """Trim each CPU's buffers; sort a CPU's events by time only if they are not."""
        for c, grow in sorted(self._growing.items()):
            col = self.cpus[c]
            if grow.n == len(grow.ts):      # filled exactly: the views are the arrays
                ts, kind, cls, idx = col.ts, col.kind, col.cls, col.idx
            else:
                ts, kind, cls, idx = (col.ts.copy(), col.kind.copy(), col.cls.copy(),
                                      col.idx.copy())
            if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
                order = np.argsort(ts, kind="stable")
                ts, kind, cls, idx = ts[order], kind[order], cls[order], idx[order]
            self.cpus[c] = CpuColumns(ts, kind, cls, idx)
        self._growing = {}
        self.finished = True

    def column(self, cpu: int) -> CpuColumns:
        return self.cpus.get(cpu, _EMPTY)

    def buckets(self, cpus, t0: int, t1: int, n: int) -> dict[int, np.ndarray]:
        """Event counts per bucket and class: ``{cpu: array[n, N_CLASSES]}`` over ``[t0, t1)``."""
        out = {}
        width = max(1, t1 - t0)
        edges = bucket_edges(t0, t0 + width, n) if width * n >= 1 << 62 and n > 0 else None
        for cpu in cpus:
            col = self.column(cpu)
            counts = np.zeros((n, N_CLASSES), dtype=np.int64)
            if n > 0 and len(col):
                i0, i1 = np.searchsorted(col.ts, [t0, t1], side="left")
                if i1 > i0:
                    # (ts - t0) * n overflows int64 for a span near 2^63: bisect then.
                    b = ((col.ts[i0:i1] - t0) * n // width).astype(np.int64) if edges is None \
                        else np.searchsorted(edges, col.ts[i0:i1], side="right") - 1
                    flat = np.bincount(b * N_CLASSES + col.cls[i0:i1], minlength=n * N_CLASSES)
                    counts = flat[: n * N_CLASSES].reshape(n, N_CLASSES)
            out[cpu] = counts
        return out

    def bucket_events(self, cpu: int, t0: int, t1: int) -> np.ndarray:
        """Global indexes of ``cpu``'s events in ``[t0, t1)``, in time order: O(log n + k)."""
        col = self.column(cpu)
        i0, i1 = np.searchsorted(col.ts, [t0, t1], side="left")
        return col.idx[i0:i1]

    def next_event(self, t: int, classes, cpus, forward: bool = True,
                   index: int | None = None) -> tuple[int, int, int] | None:
        """The first event after ``t`` (before it, backwards) whose class is in
        ``classes`` (indexes into :data:`TIMELINE_CLASSES`) on one of ``cpus``:
        ``(ts, index, cpu)`` or None. Ties in time go to the lower index. With
        ``index``, "after" is after the event ``(t, index)``: stepping from one hit to
        the next goes through events of the same time one by one.

        O(events scanned) in numpy per CPU: a mask over the part of the column
        beyond ``t``, stopping at the first hit.
        """
        wanted = np.zeros(256, bool)
        wanted[list(classes)] = True
        best = None
        for cpu in cpus:
            col = self.column(cpu)
            k = _first_hit(wanted, col, t, forward, index)
            if k is not None:
                hit = (int(col.ts[k]), int(col.idx[k]), cpu)
                if best is None or (hit < best if forward else hit > best):
                    best = hit
        return best

    def nbytes(self) -> int:
        return sum(c.ts.nbytes + c.kind.nbytes + c.cls.nbytes + c.idx.nbytes
                   for c in self.cpus.values())


def _first_hit(wanted: np.ndarray, col: CpuColumns, t: int, forward: bool,
               index: int | None = None) -> int | None:
    """Position of the nearest event of a wanted class after (before) ``t`` — or after
    (before) the event ``(t, index)``: scanned in blocks that grow 4× from 4096 events,
    so a near hit costs little and a far one O(distance)."""
    lo = int(np.searchsorted(col.ts, t, side="left"))
    hi = int(np.searchsorted(col.ts, t, side="right"))
    if index is not None:
        # Within one CPU's column, events of the same time are in index order.
        lo = hi = lo + int(np.searchsorted(col.idx[lo:hi], index,
                                           side="right" if forward else "left"))
    if forward:
        pos, end, step = hi, len(col), 4096
        while pos < end:
            hits = np.flatnonzero(wanted[col.cls[pos:pos + step]])
            if len(hits):
                return pos + int(hits[0])
            pos, step = pos + step, step * 4
        return None
    pos, step = lo, 4096
    while pos > 0:
        lo = max(0, pos - step)
        hits = np.flatnonzero(wanted[col.cls[lo:pos]])
        if len(hits):
            return lo + int(hits[-1])
        pos, step = lo, step * 4
    return None
