"""How each timeline class looks: a glyph (lanes read without colour too), a colour that
reads on dark and on light terminals, a priority (the glyph a column shows when several
classes share it), and what it is called in the legend and the class selector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replayer import TIMELINE_CLASSES


@dataclass(frozen=True)
class Look:
    glyph: str
    colour: str
    label: str


# Mid-saturation colours: legible on a black and on a white background.
LOOKS: dict[str, Look] = {
    "lost": Look("!", "bold #ff3030", "events lost"),
    "leak": Look("L", "bold #d040d0", "detach of a leaked (empty, attached) PTE table"),
    "reclaim": Look("R", "bold #20a020", "detach by PT_RECLAIM"),
    "leak_free": Look("l", "#b050b0", "free of a leaked PTE table"),
    "reclaim_free": Look("r", "#30a030", "free of a reclaimed PTE table"),
    "free": Look("x", "#3080e0", "table freed"),
    "detach": Look("/", "#20a0a0", "table detached"),
    "alloc": Look("+", "#40b040", "table allocated"),
    "marker": Look("|", "bold #c09000", "marker"),
    "ipi_send": Look(">", "#e07020", "IPI sent"),
    "ipi_recv": Look("<", "#c06020", "IPI handled"),
    "rcu": Look("*", "#9060d0", "RCU"),
    "tlb": Look("t", "#4090b0", "TLB flush"),
    "walker": Look("w", "#808080", "lockless walker"),
    "zap": Look("~", "#b0a000", "zap"),
    "fault": Look("·", "#707070", "entries set (faults)"),
    "other": Look(".", "#606060", "other"),
}
assert set(LOOKS) == set(TIMELINE_CLASSES), set(LOOKS) ^ set(TIMELINE_CLASSES)

#: Classes from the most to the least telling: a column shows the first one present.
PRIORITY = tuple(LOOKS)
_RANK = np.array([PRIORITY.index(c) for c in TIMELINE_CLASSES])
#: Column order of the bucket counts, sorted by priority.
_BY_PRIORITY = np.argsort(_RANK)

#: Eighth blocks, for density and counters: index 0 is empty.
BLOCKS = " ▁▂▃▄▅▆▇█"


def dominant(counts: np.ndarray) -> np.ndarray:
    """Per bucket (rows of ``counts[n, classes]``), the class index shown: the most
    telling class present, or -1 for an empty bucket. O(n × classes) in numpy."""
    present = counts[:, _BY_PRIORITY] > 0
    first = present.argmax(axis=1)
    return np.where(present.any(axis=1), _BY_PRIORITY[first], -1)


def levels(values: np.ndarray, top: float, log: bool = False) -> np.ndarray:
    """Values scaled to 0..8 eighth blocks against ``top``; any value above zero gets
    at least one eighth, so a single event stays visible."""
    values = np.asarray(values, dtype=np.float64)
    if top <= 0:
        return np.zeros(len(values), np.int64)
    scaled = np.log1p(values) / np.log1p(top) if log else values / top
    out = np.ceil(np.clip(scaled, 0, 1) * 8).astype(np.int64)
    return np.where(values > 0, np.maximum(out, 1), 0)
