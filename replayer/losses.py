"""Where a trace may be missing events, so that checks do not accuse on absent evidence.

A ``lost`` event on CPU c at time t says the ring buffer dropped events of c
between the previous event recorded on c and t (importers place it just
before the first event after the drop; an overrun of the oldest events comes
before c's first event). A trace cut short misses everything after its last
complete chunk, on every CPU. A finding whose proof spans such a window may be
false — the walker's exit, the IPI's handler, the table's detach may be in
the hole — so the replay counts it as suppressed instead of reporting it.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable

import numpy as np

from .state import Finding
from .timeline import Timeline

NEVER, FOREVER = -(1 << 63), (1 << 63) - 1


class LostWindows:
    """Per-CPU time windows ``(lo, hi]`` in which events may be missing.

    Build with :meth:`from_losses`; :meth:`hides` answers in O(log windows).
    """

    def __init__(self, windows: dict[int, list[tuple[int, int]]],
                 everywhere: list[tuple[int, int]]) -> None:
        self._everywhere = _Windows(everywhere)
        self._by_cpu = {cpu: _Windows(w + everywhere) for cpu, w in windows.items()}
        self._any = _Windows([w for ws in windows.values() for w in ws] + everywhere)

    @classmethod
    def from_losses(cls, losses: Iterable[tuple[int, int]], timeline: Timeline,
                    truncated_after: int | None) -> "LostWindows":
        """``losses``: ``(cpu, ts)`` of each lost event; ``truncated_after``: the last
        time the trace holds when it was cut short, else None."""
        windows: dict[int, list[tuple[int, int]]] = {}
        for cpu, ts in losses:
            col = timeline.cpus.get(cpu)
            k = int(np.searchsorted(col.ts, ts, side="left")) if col is not None else 0
            windows.setdefault(cpu, []).append((int(col.ts[k - 1]) if k else NEVER, ts))
        tail = [(truncated_after, FOREVER)] if truncated_after is not None else []
        return cls(windows, tail)

    def __bool__(self) -> bool:
        return bool(self._any.his)

    def hides(self, cpu: int | None, t0: int, t1: int) -> bool:
        """Whether events of ``cpu`` (None: of any CPU) may be missing in ``[t0, t1]``."""
        windows = self._any if cpu is None else self._by_cpu.get(cpu, self._everywhere)
        return windows.overlaps(t0, t1)

    def suppresses(self, finding: Finding) -> bool:
        """Whether a window may hide an event that would clear ``finding``.

        The evidence runs from ``finding.since`` to ``finding.ts`` (an unanswered
        IPI's answer could come any time after it was sent); only the finding's
        own CPU matters when ``finding.on_cpu`` (a walker's exit, an IPI handler).
        """
        if finding.kind == "events_lost" or not self:
            return False
        since = finding.since if finding.since is not None else finding.ts
        until = FOREVER if finding.kind == "ipi_unanswered" else finding.ts
        return self.hides(finding.cpu if finding.on_cpu else None, since, until)


class _Windows:
    """Disjoint windows sorted by time: ``los`` and ``his`` as parallel lists."""

    __slots__ = ("los", "his")

    def __init__(self, windows: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for lo, hi in sorted(windows):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.los = [w[0] for w in merged]
        self.his = [w[1] for w in merged]

    def overlaps(self, t0: int, t1: int) -> bool:
        """Whether some window ``(lo, hi]`` meets ``[t0, t1]``: O(log n)."""
        k = bisect_left(self.his, t0)       # the first window not over before t0
        return k < len(self.his) and self.los[k] < t1
