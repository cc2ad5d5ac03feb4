"""A virtual list: millions of rows, only the visible ones ever made.

:class:`RowList` is a Line-API widget (as Textual's DataTable draws, as toolong lists a
log): it asks its :class:`RowSource` for the text of the rows on screen, and keeps a
selection. It never holds the rows; a source fetches them in blocks and caches a few.
"""

from __future__ import annotations

from typing import Protocol

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

_HEADER = Style.parse("bold reverse")
_SELECTED = Style.parse("reverse")
_SELECTED_DIM = Style.parse("on #303848")
_NORMAL = Style()


class RowSource(Protocol):
    def __len__(self) -> int: ...

    def header(self) -> str: ...

    def text(self, row: int) -> str: ...

    def style(self, row: int) -> Style | None: ...


class EmptySource:
    def __init__(self, header: str = "", note: str = "") -> None:
        self._header, self.note = header, note

    def __len__(self) -> int:
        return 0

    def header(self) -> str:
        return self._header

    def text(self, row: int) -> str:
        return ""

    def style(self, row: int) -> Style | None:
        return None


class RowList(ScrollView, can_focus=True):
    """Rows of a :class:`RowSource` under a header line; ``selected`` is a row index.
    ``enter`` (or a click on the selected row) posts :class:`Chosen`. O(rows on screen)
    per repaint."""

    DEFAULT_CSS = "RowList { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }"
    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "ends(0)", "First", show=False),
        Binding("end,G", "ends(1)", "Last", show=False),
        Binding("enter", "choose", "Go to", show=True),
    ]

    class _RowMessage(Message):
        def __init__(self, rows: "RowList", row: int) -> None:
            super().__init__()
            self.rows, self.row = rows, row

        @property
        def control(self) -> "RowList":
            return self.rows

    class Chosen(_RowMessage):
        """A row was chosen (enter, or a click on the selected row)."""

    class Moved(_RowMessage):
        """The selection moved (by a key or a click)."""

    def __init__(self, source: RowSource | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source: RowSource = source or EmptySource()
        self.selected = 0

    # -- data ----------------------------------------------------------------------
    def set_source(self, source: RowSource, selected: int = 0) -> None:
        self.source = source
        self.selected = max(0, min(selected, len(source) - 1))
        self._resize()
        self.scroll_to_row(self.selected)
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.source) + 1)

    def on_resize(self) -> None:
        self._resize()

    # -- selection -------------------------------------------------------------------
    def select(self, row: int, place: float | None = None, notify: bool = False) -> None:
        """Select ``row`` (clamped) and scroll it into view; with ``place``, put it at
        that fraction of the height (0.33: a third down)."""
        n = len(self.source)
        self.selected = max(0, min(row, n - 1)) if n else 0
        self.scroll_to_row(self.selected, place)
        self.refresh()
        if notify:
            self.post_message(self.Moved(self, self.selected))

    def scroll_to_row(self, row: int, place: float | None = None) -> None:
        height = max(1, self.size.height - 1)          # the header takes a line
        top = int(self.scroll_offset.y)
        if place is not None:
            top = row - int(height * place)
        elif row < top:
            top = row
        elif row >= top + height:
            top = row - height + 1
        self.scroll_to(y=max(0, top), animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        self.select(self.selected + int(delta), notify=True)

    def action_page(self, direction: int) -> None:
        self.select(self.selected + int(direction) * max(1, self.size.height - 2), notify=True)

    def action_ends(self, end: int) -> None:
        self.select(len(self.source) - 1 if int(end) else 0, notify=True)

    def action_choose(self) -> None:
        if len(self.source):
            self.post_message(self.Chosen(self, self.selected))

    def on_click(self, event: Click) -> None:
        row = event.y - 1 + int(self.scroll_offset.y)
        if event.y >= 1 and 0 <= row < len(self.source):
            if row == self.selected:
                self.action_choose()
            else:
                self.select(row, notify=True)

    # -- drawing -----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            text = self.source.header()
            if not len(self.source):
                text += f"   {getattr(self.source, 'note', '')}"
            return Strip([Segment(text.ljust(width)[:width], _HEADER)])
        row = y - 1 + int(self.scroll_offset.y)
        if row >= len(self.source):
            return Strip.blank(width)
        text = self.source.text(row)
        style = self.source.style(row) or _NORMAL
        if row == self.selected:
            style = style + (_SELECTED if self.has_focus else _SELECTED_DIM)
        return Strip([Segment(text.ljust(width)[:width], style)])

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
