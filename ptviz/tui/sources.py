"""What the tabs' lists show: events (all, or a filter's matches), PTE tables, a table's
lifecycle. Each is a :class:`~.rowlist.RowSource`: a length and the text of one row,
made when the row is drawn, from the replay's queries (never a scan on the UI thread).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from rich.style import Style
from textual.cache import LRUCache

from replayer import CLASSES, Replay, TIMELINE_CLASSES
from replayer.state import DETACH_NAMES
from replayer.units import format_ts
from replayer.vocab import KIND_BY_NAME, TIMELINE_CLASS_OF_KIND

from ..words import fields_text, printable, task
from .glyphs import LOOKS

BLOCK = 256
_KIND_STYLE = {name: Style.parse(LOOKS[TIMELINE_CLASSES[cls]].colour)
               for name, spec in KIND_BY_NAME.items()
               if (cls := TIMELINE_CLASS_OF_KIND.get(spec.id)) is not None}


class EventSource:
    """The trace's events in order, or only ``indexes`` (a filter's matches). Rows are
    decoded a block of 256 at a time, the last 32 blocks kept. Thread-safe: workers
    read ahead (:meth:`prefetch`) and search while the UI thread draws."""

    def __init__(self, replay: Replay, indexes: np.ndarray | None = None,
                 note: str = "") -> None:
        self.replay, self.indexes, self.note = replay, indexes, note
        self._blocks: LRUCache[int, list] = LRUCache(32)
        # An LRUCache reorders itself on every get: one thread at a time. Decoding
        # happens outside the lock (two threads may decode a block; one copy stays).
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.replay.loaded_events if self.indexes is None else len(self.indexes)

    def header(self) -> str:
        what = (f"{len(self):,} events" if self.indexes is None else
                f"{len(self):,} matching events")
        return f"{'time (s)':<20}{'cpu':>4}  {'task':<22}{'kind':<18}fields   · {what}"

    def index(self, row: int) -> int:
        return row if self.indexes is None else int(self.indexes[row])

    def row_at_index(self, index: int) -> int:
        """The row showing event ``index``, or the first after it."""
        if self.indexes is None:
            return index
        return int(np.searchsorted(self.indexes, index, side="left"))

    def event(self, row: int):
        block = row // BLOCK
        return self._block(block)[row - block * BLOCK]

    def _block(self, block: int) -> list:
        with self._lock:
            events = self._blocks.get(block)
        if events is None:
            lo = block * BLOCK
            hi = min(len(self), lo + BLOCK)
            wanted = list(range(lo, hi)) if self.indexes is None else \
                self.indexes[lo:hi].tolist()
            events = [e for _, e in self.replay.rows_at(wanted)]
            with self._lock:
                self._blocks[block] = events
        return events

    def prefetch(self, row: int, around: int) -> None:
        """Decode the rows within ``around`` of ``row`` (a worker does, before the list
        shows them: a chunk's decoding then never holds up the UI thread)."""
        if len(self):
            first, last = max(0, row - around), min(len(self) - 1, row + around)
            for block in range(first // BLOCK, last // BLOCK + 1):
                self._block(block)

    def text(self, row: int) -> str:
        e = self.event(row)
        return (f"{format_ts(e.ts):<20}{e.cpu:>4}  {task(e):<22}{e.kind:<18}"
                f"{fields_text(e)}")

    def style(self, row: int) -> Style | None:
        return _KIND_STYLE.get(self.event(row).kind)


#: The Tables tab's columns: (title, width, sort key from the arrays).
TABLE_COLUMNS = ("class", "pfn", "mm", "comm", "span", "allocated", "detached", "cause",
                 "freed")
_CLASS_STYLE = {"empty_attached": Style.parse("bold #e06c75"), "reclaimed": Style.parse("#98c379"),
                "lost": Style.parse("bold #e5c07b"), "in_flight": Style.parse("#61afef")}


class TableSource:
    """Every PTE table page at the end of the trace, by class, sortable by any column.
    Sorting is one numpy argsort: O(n log n), no row built."""

    def __init__(self, replay: Replay, note: str = "") -> None:
        self.replay, self.note = replay, note
        self.t = replay.tables()
        comm = replay.final.mm_comm
        self._comms = {int(mm): printable(comm.get(int(mm)) or "?") for mm in
                       np.unique(self.t.mm).tolist()}
        self.sort_column, self.reverse = 0, False
        self.order = np.arange(len(self.t))
        self.sort(0)

    def __len__(self) -> int:
        return len(self.t)

    def totals(self) -> dict[str, int]:
        return self.t.counts()

    def sort(self, column: int, reverse: bool = False) -> None:
        t = self.t
        keys: dict[str, Any] = {
            "class": t.cls, "pfn": t.pfn, "mm": t.mm,
            "comm": np.array([self._comms[int(m)] for m in t.mm.tolist()], dtype=object)
            if len(t) else t.mm,
            "span": t.addr, "allocated": t.alloc_ts, "detached": t.detach_ts,
            "cause": t.cause, "freed": t.free_ts}
        key = keys[TABLE_COLUMNS[column]]
        # Ties in allocation order, whichever column.
        order = np.lexsort((t.alloc_ts, key)) if key.dtype != object else \
            np.array(sorted(range(len(t)), key=lambda i: (key[i], t.alloc_ts[i])), np.int64)
        self.order = order[::-1] if reverse else order
        self.sort_column, self.reverse = column, reverse

    def header(self) -> str:
        marks = [f"{name}{('▼' if self.reverse else '▲') if i == self.sort_column else ''}"
                 for i, name in enumerate(TABLE_COLUMNS)]
        widths = (16, 10, 20, 16, 16, 14, 14, 9, 14)
        return "".join(m.ljust(w) for m, w in zip(marks, widths)) + f"· {len(self):,} tables"

    def tid(self, row: int) -> int:
        return int(self.t.tid[self.order[row]])

    def text(self, row: int) -> str:
        t, i = self.t, int(self.order[row])

        def when(ts: int) -> str:
            return format_ts(int(ts)) if ts >= 0 else "-"
        cause = DETACH_NAMES.get(int(t.cause[i]), "-") if t.detach_ts[i] >= 0 else "-"
        # A table freed by munmap or exit after sitting empty: the leak PT_RECLAIM fixes.
        cls = "leaked, freed" if t.leaked_since[i] >= 0 and t.free_ts[i] >= 0 else \
            "leaked (empty)" if CLASSES[t.cls[i]] == "empty_attached" else CLASSES[t.cls[i]]
        return (f"{cls:<16}{int(t.pfn[i]):<#10x}{int(t.mm[i]):<#20x}"
                f"{self._comms[int(t.mm[i])][:15]:<16}{int(t.addr[i]) % (1 << 64):<#16x}"
                f"{when(t.alloc_ts[i]):<14}{when(t.detach_ts[i]):<14}{cause:<9}"
                f"{when(t.free_ts[i]):<14}")

    def style(self, row: int) -> Style | None:
        i = int(self.order[row])
        if self.t.leaked_since[i] >= 0:
            return _CLASS_STYLE["empty_attached"]
        return _CLASS_STYLE.get(CLASSES[self.t.cls[i]])


class StepSource:
    """A table's lifecycle steps (:func:`replayer.lifecycle.lifecycle`)."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = steps
        self.note = ""

    def __len__(self) -> int:
        return len(self.steps)

    def header(self) -> str:
        return f"{'step':<14}{'time (s)':<20}{'cpu':>4}  {'task':<22}{'seen':<10}detail"

    def text(self, row: int) -> str:
        s = self.steps[row]
        who = "-" if s["pid"] is None else f"{printable(s['comm'] or '<...>')}-{s['pid']}"
        return (f"{s['step']:<14}{format_ts(s['ts']):<20}{s['cpu']:>4}  {who:<22}"
                f"{'inferred' if s['inferred'] else 'seen':<10}{printable(s['detail'] or '')}")

    def style(self, row: int) -> Style | None:
        return Style(dim=True) if self.steps[row]["inferred"] else None
