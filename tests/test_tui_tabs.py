"""The tabs under the timeline, driven by keys (Textual's Pilot), each checked by its
effect on the small trace of test_tui.py, whose every event is known:

    index  time   cpu  event
    0      1 ms   0    mm_new
    1      1 ms   0    table_alloc PFN        2  2 ms  0  pte_set PFN ×8
    3      3 ms   1    tlb_flush              4  4 ms  0  marker "first"
    5      5 ms   0    ipi_send → 1           6  5.5   1  ipi_enter
    7      6 ms   0    zap_begin dontneed     8  6 ms  0  pte_clear PFN ×8
    9      6 ms   0    table_detach reclaim  10  7 ms  0  marker "second"
    11     8 ms   1    table_free rcu        12  10 ms 0  marker "end"
"""

from __future__ import annotations

import os

from textual.widgets import TabbedContent, Tree

from ptviz.tui.app import TraceApp
from ptviz.tui.sources import EventSource, StepSource, TableSource
from ptviz.tui.tabs import EventList, LifecycleScreen, TableList
from tests.conftest import TRACES
from tests.test_tui import MS, PFN, settle, trace  # noqa: F401  (the fixture)

SIZE = (150, 46)


def rows(app) -> list[int]:
    """The event indexes the Events list shows."""
    source = app.query_one("#events", EventList).source
    return [source.index(r) for r in range(len(source))]


def selected_index(app) -> int:
    events = app.query_one("#events", EventList)
    return events.source.index(events.selected)


