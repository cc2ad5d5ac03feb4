"""The tabs under the timeline: Events, Tables, Findings, Summary; and a table's
lifecycle screen.

The widgets only show what the app gives them (sources, a tree, a text); the app runs
the queries in workers and handles the messages (a row chosen, a filter typed).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TabbedContent, TabPane, Tree

from .rowlist import EmptySource, RowList
from .sources import StepSource

TABS = ("events", "tables", "findings", "summary")


class EventList(RowList):
    """The Events tab's list: also ``n``/``N`` for the next/previous search match."""

    BINDINGS = [
        Binding("n", "search_next(1)", "Next match", show=False),
        Binding("N", "search_next(-1)", "Prev match", show=False),
    ]

    class SearchNext(Message):
        def __init__(self, direction: int) -> None:
            super().__init__()
            self.direction = direction

    def action_search_next(self, direction: int) -> None:
        self.post_message(self.SearchNext(int(direction)))


class TableList(RowList):
    """The Tables tab's list: ``o``/``O`` sort by the next/previous column, ``r``
    reverses."""

    BINDINGS = [
        Binding("o", "sort(1)", "Sort by", show=True),
        Binding("O", "sort(-1)", "Sort by", show=False),
        Binding("r", "reverse", "Reverse", show=False),
    ]

    class Sort(Message):
        def __init__(self, step: int, reverse: bool) -> None:
            super().__init__()
            self.step, self.reverse = step, reverse

    def action_sort(self, step: int) -> None:
        self.post_message(self.Sort(int(step), False))

    def action_reverse(self) -> None:
        self.post_message(self.Sort(0, True))


class BottomPane(Vertical):
    """The tabs, each one list or text."""

    DEFAULT_CSS = """
    BottomPane { height: 45%; border-top: hkey $primary; }
    BottomPane TabbedContent { height: 1fr; }
    BottomPane TabPane { padding: 0; height: 1fr; }
    BottomPane Input { display: none; height: 3; }
    BottomPane Input.open { display: block; }
    #table-totals { height: 1; padding: 0 1; background: $boost; }
    #summary { padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs", initial="tab-events"):
            with TabPane("Events", id="tab-events"):
                yield Input(placeholder="filter: cpu=1,3 kind=table_* mm=0x… pfn=0x… pid=N "
                                        "words   (enter applies, empty clears, esc closes)",
                            id="filter")
                yield Input(placeholder="search in the task and fields (enter; then n / N)",
                            id="search")
                yield EventList(EmptySource(note="loading…"), id="events")
            with TabPane("Tables", id="tab-tables"):
                yield Static("PTE tables: loading…", id="table-totals")
                yield TableList(EmptySource(note="loading…"), id="tables")
            with TabPane("Findings", id="tab-findings"):
                yield Tree("findings", id="findings")
            with TabPane("Summary", id="tab-summary"):
                with VerticalScroll():
                    yield Static("loading…", id="summary", markup=False)


class LifecycleScreen(ModalScreen[dict | None]):
    """One table page's steps; ``enter`` on a step closes with it (the app jumps
    there), ``escape`` closes with nothing."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]
    DEFAULT_CSS = """
    LifecycleScreen { align: center middle; }
    LifecycleScreen > Vertical { width: 110; height: 20; border: round $primary;
                                 background: $surface; }
    LifecycleScreen #title { height: 2; padding: 0 1; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="title", markup=False)
            yield RowList(EmptySource(note="reading its events…"), id="steps")

    def on_mount(self) -> None:
        self.query_one("#steps", RowList).focus()

    def show(self, steps: list[dict]) -> None:
        self.query_one("#steps", RowList).set_source(StepSource(steps))

    def on_row_list_chosen(self, message: RowList.Chosen) -> None:
        message.stop()
        source = message.rows.source
        if isinstance(source, StepSource):
            self.dismiss(source.steps[message.row])
