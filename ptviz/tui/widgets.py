"""The timeline's widgets: overview, time axis, CPU lanes and counter lanes.

Each draws from the app's latest :class:`~ptviz.tui.frame.Frame` and never touches the
trace. Lines are built once per frame and kept in a cache keyed by every input of the
line (frame serial, lane, row, width, cursor, lane selection, markers), as Textual's
DataTable does, so scrolling and repainting cost a lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import Click, MouseScrollDown, MouseScrollUp
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from replayer import TIMELINE_CLASSES

from .glyphs import BLOCKS, LOOKS
from .view import fmt_offset, fmt_span, nice_step

if TYPE_CHECKING:  # pragma: no cover
    from .app import TraceApp

GUTTER = 13
_STYLE = [Style.parse(LOOKS[c].colour) for c in TIMELINE_CLASSES]
_GLYPH = [LOOKS[c].glyph for c in TIMELINE_CLASSES]
_DIM = Style.parse("#707070")
_LABEL = Style.parse("bold")
_SELECTED = Style.parse("bold reverse")
_CURSOR = Style(reverse=True)
_MARK = Style(underline=True)
_BAR = Style.parse("#3a8fd0")
_HIGHLIGHT = Style.parse("on #4a3a10")     # a filter's matches, a table's steps


def _strip(cells: list[tuple[str, Style]], width: int) -> Strip:
    """Cells of one character each, runs of one style merged into one segment."""
    segments: list[Segment] = []
    text, style = "", None
    for ch, st in cells:
        if st is style:
            text += ch
        else:
            if text:
                segments.append(Segment(text, style))
            text, style = ch, st
    if text:
        segments.append(Segment(text, style))
    return Strip(segments).crop_extend(0, width, None)


def _gutter(label: str, style: Style = _LABEL) -> list[tuple[str, Style]]:
    text = label[:GUTTER - 1].ljust(GUTTER)
    return [(ch, style) for ch in text]


class _FrameWidget(Widget):
    """Shared plumbing: the app, its frame, a line cache cleared per frame."""

    @property
    def trace_app(self) -> "TraceApp":
        return self.app  # type: ignore[return-value]

    def columns_at(self, x: int) -> int | None:
        frame = self.trace_app.frame
        if frame is None or x < GUTTER:
            return None
        col = x - GUTTER
        return col if col < frame.view.columns else None


class Overview(_FrameWidget):
    """The whole trace in one row, the view window drawn over it."""

    DEFAULT_CSS = "Overview { height: 1; }"

    def render_line(self, y: int) -> Strip:
        app = self.trace_app
        frame, width = app.frame, self.size.width
        if frame is None or frame.overview is None:
            return Strip.blank(width)
        view = frame.view
        n = len(frame.overview)
        span = max(1, view.end - view.start + 1)
        lo = (view.t0 - view.start) * n // span
        hi = max(lo + 1, -(-(view.t1 - view.start) * n // span))
        cells = _gutter("whole trace", _DIM)
        for i, level in enumerate(frame.overview.tolist()):
            style = _CURSOR if lo <= i < hi else _BAR
            cells.append((BLOCKS[level] if level else ("─" if lo <= i < hi else " "), style))
        return _strip(cells, width)

    def on_click(self, event: Click) -> None:
        frame = self.trace_app.frame
        col = self.columns_at(event.x)
        if frame is None or frame.overview is None or col is None:
            return
        view = frame.view
        n = len(frame.overview)
        self.trace_app.jump_to(view.start + col * (view.end - view.start + 1) // max(n, 1))


class Axis(_FrameWidget):
    """Tick labels relative to the trace's start, in the unit that suits the zoom, and
    the markers A and B."""

    DEFAULT_CSS = "Axis { height: 1; }"

    def render_line(self, y: int) -> Strip:
        app = self.trace_app
        frame, width = app.frame, self.size.width
        if frame is None:
            return Strip.blank(width)
        view = frame.view
        line = [" "] * view.columns
        step = nice_step(view.ns_per_column * 12)
        first = -(-(view.t0 - view.start) // step) * step + view.start
        t = first
        while t < view.t1:
            col = view.column_of(t)
            label = "┊" + fmt_offset(t - view.start, step)
            if col is not None and col + len(label) <= view.columns and \
                    all(ch == " " for ch in line[col:col + len(label) + 1]):
                line[col:col + len(label)] = list(label)
            t += step
        for name in ("a", "b"):
            at = getattr(view, name)
            col = view.column_of(at) if at is not None else None
            if col is not None:
                line[col] = name.upper()
        cells = _gutter(f"{fmt_span_short(view.ns_per_column)}/col", _DIM)
        cursor = view.cursor_column
        for i, ch in enumerate(line):
            style = _CURSOR if i == cursor else (_LABEL if ch in "AB" else _DIM)
            cells.append((ch, style))
        return _strip(cells, width)


def fmt_span_short(ns: int) -> str:
    return fmt_span(ns).replace(" ", "")


class Lanes(ScrollView, _FrameWidget, can_focus=True):
    """One lane of two rows per CPU: the most telling event class of each column as a
    glyph, then the column's event density in eighth blocks. Scrolls vertically when
    the CPUs do not fit."""

    DEFAULT_CSS = "Lanes { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }"
    # The lane keys live here, not on the app: in a tab's list the arrows move its rows.
    BINDINGS = [
        Binding("up,k", "app.lane(-1)", "Lane ↑", show=False),
        Binding("down,j", "app.lane(1)", "Lane ↓", show=False),
    ]

    class Clicked(Message):
        def __init__(self, lane: int, column: int) -> None:
            super().__init__()
            self.lane, self.column = lane, column

    class Zoom(Message):
        def __init__(self, factor: float, column: int | None) -> None:
            super().__init__()
            self.factor, self.column = factor, column

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        #: The serial of the last frame a line was drawn from (what a redraw waits for).
        self.painted = -1

    def show_lane(self, lane: int) -> None:
        """Scroll so that ``lane``'s two rows are visible; repaint the selection."""
        top, height = int(self.scroll_offset.y), self.size.height
        if lane * 2 < top:
            self.scroll_to(y=lane * 2, animate=False)
        elif lane * 2 + 2 > top + height:
            self.scroll_to(y=lane * 2 + 2 - height, animate=False)
        self.refresh()

    def refresh_frame(self) -> None:
        frame = self.trace_app.frame
        lanes = len(frame.lanes) if frame is not None else 0
        self.virtual_size = Size(self.size.width, lanes * 2)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        app = self.trace_app
        frame, width = app.frame, self.size.width
        row = y + int(self.scroll_offset.y)
        if frame is None or row >= len(frame.lanes) * 2:
            return Strip.blank(width)
        lane_no, half = divmod(row, 2)
        view = frame.view
        self.painted = frame.serial
        key = (frame.serial, lane_no, half, width, view.cursor, view.a, view.b,
               app.lane == lane_no)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._cache[key] = self._render(frame, lane_no, half, width)
        return strip

    def _render(self, frame, lane_no: int, half: int, width: int) -> Strip:
        app = self.trace_app
        lane = frame.lanes[lane_no]
        view = frame.view
        selected = app.lane == lane_no
        if half == 0:
            cells = _gutter(lane.label or f"CPU {lane.cpu}", _SELECTED if selected else _LABEL)
            for cls in lane.shown.tolist():
                cells.append((_GLYPH[cls], _STYLE[cls]) if cls >= 0 else (" ", _DIM))
        else:
            cells = _gutter(f"{lane.events:,} ev" if lane.events else "", _DIM)
            for cls, level in zip(lane.shown.tolist(), lane.density.tolist()):
                cells.append((BLOCKS[level], _STYLE[cls] if cls >= 0 else _DIM))
        if lane.marked is not None:
            for col in np.flatnonzero(lane.marked).tolist():
                if GUTTER + col < len(cells):
                    ch, st = cells[GUTTER + col]
                    cells[GUTTER + col] = (ch, st + _HIGHLIGHT)
        marks = {view.column_of(t) for t in (view.a, view.b) if t is not None}
        cursor = view.cursor_column
        for col in marks | {cursor}:
            if col is not None and GUTTER + col < len(cells):
                ch, st = cells[GUTTER + col]
                cells[GUTTER + col] = (ch, st + (_CURSOR if col == cursor else _MARK))
        return _strip(cells, width)

    def on_click(self, event: Click) -> None:
        col = self.columns_at(event.x)
        row = event.y + int(self.scroll_offset.y)
        frame = self.trace_app.frame
        if col is not None and frame is not None and row < len(frame.lanes) * 2:
            self.post_message(self.Clicked(row // 2, col))

    def _on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        event.stop()
        self.post_message(self.Zoom(1 / 1.5, self.columns_at(event.x)))

    def _on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        event.stop()
        self.post_message(self.Zoom(1.5, self.columns_at(event.x)))


class Counters(_FrameWidget):
    """One row per counter: its label and largest value in the window, then eighth
    blocks per column (the maximum the counter held during the column)."""

    DEFAULT_CSS = "Counters { height: 5; }"

    def render_line(self, y: int) -> Strip:
        frame, width = self.trace_app.frame, self.size.width
        if frame is None or y >= len(frame.counters):
            return Strip.blank(width)
        counter = frame.counters[y]
        label = f"{counter.label[:GUTTER - 1]}"
        cells = _gutter(label, _DIM)
        cursor = frame.view.cursor_column
        for i, level in enumerate(counter.levels.tolist()):
            cells.append((BLOCKS[level], _CURSOR if i == cursor else _BAR))
        return _strip(cells, width)