async def test_events_follow_the_cursor_and_enter_goes_to_a_row(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert rows(app) == list(range(13)) and selected_index(app) == 0
        app.set_view(app.view.goto(6 * MS))            # the first event at 6 ms: zap_begin
        await settle(app, pilot)
        assert selected_index(app) == 7
        await pilot.press("1")                         # focus the list
        await pilot.press("down", "down", "down", "down")   # to 11: table_free on CPU 1
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.view.cursor == 8 * MS and app.cpus[app.lane] == 1
        assert selected_index(app) == 11                # the row stays the chosen one


async def test_the_filter_narrows_the_rows_and_marks_the_lanes(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+f")
        await pilot.press(*"kind=table_* cpu=0")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert rows(app) == [1, 9]                      # the alloc and the detach (CPU 0)
        ts, cpus = app.highlight
        assert ts.tolist() == [1 * MS + 10, 6 * MS + 20] and cpus.tolist() == [0, 0]
        lane0 = app.frame.lanes[0]
        marked = [c for c, m in enumerate(lane0.marked.tolist()) if m]
        assert marked == sorted({app.view.column_of(int(t)) for t in ts})
        assert not app.frame.lanes[1].marked.any()
        # A bad term says which and changes nothing; an empty filter clears.
        await pilot.press("ctrl+f", *"cpu=x", "enter")
        await settle(app, pilot)
        assert rows(app) == [1, 9]
        await pilot.press("ctrl+a", "ctrl+k", "enter")
        await settle(app, pilot)
        assert rows(app) == list(range(13)) and app.highlight is None


async def test_search_goes_to_the_next_match(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"marker", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert selected_index(app) == 4                 # marker "first"
        await pilot.press("n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert selected_index(app) == 10
        await pilot.press("N")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert selected_index(app) == 4
        await pilot.press("slash", *"pfn=0x4000 cause=reclaim", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert selected_index(app) == 9


async def test_tables_sort_and_a_lifecycle_step_moves_the_cursor(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await app.workers.wait_for_complete()
        await pilot.press("2")
        await pilot.pause()
        assert app.query_one("#tabs", TabbedContent).active == "tab-tables"
        source = app.query_one("#tables", TableList).source
        assert isinstance(source, TableSource) and len(source) == 1
        assert source.text(0).startswith("reclaimed") and f"{PFN:#x}" in source.text(0)
        await pilot.press("o")                          # sort by pfn
        await pilot.pause()
        assert source.sort_column == 1 and "pfn▲" in source.header()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LifecycleScreen)
        steps = screen.query_one("#steps").source
        assert isinstance(steps, StepSource)
        assert [s["step"] for s in steps.steps] == ["alloc", "entries set", "emptied", "detach",
                                                    "free"]
        assert [s["index"] for s in steps.steps] == [1, 2, 8, 9, 11]
        # The page's steps are marked on the lanes.
        assert app.highlight[0].tolist() == [s["ts"] for s in steps.steps]
        await pilot.press("down", "down", "down", "down")     # the free, on CPU 1
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, LifecycleScreen)
        assert app.view.cursor == 8 * MS and app.cpus[app.lane] == 1


async def test_a_finding_selects_its_lane_and_time():
    app = TraceApp(os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        tree = app.query_one("#findings", Tree)
        kinds = [str(n.label) for n in tree.root.children]
        assert kinds == ["use_after_free (1)"]
        finding = tree.root.children[0].children[0]
        tree.select_node(finding)
        await pilot.press("enter")
        await settle(app, pilot)
        f = app.replay.findings[0]
        assert app.view.cursor == f.ts and app.cpus[app.lane] == f.cpu


async def test_summary_and_the_pane_toggle(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await app.workers.wait_for_complete()
        await pilot.press("4")
        await pilot.pause()
        text = str(app.query_one("#summary").render())
        assert "reclaimed (freed after PT_RECLAIM detach)" in text and "peaks:" in text
        await pilot.press("escape", "t")
        await pilot.pause()
        assert not app.query_one("#pane").display
        await pilot.press("t")
        await pilot.pause()
        assert app.query_one("#pane").display


async def test_a_short_terminal_starts_without_the_tabs(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=(150, 30)) as pilot:
        await settle(app, pilot)
        assert not app.query_one("#pane").display
        await pilot.press("1")                 # a tab's key shows them
        await pilot.pause()
        assert app.query_one("#pane").display
        assert isinstance(app.query_one("#events", EventList).source, EventSource)


async def test_enter_on_the_allocation_step_goes_to_that_event(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.set_view(app.view.goto(10 * MS))          # elsewhere first
        await settle(app, pilot)
        await pilot.press("2", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")                     # the first step: its allocation
        await settle(app, pilot)
        alloc = app.replay.event_at(1)
        assert alloc.kind == "table_alloc"
        assert app.view.cursor == alloc.ts and app.cpus[app.lane] == alloc.cpu
        assert selected_index(app) == 1                # the list follows: the alloc


async def test_following_the_cursor_decodes_off_the_ui_thread_and_yields_to_a_choice(
        tmp_path, monkeypatch):
    """Moving the cursor opens the Events list at its time: the event is found and the
    rows around it decoded in a worker, so the UI thread decodes no chunk for it; a
    follow still under way when the user picks a row (a search's match) does not
    take the list back."""
    import threading
    from tests.test_replay_seek import write
    path = tmp_path / "long.msgpack"
    write(path, [(1000 * (i + 1), 6, i % 4, 7, (0xA000, 0x1000 + i % 5000, 1, None))
                 for i in range(40_000)], 16384)
    decoded_on: list[str] = []
    real_block = EventSource._block

    def block(self, b):
        with self._lock:
            cached = self._blocks.get(b) is not None
        if not cached:
            decoded_on.append(threading.current_thread().name)
        return real_block(self, b)
    monkeypatch.setattr(EventSource, "_block", block)
    app = TraceApp(str(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        decoded_on.clear()
        app.set_view(app.view.goto(30_000_000))            # event 29,999 is at 30 ms
        await settle(app, pilot)
        assert selected_index(app) == 29_999
        assert decoded_on and threading.main_thread().name not in decoded_on
        # A follow held up in its worker, the user picks row 5: the list stays there.
        gate = threading.Event()
        real_prefetch = EventSource.prefetch
        monkeypatch.setattr(EventSource, "prefetch",
                            lambda self, row, around: gate.wait(5) and
                            real_prefetch(self, row, around))
        app.set_view(app.view.goto(20_000_000))
        await pilot.pause()
        app._select_event_row(5)
        gate.set()
        await settle(app, pilot)
        assert selected_index(app) == 5
