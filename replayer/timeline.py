"""Per-CPU event columns for timelines: time, kind and timeline class per event.

Built chunk by chunk during the replay, then split per CPU once. Memory:
11 bytes per event (int64 time, uint16 kind, uint8 class). Bucketing a window
is a searchsorted and a bincount per CPU: O(log n + events in the window) in
numpy, never a Python loop over events.
"""

from __future__ import annotations

import numpy as np

from .vocab import FIRST_FOREIGN_ID, TIMELINE_CLASS_OF_KIND, TIMELINE_CLASSES

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
        self._parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.cpus: dict[int, CpuColumns] = {}

    def add(self, stamps, kinds, cpus) -> None:
        """Append one chunk's columns: times (``array('q')``), kinds and CPUs (uint16).

        Splits by CPU with a stable sort of the CPU column: O(n) in numpy.
        """
        ts = np.frombuffer(stamps, np.int64)
        kind = np.asarray(kinds, np.uint16)
        cpu = np.asarray(cpus, np.uint16)
        order = np.argsort(cpu, kind="stable")
        counts = np.bincount(cpu)
        start = 0
        parts = self._parts
        for c in np.flatnonzero(counts).tolist():
            take = order[start:start + counts[c]]
            start += counts[c]
            parts.setdefault(c, []).append((ts[take], kind[take]))

    def finish(self) -> None:
        """Join each CPU's parts; sort a CPU's events by time only if they are not."""
        for c, parts in sorted(self._parts.items()):
            ts = np.concatenate([p[0] for p in parts])
            kind = np.concatenate([p[1] for p in parts])
            if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
                order = np.argsort(ts, kind="stable")
                ts, kind = ts[order], kind[order]
            self.cpus[c] = CpuColumns(ts, kind, _LUT[np.minimum(kind, FIRST_FOREIGN_ID)])
        self._parts = {}

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
