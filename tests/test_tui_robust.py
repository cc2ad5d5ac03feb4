"""``ptviz view`` where it used to break: a narrow terminal, a dialog on top when work
finishes, events sharing a nanosecond, a crash of the app itself."""

from __future__ import annotations

from replayer import TIMELINE_CLASSES
from ptviz.tui.app import MIN_WIDTH, PANEL_FROM_WIDTH, TraceApp
from ptviz.tui.screens import HelpScreen
from ptviz.tui.widgets import GUTTER, Lanes
from tests.story import MM, Story
from tests.test_tui import MS, settle, trace  # noqa: F401  (the fixture)


async def test_a_narrow_terminal_hides_the_panel_and_keeps_the_cursor_drawn(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=(MIN_WIDTH, 30)) as pilot:
        await settle(app, pilot)
        main = app.screen_stack[0]
        assert main.has_class("narrow")
        assert not app.query_one("#panel").display
        lanes = app.query_one(Lanes)
        # Every column the view has is drawn: the lane is wide enough for all of them.
        assert GUTTER + app.view.columns <= lanes.size.width
        await pilot.press("end")
        await settle(app, pilot)
        assert 0 <= app.view.cursor_column < app.view.columns
        await pilot.resize_terminal(PANEL_FROM_WIDTH + 20, 30)
        await settle(app, pilot)
        assert not main.has_class("narrow") and app.query_one("#panel").display
        assert GUTTER + app.view.columns <= app.query_one(Lanes).size.width


async def test_work_that_finishes_under_a_dialog_lands_on_the_main_screen(trace):  # noqa: F811
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        await app.push_screen(HelpScreen())
        await pilot.pause()
        # A progress line, a new frame and the panel for it arrive while help is open,
        # and the terminal shrinks: none of it may look for widgets on the dialog.
        app.post_message(TraceApp.Progress("still reading"))
        app.set_view(app.view.goto(7 * MS))
        await pilot.resize_terminal(50, 12)
        for _ in range(5):
            await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.screen_stack[0].has_class("too-small") and not app.screen.has_class("too-small")
        await pilot.resize_terminal(140, 36)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.frame.view.cursor == 7 * MS and app.return_code is None


async def test_n_steps_through_events_of_the_same_nanosecond(tmp_path):
    path = tmp_path / "same.msgpack"
    s = Story(path, cpus=1)
    s.at(1 * MS).on(0).mm_new(mm=MM, tgid=100, command="app")
    firsts = []
    for k in range(3):
        s.at(2 * MS)
        firsts.append(s.table_alloc(mm=MM, level=1, pfn=0x100 + k, addr=k << 21))
    s.at(3 * MS).marker(text="end")
    s.writer.close()
    app = TraceApp(str(path))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(app, pilot)
        app.selected_class = TIMELINE_CLASSES.index("alloc")
        seen = []
        for _ in range(3):
            await pilot.press("n")
            await settle(app, pilot)
            seen.append((app.view.cursor, app.status_extra))
        assert seen == [(2 * MS, f"event {i:,}") for i in firsts]
        await pilot.press("N")
        await settle(app, pilot)
        assert app.status_extra == f"event {firsts[1]:,}"


def test_view_says_so_when_the_app_died(monkeypatch):
    # Textual prints the traceback of an app that crashed and sets its return code:
    # `ptviz view` must not then exit 0.
    from ptviz.cli import view

    class Died:
        error, exit_status, return_code = None, None, 1

        def __init__(self, path, path_b=None, align=None):
            pass

        def run(self):
            pass
    monkeypatch.setattr("ptviz.tui.app.TraceApp", Died)
    assert view._view("any.msgpack") == 1
