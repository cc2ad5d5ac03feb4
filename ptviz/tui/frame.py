"""One frame of the timeline, computed off the UI thread: for the current view, what each
CPU lane and counter lane shows per column, and what the status line says.

Everything here reads the engine's public queries (``buckets``, ``counter``,
``bucket_events``), costs O(columns × lanes) plus the engine's O(events in the window)
in numpy, and holds only small arrays, so the widgets draw from it without touching the
trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from replayer import TIMELINE_CLASSES, Replay
from replayer.series import bucket_edges
from replayer.units import format_bytes

from .glyphs import dominant, levels
from .text import printable
from .view import View

#: The counter lanes under the CPU lanes: series name (``None``: the selected mm's
#: page-table bytes), label, how a value is shown.
COUNTERS = (
    ("page_table_bytes", "page tables", format_bytes),
    (None, "mm VmPTE", format_bytes),
    ("empty_attached", "empty PTE", str),
    ("rcu_pending", "RCU pending", str),
    ("ipis", "IPIs/col", str),
)


@dataclass
class Lane:
    """One CPU: per column the class index shown (-1: nothing) and a density 0..8."""

    cpu: int
    shown: np.ndarray
    density: np.ndarray
    events: int
    #: Columns holding a highlighted event (a filter's match, a table's steps), or None.
    marked: np.ndarray | None = None
    #: What the lane's gutter says (``A CPU 0`` when comparing); ``CPU n`` when None.
    label: str | None = None


@dataclass
class Counter:
    label: str
    levels: np.ndarray          # 0..8 per column
    top: str                    # the largest value in the window, as text


@dataclass
class Frame:
    view: View
    lanes: list[Lane]
    counters: list[Counter]
    loaded: bool
    #: Sequence number, so caches keyed by it never show an older frame.
    serial: int = 0
    overview: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def compute_frame(replay: Replay, view: View, cpus: list[int], mm: int | None,
                  serial: int, highlight: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> Frame:
    """The lanes and counters of ``view`` over ``cpus``; ``mm``: the address space
    whose page-table bytes the second counter lane shows; ``highlight``: (times, CPUs)
    of events to mark on the lanes."""
    n = view.columns
    counts = replay.buckets(cpus, view.t0, view.t1, n)
    totals = {cpu: c.sum(axis=1) for cpu, c in counts.items()}
    peak = max((int(t.max()) for t in totals.values() if len(t)), default=0)
    lanes = [Lane(cpu, dominant(counts[cpu]), levels(totals[cpu], peak, log=True),
                  int(totals[cpu].sum())) for cpu in cpus]
    if highlight is not None:
        _mark(lanes, view, *highlight)
    counters = []
    for name, label, show in COUNTERS:
        if name is None:
            name = f"vmpte_bytes:{mm:#x}" if mm is not None else None
            comm = replay.final.mm_comm.get(mm) if mm is not None else None
            label = (f"VmPTE {printable(comm)}" if comm else f"VmPTE {mm:#x}") \
                if mm is not None else label
        values = np.array(replay.counter(name, view.t0, view.t1, n)
                          if name is not None and replay.series.get(name) is not None
                          else [0] * n, dtype=np.int64)
        top = int(values.max()) if len(values) else 0
        counters.append(Counter(label, levels(values, top), show(top)))
    return Frame(view, lanes, counters, replay.loaded, serial)


def _mark(lanes: list[Lane], view: View, ts: np.ndarray, cpus: np.ndarray) -> None:
    """Set each lane's ``marked`` columns: those holding one of the events at ``ts`` on
    its CPU. O(highlighted events in the window) in numpy."""
    n = view.columns
    inside = (ts >= view.t0) & (ts < view.t1)
    ts, cpus = ts[inside], cpus[inside]
    edges = bucket_edges(view.t0, view.t1, n)
    cols = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, n - 1)
    for lane in lanes:
        marked = np.zeros(n, bool)
        marked[cols[cpus == lane.cpu]] = True
        lane.marked = marked


def overview(replay: Replay, cpus: list[int], start: int, end: int, n: int) -> np.ndarray:
    """Event density over the whole trace in ``n`` columns, 0..8 (log scale)."""
    if n <= 0:
        return np.zeros(0, np.int64)
    counts = replay.buckets(cpus, start, end + 1, n)
    total = sum((c.sum(axis=1) for c in counts.values()), np.zeros(n, np.int64))
    return levels(total, int(total.max()) if len(total) else 0, log=True)


def bucket_kinds(replay: Replay, cpu: int, t0: int, t1: int) -> list[tuple[str, int]]:
    """The kinds of ``cpu``'s events in ``[t0, t1)`` with their counts, most first."""
    col = replay.timeline.column(cpu)
    i0, i1 = np.searchsorted(col.ts, [t0, t1], side="left")
    kinds = np.bincount(col.kind[i0:i1])
    names = replay.reader.kinds.by_id
    out = [(names[k].name if k in names else f"kind {k}", int(kinds[k]))
           for k in np.flatnonzero(kinds)]
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def class_name(index: int) -> str:
    return TIMELINE_CLASSES[index]
