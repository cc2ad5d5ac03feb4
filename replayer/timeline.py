"""Per-CPU event columns for timelines: time, kind and timeline class per event.

Built chunk by chunk during the replay, then split per CPU once. Memory:
11 bytes per event (int64 time, uint16 kind, uint8 class). Bucketing a window
is a searchsorted and a bincount per CPU: O(log n + events in the window) in
numpy, never a Python loop over events.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from .vocab import FIRST_FOREIGN_ID, TIMELINE_CLASS_OF_KIND, TIMELINE_CLASSES

_kind_of = itemgetter(0)
_cpu_of = itemgetter(2)
N_CLASSES = len(TIMELINE_CLASSES)
_OTHER = TIMELINE_CLASSES.index("other")
_LUT = np.full(FIRST_FOREIGN_ID + 1, _OTHER, dtype=np.uint8)
for _kind, _cls in TIMELINE_CLASS_OF_KIND.items():
    _LUT[_kind] = _cls


class CpuColumns:
    """One CPU's events in time order: ``ts`` (int64), ``kind`` (uint16), ``cls`` (uint8)."""

    __slots__ = ("ts", "kind", "cls")

    def __init__(self, ts: np.ndarray, kind: np.ndarray, cls: np.ndarray) -> None:
        self.ts, self.kind, self.cls = ts, kind, cls

    def __len__(self) -> int:
        return len(self.ts)


class Timeline:
    """Columns of every event, per CPU. Append chunks, then :meth:`finish`."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.cpus: dict[int, CpuColumns] = {}

    def add(self, rows, stamps) -> None:
        """O(n) in C per chunk."""
        n = len(rows)
        kinds = np.fromiter(map(_kind_of, rows), np.int64, n)
        cpus = np.fromiter(map(_cpu_of, rows), np.int64, n)
        self._parts.append((np.frombuffer(stamps, np.int64).copy(), kinds, cpus))

    def finish(self) -> None:
        if not self._parts:
            return
        ts = np.concatenate([p[0] for p in self._parts])
        kinds = np.concatenate([p[1] for p in self._parts])
        cpus = np.concatenate([p[2] for p in self._parts])
        self._parts = []
        order = np.lexsort((ts, cpus))  # per CPU, by time (stable for equal times)
        ts, kinds, cpus = ts[order], kinds[order], cpus[order]
        np.clip(kinds, 0, FIRST_FOREIGN_ID, out=kinds)
        cls = _LUT[kinds]
        bounds = np.flatnonzero(np.diff(cpus)) + 1
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(cpus)]):
            self.cpus[int(cpus[a])] = CpuColumns(ts[a:b].copy(), kinds[a:b].astype(np.uint16),
                                                 cls[a:b].copy())

    def buckets(self, cpus, t0: int, t1: int, n: int) -> dict[int, np.ndarray]:
        """Event counts per bucket and class: ``{cpu: array[n, N_CLASSES]}`` over ``[t0, t1)``."""
        out = {}
        width = max(1, t1 - t0)
        for cpu in cpus:
            col = self.cpus.get(cpu)
            counts = np.zeros((n, N_CLASSES), dtype=np.int64)
            if col is not None and n > 0:
                i0, i1 = np.searchsorted(col.ts, [t0, t1], side="left")
                if i1 > i0:
                    b = ((col.ts[i0:i1] - t0) * n // width).astype(np.int64)
                    flat = np.bincount(b * N_CLASSES + col.cls[i0:i1], minlength=n * N_CLASSES)
                    counts = flat[: n * N_CLASSES].reshape(n, N_CLASSES)
            out[cpu] = counts
        return out

    def nbytes(self) -> int:
        return sum(c.ts.nbytes + c.kind.nbytes + c.cls.nbytes for c in self.cpus.values())
