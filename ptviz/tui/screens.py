"""Screens over the timeline: help (the keys), go to a time, and the error screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from replayer import TIMELINE_CLASSES

from .glyphs import LOOKS
from .text import markup_safe

#: (keys, what they do), in the order the help screen lists them.
KEYS = (
    ("+ =  /  -", "zoom in / out about the cursor (mouse wheel too)"),
    ("0", "fit the whole trace"),
    ("← →  h l", "move the cursor one column"),
    ("shift+← →", "pan one screen"),
    ("home / end", "cursor to the trace's start / end"),
    ("↑ ↓  k j", "select the CPU lane above / below"),
    ("e", "hide / show CPUs with no events (many-CPU machines)"),
    ("s", "the next address space in the VmPTE counter lane"),
    ("[ / ]", "select the previous / next event class"),
    ("n / N", "next / previous event of that class on the lanes"),
    ("m / M", "next / previous marker"),
    ("f / F", "next / previous finding (its event, its CPU lane)"),
    ("a / b", "set marker A / B at the cursor (the header shows Δt)"),
    ("g", "go to a time: 1.5 (s), 12.3ms, +1.5ms from the start"),
    ("click", "place the cursor (overview: jump there)"),
    ("t / 1 2 3 4", "show or hide the tabs / Events, Tables, Findings, Summary"),
    ("ctrl+f", "filter events: cpu=1,3 kind=table_* mm=0x… pfn=0x… pid=N words"),
    ("/  n N", "search the events' task and fields; next / previous match"),
    ("enter", "event: go there; table: its lifecycle; step, finding: go there"),
    ("o O / r", "tables: sort by the next / previous column / reverse"),
    ("escape", "back to the lanes"),
    ("x", "ptviz view A B: A's and B's lanes interleaved per CPU / stacked"),
    ("ctrl+p", "command palette: every action"),
    ("?", "this help"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 84; height: auto; max-height: 95%;
                                  border: round $primary; background: $surface;
                                  padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"[b]{k:<13}[/b] {what}" for k, what in KEYS)
        looks = [f"[{LOOKS[c].colour}]{LOOKS[c].glyph}[/] {SHORT[c]:<18}" for c in LOOKS]
        half = -(-len(looks) // 2)
        legend = "\n".join(a + (b if b else "") for a, b in
                           zip(looks[:half], looks[half:] + [""]))
        with VerticalScroll():
            yield Static("[b]ptviz view: keys[/b]\n\n" + keys)
            yield Static("\n[b]lanes[/b]: one per CPU. Each column shows the most telling "
                         "event class in it (the first of this list that is there), and "
                         "under it the column's event density.\n" + legend)
            yield Static("\n[dim]escape or ? closes[/dim]")


class GotoScreen(ModalScreen[str | None]):
    """Asks for a time; dismisses with the text typed (None when cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    GotoScreen { align: center middle; }
    GotoScreen > Vertical { width: 64; height: auto; border: round $primary;
                            background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Go to a time: seconds (12.5), with a unit (12.5ms, 250us), or "
                         "+1.5ms from the trace's start")
            yield Input(placeholder="+1.5ms", id="when")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorScreen(Screen[None]):
    """A trace that cannot be read: the one line the CLI would print, and a way out."""

    BINDINGS = [Binding("q,escape,enter", "app.quit", "Quit")]
    DEFAULT_CSS = """
    ErrorScreen { align: center middle; }
    ErrorScreen > Static { width: 90%; height: auto; border: round $error; padding: 1 2; }
    """

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static(f"[b]ptviz cannot open this trace[/b]\n\n{markup_safe(self.message)}\n\n"
                     f"[dim]q quits (exit status 2)[/dim]", id="error")
        yield Footer()


#: The legend's words for each class (LOOKS has the long form, for the palette).
SHORT = {
    "lost": "events lost", "leak": "leaked table detach", "reclaim": "reclaim detach",
    "leak_free": "leaked table free", "reclaim_free": "reclaimed free", "free": "table free",
    "detach": "table detach", "alloc": "table alloc", "marker": "marker",
    "ipi_send": "IPI sent", "ipi_recv": "IPI handled", "rcu": "RCU", "tlb": "TLB flush",
    "walker": "lockless walker", "zap": "zap", "fault": "entries set", "other": "other",
}
assert set(SHORT) == set(TIMELINE_CLASSES)
