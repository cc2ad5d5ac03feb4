"""``ptviz view``: the terminal UI's main screen.

Layout: a header (what the trace is, the view window, the cursor, markers A/B), an
overview of the whole trace, the time axis, one lane per CPU, the counter lanes, the
PTE pages panel at the cursor on the right, a status line and the key footer.

Threads: the load, each frame and the panel run in thread workers and post their
results; the event loop only draws from them (style.md: no scans on the UI thread).
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import suppress
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from replayer import BadInput, Cancelled, Replay, TIMELINE_CLASSES

from . import frame as frames
from .actions import KeyActions
from .compare import CompareMode
from .commands import TraceCommands
from .header import HeaderLines
from .loading import open_replay
from .panel import panel_text
from .screens import ErrorScreen
from .tabs import BottomPane
from .tabs_logic import TabActions
from .text import printable
from .view import View
from .widgets import GUTTER, Axis, Counters, Lanes, Overview

MIN_WIDTH, MIN_HEIGHT = 60, 16
PANEL_WIDTH = 42
#: Narrower terminals hide the panel: the timeline keeps at least 40 columns.
PANEL_FROM_WIDTH = GUTTER + 1 + PANEL_WIDTH + 2 + 40


class TraceApp(HeaderLines, KeyActions, TabActions, CompareMode, App[None]):
    """Browse one trace. ``path`` is anything ``ptviz replay`` reads."""

    TITLE = "ptviz"
    COMMANDS = App.COMMANDS | {TraceCommands}
    CSS = f"""
    Screen {{ layout: vertical; }}
    #header {{ height: 2; padding: 0 1; background: $boost; text-wrap: nowrap;
               text-overflow: ellipsis; }}
    #body {{ height: 1fr; }}
    #timeline {{ width: 1fr; }}
    #panel {{ width: {PANEL_WIDTH}; padding: 0 1; border-left: vkey $primary; }}
    #status {{ height: 1; padding: 0 1; background: $boost; text-wrap: nowrap;
               text-overflow: ellipsis; }}
    #small {{ display: none; height: 1fr; content-align: center middle; }}
    .too-small #body, .too-small #header, .too-small #status {{ display: none; }}
    .narrow #panel {{ display: none; }}
    .no-pane #pane, .too-small #pane {{ display: none; }}
    .too-small #small {{ display: block; }}
    """
    BINDINGS = [
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", key_display="+"),
        Binding("minus", "zoom(2)", "Zoom out", key_display="-"),
        Binding("0", "fit", "Fit"),
        Binding("left,h", "step(-1)", "←", show=False),
        Binding("right,l", "step(1)", "→", show=False),
        Binding("shift+left", "pan(-1)", "Pan ←", show=False),
        Binding("shift+right", "pan(1)", "Pan →", show=False),
        Binding("home", "home", "Start", show=False),
        Binding("end", "end", "End", show=False),
        Binding("left_square_bracket", "cycle_class(-1)", "Class", show=False),
        Binding("right_square_bracket", "cycle_class(1)", "Class", key_display="[ ]"),
        Binding("n", "next_event(1)", "Next"),
        Binding("N", "next_event(-1)", "Prev", show=False),
        Binding("m", "next_marker(1)", "Marker"),
        Binding("M", "next_marker(-1)", "Prev marker", show=False),
        Binding("f", "next_finding(1)", "Finding"),
        Binding("F", "next_finding(-1)", "Prev finding", show=False),
        Binding("a", "mark('a')", "A", show=False),
        Binding("b", "mark('b')", "B", show=False),
        Binding("g", "goto", "Go to"),
        Binding("s", "cycle_mm", "mm", show=False),
        Binding("e", "toggle_idle", "Idle CPUs", show=False),
        Binding("t", "toggle_pane", "Tabs"),
        Binding("x", "toggle_stack", "A/B lanes", show=False),
        Binding("1", "tab('events')", "Events", show=False),
        Binding("2", "tab('tables')", "Tables", show=False),
        Binding("3", "tab('findings')", "Findings", show=False),
        Binding("4", "tab('summary')", "Summary", show=False),
        Binding("ctrl+f", "filter", "Filter"),
        Binding("slash", "search", "Search", show=False),
        Binding("escape", "leave_pane", "Lanes", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    class Opened(Message):
        def __init__(self, replay: Replay, warnings: list[str], side: str = "a") -> None:
            super().__init__()
            self.replay, self.warnings, self.side = replay, warnings, side

    class Progress(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TraceApp.Progress)

    class Loaded(Message):
        pass

    class Failed(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class FrameReady(Message):
        def __init__(self, frame: frames.Frame) -> None:
            super().__init__()
            self.frame = frame

    class PanelReady(Message):
        def __init__(self, text: str, serial: int) -> None:
            super().__init__()
            self.text, self.serial = text, serial

    def __init__(self, path: str, path_b: str | None = None, align: str | None = None) -> None:
        super().__init__()
        self._init_tabs()
        self._init_compare(path_b, align)
        self.path = path
        self.replay: Replay | None = None
        self.view: View | None = None
        self.frame: frames.Frame | None = None
        self.lane = 0
        self._stepped: tuple[int, int] | None = None    # (ts, index) n/N last landed on
        self.cpus: list[int] = []
        self.selected_class = TIMELINE_CLASSES.index("alloc")
        self.mm: int | None = None
        self.status_extra = ""
        self.hidden_cpus = 0
        self._all_cpus: list[int] = []
        self.progress_text = "opening …"
        #: The one-line message when the trace cannot be read (shown, then printed).
        self.error: str | None = None
        self._serial = 0
        self._panel_serial = 0
        self._overview: tuple | None = None      # (key, columns) of the last overview
        self._workdir = tempfile.TemporaryDirectory(prefix="ptviz-view-")
        #: Wall-clock time the first frame was drawn (bench: first-frame latency).
        self.first_frame_at: float | None = None
        self.started_at = time.perf_counter()

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="header")
        with Horizontal(id="body"):
            with Vertical(id="timeline"):
                yield Overview(id="overview")
                yield Axis(id="axis")
                yield Lanes(id="lanes")
                yield Counters(id="counters")
            yield Static("", id="panel")
        yield BottomPane(id="pane")
        yield Static("", id="status")
        yield Static("", id="small")
        yield Footer()

    def on_mount(self) -> None:
        self._check_size()
        self._main(Lanes).focus()
        if self.comparing:           # each counter twice: A's, then B's
            self._main(Counters).styles.height = 2 * len(frames.COUNTERS)
        self._load()
        self.set_interval(0.3, self._while_loading)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)
        if self.view is not None:
            self.set_view(self.view.resized(self._columns(event.size.width)))

    def _main(self, selector: Any, expect_type: Any = None) -> Any:
        """A widget of the main screen, whatever dialog is on top (help, go to, an
        error). Raises NoMatches once the app is closing and its screens are gone."""
        stack = self.screen_stack
        if not stack:
            raise NoMatches("the app is closing")
        return stack[0].query_one(selector) if expect_type is None else \
            stack[0].query_one(selector, expect_type)

    def _check_size(self, size: Size | None = None) -> None:
        w, h = size if size is not None else self.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        if not self.screen_stack:                       # closing
            return
        main = self.screen_stack[0]                     # the main screen, not a dialog
        main.set_class(small, "too-small")
        main.set_class(w < PANEL_FROM_WIDTH, "narrow")
        self._place_pane(h)
        if small:
            self._main("#small", Static).update(
                f"terminal too small ({w}×{h}): ptviz view needs {MIN_WIDTH}×{MIN_HEIGHT}")

    def _columns(self, width: int | None = None) -> int:
        """Timeline columns for a terminal ``width`` wide: what is left of the lane
        labels and (from PANEL_FROM_WIDTH) the panel — never more than are drawn."""
        width = width if width is not None else self.size.width
        panel = PANEL_WIDTH + 2 if width >= PANEL_FROM_WIDTH else 0
        return max(1, width - panel - GUTTER - 1)

    # -- loading ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        worker = get_current_worker()
        say = lambda text: self.post_message(self.Progress(text))  # noqa: E731
        try:
            replay, warnings = open_replay(self.path, self._workdir.name, say)
            self.post_message(self.Opened(replay, warnings))
            replay_b = None
            if self.path_b is not None:
                workdir_b = os.path.join(self._workdir.name, "b")
                os.makedirs(workdir_b, exist_ok=True)
                replay_b, warnings_b = open_replay(self.path_b, workdir_b, say)
                self.post_message(self.Opened(replay_b, warnings_b, "b"))
            for which, r in (("", replay), ("B: ", replay_b)):
                if r is None:
                    continue
                last = [0.0]

                def progress(done: int, total: int, which=which, last=last) -> None:
                    now = time.monotonic()
                    if now - last[0] > 0.1:
                        last[0] = now
                        self.post_message(self.Progress(
                            f"{which}loading {done:,}/{total:,} events "
                            f"({100 * done // max(total, 1)}%)"))
                r.run(progress, lambda: worker.is_cancelled)
        except BadInput as exc:
            self.post_message(self.Failed(str(exc)))
            return
        except Cancelled:
            return
        self.post_message(self.Loaded())

    def on_trace_app_opened(self, message: Opened) -> None:
        for text in message.warnings:
            self.notify(printable(text), title="warning", severity="warning", timeout=10,
                        markup=False)
        if message.side == "b":
            self.replay_b = message.replay
            n = message.replay.header.get("cpus") or 0
            self.cpus_b = sorted(set(range(n if n <= 4096 else 0)) |
                                 set(_footer_cpus(message.replay)))
            self._align_b()
            self._refit()
            self.request_frame()
            return
        replay = self.replay = message.replay
        span = replay.reader.time_span or (0, 0)
        n = replay.header.get("cpus") or 0
        self.cpus = sorted(set(range(n if n <= 4096 else 0)) |
                           {c for c in _footer_cpus(replay)})
        self.view = View.fit(span[0], span[1], self._columns())
        self.request_frame()

    def on_trace_app_progress(self, message: Progress) -> None:
        self.progress_text = message.text
        with suppress(NoMatches):       # the app is closing: its widgets are gone
            self._update_status()
        self._grow_events()

    def on_trace_app_loaded(self, message: Loaded) -> None:
        replay = self.replay
        self.progress_text = ""
        self.cpus = sorted(set(self.cpus) | set(replay.cpus))
        if self.replay_b is not None:
            self.cpus_b = sorted(set(self.cpus_b) | set(self.replay_b.cpus))
            self._align_b()
            self._refit()
        peaks = dict(replay.final.mm_peak)
        self.mm = max(peaks, key=peaks.get) if peaks else None
        if replay.suppressed or replay.warnings:
            for w in replay.warnings:
                self.notify(printable(w), title="warning", severity="warning", timeout=10,
                            markup=False)
        self.request_frame()
        with suppress(NoMatches):
            self._fill_tabs()

    def on_trace_app_failed(self, message: Failed) -> None:
        self.error = message.text
        self.push_screen(ErrorScreen(message.text))

    def _while_loading(self) -> None:
        loading = self.replay is not None and not self.replay.loaded or \
            self.replay_b is not None and not self.replay_b.loaded
        if self.error is None and loading:
            self.request_frame()

    # -- frames -------------------------------------------------------------------
    def set_view(self, view: View) -> None:
        moved = self.view is None or view.cursor != self.view.cursor
        self.view = view
        self.request_frame()
        if moved:
            self._update_status()
            if self.replay is not None:
                # After the frame is drawn: the follow's worker would take the GIL
                # from the drawing (a chunk to decode, ~5-40 ms).
                self.call_after_refresh(self._follow, view.cursor)

    def request_frame(self) -> None:
        if self.replay is None or self.view is None:
            return
        self._serial += 1
        self._frame_worker(self.view, list(self.cpus), self.mm, self._serial, self.highlight)

    @work(thread=True, exclusive=True, group="frame")
    def _frame_worker(self, view: View, cpus: list[int], mm: int | None, serial: int,
                      highlight: tuple | None = None) -> None:
        # Runs on a thread: it reads only its arguments and the replay. An older worker
        # may still be finishing (exclusive cancels, it cannot stop a thread), hence
        # the overview cached as one (key, value) pair.
        replay = self.replay
        frame = frames.compute_frame(replay, view, cpus, mm, serial, highlight)
        if self.comparing:
            frame = self._with_b(frame, view, self._b_top_mm())
        key = (view.columns, replay.loaded_events, view.start, view.end, tuple(cpus))
        cached = self._overview
        if cached is None or cached[0] != key:
            cached = self._overview = (key, frames.overview(replay, cpus, view.start, view.end,
                                                            view.columns))
        frame.overview = cached[1]
        self.post_message(self.FrameReady(frame))

    def on_trace_app_frame_ready(self, message: FrameReady) -> None:
        frame = message.frame
        if self.frame is not None and frame.serial < self.frame.serial:
            return
        try:
            self._show_frame(frame)
        except NoMatches:       # the app is closing: its widgets are gone
            pass

    def _show_frame(self, frame: frames.Frame) -> None:
        self.frame = frame
        if self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()
        for widget in (self._main(Overview), self._main(Axis),
                       self._main(Counters)):
            widget.refresh()
        self._main(Lanes).refresh_frame()
        self._update_header()
        self._update_status()
        # The panel's seek (~5-25 ms) runs once the frame is on screen, not beside
        # its drawing.
        self.call_after_refresh(self._panel_worker, self.view.cursor, frame.serial,
                                [(c.label, c.top) for c in frame.counters])

    @work(thread=True, exclusive=True, group="panel")
    def _panel_worker(self, t: int, serial: int, tops: list[tuple[str, str]]) -> None:
        text = panel_text(self.replay, t, tops)
        if not get_current_worker().is_cancelled:      # a newer cursor took over
            self.post_message(self.PanelReady(text, serial))

    def on_trace_app_panel_ready(self, message: PanelReady) -> None:
        if message.serial >= self._panel_serial:
            self._panel_serial = message.serial
            with suppress(NoMatches):
                self._main("#panel", Static).update(message.text)

    def on_unmount(self) -> None:
        self.workers.cancel_all()
        if self.replay is not None:
            self.replay.close()
        self._workdir.cleanup()

    @property
    def exit_status(self) -> int:
        """What ``ptviz view`` exits with: 2 when the trace could not be read."""
        return 2 if self.error is not None else 0


def _footer_cpus(replay: Replay) -> set[int]:
    """The CPUs the footer counts events on (none without a footer: not worth a scan)."""
    return set(replay.reader.counts()[1]) if replay.reader.has_footer else set()
