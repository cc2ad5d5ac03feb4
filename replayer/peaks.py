"""When each class of PTE tables was at its largest: a trace whose process exits at the
end reports 0 empty-attached tables there, while the story was 512 of them at 1.19 s.

Read from the counters the replay keeps (empty attached, attached, detached not freed);
live is attached minus empty, at every instant either changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .series import Series

if TYPE_CHECKING:  # pragma: no cover
    from .replay import Replay

#: Classes whose count goes up and down (the others only grow: their peak is the end).
#: ``in_flight`` counts every detached table not yet freed (the end of the trace sorts
#: them into in flight and lost; before it, they are all on their way).
PEAK_CLASSES = ("empty_attached", "live", "in_flight")


def _steps(series: Series, until: int) -> tuple[np.ndarray, np.ndarray]:
    ts, values = series._pair()
    times = np.frombuffer(ts, np.int64)
    counts = np.frombuffer(values, np.int64)[:len(times)]
    keep = times <= until
    return times[keep], counts[keep]


def _at(times: np.ndarray, counts: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The step function's value at each of ``t`` (0 before its first change)."""
    if not len(times):
        return np.zeros(len(t), np.int64)
    k = np.searchsorted(times, t, side="right")
    return np.where(k > 0, counts[np.maximum(k - 1, 0)], 0)


def _peak(times: np.ndarray, counts: np.ndarray, pte: int) -> dict[str, Any]:
    # The value an instant ends with: several changes at one time are no peak.
    if len(times):
        last = np.ones(len(times), bool)
        last[:-1] = times[1:] != times[:-1]
        times, counts = times[last], counts[last]
    if not len(counts) or counts.max() <= 0:
        return {"count": 0, "bytes": 0, "ts": None}
    k = int(np.argmax(counts))                 # the first time it got there
    return {"count": int(counts[k]), "bytes": int(counts[k]) * pte, "ts": int(times[k])}


def class_peaks(replay: "Replay", until: int) -> dict[str, dict]:
    """``{class: {count, bytes, ts}}`` for :data:`PEAK_CLASSES` up to ``until``: the
    largest count and the first time it was reached (``ts`` None when never above 0).
    O(n log n) in the counters' changes."""
    pte = replay.sizes.pte_bytes
    s = replay.series
    e_times, e_counts = _steps(s.empty_attached, until)
    a_times, a_counts = _steps(s.pte_attached, until)
    both = np.union1d(a_times, e_times)
    live = _at(a_times, a_counts, both) - _at(e_times, e_counts, both)
    return {"empty_attached": _peak(e_times, e_counts, pte),
            "live": _peak(both, live, pte),
            "in_flight": _peak(*_steps(s.pte_in_flight, until), pte)}
