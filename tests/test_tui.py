"""``ptviz view``, driven by keys as a user would (Textual's Pilot): each key checked by
its effect — the cursor time, the view window, the selected class and lane, what the
lane shows under the cursor — on a small trace whose every event time is known."""

from __future__ import annotations

import os

import pytest
from textual.events import MouseScrollDown, MouseScrollUp
from textual.worker import WorkerCancelled

from replayer import TIMELINE_CLASSES
from ptviz.tui.app import TraceApp
from ptviz.tui.screens import ErrorScreen, GotoScreen, HelpScreen
from ptviz.tui.widgets import GUTTER, Lanes
from tests.conftest import TRACES
from tests.story import MM, Story

MS = 1_000_000
PFN = 0x4000


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """Two CPUs, one event (or a few) per millisecond, at times the tests name."""
    path = tmp_path_factory.mktemp("ui") / "ui.msgpack"
    s = Story(path, cpus=2)
    s.at(1 * MS).on(0).mm_new(mm=MM, tgid=100, command="app")
    s.table_alloc(mm=MM, level=1, pfn=PFN, addr=0)
    s.at(2 * MS).pte_set(mm=MM, pfn=PFN, n=8)
    s.at(3 * MS).on(1).tlb_flush(mm=MM, start=0, end=1 << 21, pages=8,
                                 reason="remote shootdown")
    s.at(4 * MS).on(0).marker(text="first")
    s.at(5 * MS).ipi_send(targets=(1,), reason="tlb_shootdown", callsite="flush_tlb_mm_range")
    s.at(5 * MS + 500_000).on(1).ipi_enter(reason="tlb_shootdown")
    s.at(6 * MS).on(0).zap_begin(mm=MM, start=0, end=1 << 21, cause="dontneed")
    s.pte_clear(mm=MM, pfn=PFN, n=8)
    s.table_detach(mm=MM, pfn=PFN, cause="reclaim")
    s.at(7 * MS).marker(text="second")
    s.at(8 * MS).on(1).table_free(pfn=PFN, path="rcu")
    s.at(10 * MS).on(0).marker(text="end")
    s.writer.close()
    return str(path)


async def settle(app, pilot) -> None:
    """Until the load, the frame and the panel for the current view are done."""
    for _ in range(50):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:          # an exclusive worker replaced by a newer one
            continue
        await pilot.pause()
        if app.replay is not None and app.replay.loaded and app.frame is not None \
                and app.frame.view == app.view and app.frame.loaded:
            return
    raise AssertionError("the UI did not settle")


async def press(app, pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


def shown_at_cursor(app, lane: int) -> str | None:
    """The class the lane shows in the cursor's column."""
    col = app.view.cursor_column
    cls = int(app.frame.lanes[lane].shown[col])
    return TIMELINE_CLASSES[cls] if cls >= 0 else None


async def test_opens_fitted_with_both_cpus(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        v = app.view
        assert (v.start, v.end) == (1 * MS, 10 * MS) and v.t0 == v.start and v.t1 > v.end
        assert [lane.cpu for lane in app.frame.lanes] == [0, 1]
        assert v.cursor == v.start and shown_at_cursor(app, 0) == "alloc"


async def test_zoom_keys_keep_the_cursor_column(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, *["right"] * 12)
        fit, col = app.view, app.view.cursor_column
        half = (fit.t1 - fit.t0) // 2           # widths are whole ns per column
        await press(app, pilot, "plus")
        assert abs(app.view.t1 - app.view.t0 - half) < fit.columns
        assert app.view.cursor == fit.cursor and abs(app.view.cursor_column - col) <= 1
        await press(app, pilot, "equals_sign", "minus")
        assert abs(app.view.t1 - app.view.t0 - half) < 2 * fit.columns
        await press(app, pilot, "minus", "minus")          # never wider than the trace
        assert (app.view.t0, app.view.t1) == (fit.t0, fit.t1)
        await press(app, pilot, "plus", "plus", "0")
        assert (app.view.t0, app.view.t1, app.view.cursor) == (fit.t0, fit.t1, fit.cursor)


async def test_cursor_and_pan_keys(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        v = app.view
        await press(app, pilot, "right")
        assert app.view.cursor == v.column_span(1)[0]
        await press(app, pilot, "l", "l", "h")
        assert app.view.cursor == v.column_span(2)[0]
        await press(app, pilot, "left", "left")
        assert app.view.cursor == v.start
        await press(app, pilot, "plus", "plus")
        zoomed = app.view
        await press(app, pilot, "shift+right")
        assert app.view.t0 - zoomed.t0 == zoomed.t1 - zoomed.t0     # one screen
        await press(app, pilot, "shift+left")
        assert app.view.t0 == zoomed.t0
        await press(app, pilot, "end")
        assert app.view.cursor == v.end and app.view.t0 <= v.end < app.view.t1
        await press(app, pilot, "home")
        assert app.view.cursor == v.start and app.view.cursor_column is not None


async def test_event_class_selection_and_next_previous(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        assert TIMELINE_CLASSES[app.selected_class] == "alloc"
        await press(app, pilot, "right_square_bracket", "right_square_bracket")
        assert TIMELINE_CLASSES[app.selected_class] == "ipi_send"
        await press(app, pilot, "n")
        assert app.view.cursor == 5 * MS and app.lane == 0
        assert shown_at_cursor(app, 0) == "ipi_send"
        assert "ipi_send" in str(app.query_one("#status").render())
        await press(app, pilot, *["left_square_bracket"] * 5)     # → reclaim_free
        assert TIMELINE_CLASSES[app.selected_class] == "reclaim_free"
        await press(app, pilot, "n")
        assert app.view.cursor == 8 * MS and app.lane == 1
        assert shown_at_cursor(app, 1) == "reclaim_free"
        await press(app, pilot, "right_square_bracket", "right_square_bracket",
                    "right_square_bracket")                          # → alloc
        await press(app, pilot, "N")
        assert app.view.cursor == 1 * MS + 10 and app.lane == 0     # the table_alloc


async def test_markers_and_findings(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "m")
        assert app.view.cursor == 4 * MS and "first" in app.status_extra
        await press(app, pilot, "m")
        assert app.view.cursor == 7 * MS and "second" in app.status_extra
        await press(app, pilot, "M")
        assert app.view.cursor == 4 * MS
        await press(app, pilot, "f")            # this trace has no finding: nothing moves
        assert app.view.cursor == 4 * MS


async def test_f_goes_to_the_use_after_free():
    app = TraceApp(os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack"))
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        finding = app.replay.findings[0]
        await press(app, pilot, "f")
        assert app.view.cursor == finding.ts and app.cpus[app.lane] == finding.cpu == 1
        assert "use_after_free" in app.status_extra
        await press(app, pilot, "F")
        assert app.view.cursor == finding.ts


async def test_markers_a_b_and_the_header(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "m", "a", "m", "b")
        assert (app.view.a, app.view.b) == (4 * MS, 7 * MS)
        assert "Δt 3 ms" in str(app.query_one("#header").render())


async def test_goto_a_time(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        await pilot.press("g")
        assert isinstance(app.screen, GotoScreen)
        await pilot.press(*"+5.5ms", "enter")
        await settle(app, pilot)
        assert app.view.cursor == 6_500_000           # 1 ms start + 5.5 ms
        await pilot.press("g", *"0.008", "enter")       # absolute, in seconds
        await settle(app, pilot)
        assert app.view.cursor == 8 * MS
        await pilot.press("g", *"soon", "enter")
        await settle(app, pilot)
        assert app.view.cursor == 8 * MS                # refused, with a notification


async def test_mouse_click_places_the_cursor_and_the_wheel_zooms(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        v = app.view
        await pilot.click(Lanes, offset=(GUTTER + 10, 2))      # row 2: CPU 1's glyphs
        await settle(app, pilot)
        assert app.view.cursor == v.column_span(10)[0] and app.lane == 1
        await pilot._post_mouse_events([MouseScrollUp], Lanes, offset=(GUTTER + 10, 1))
        await settle(app, pilot)
        assert app.view.t1 - app.view.t0 < v.t1 - v.t0
        assert app.view.cursor_column == 10
        await pilot._post_mouse_events([MouseScrollDown], Lanes, offset=(GUTTER + 10, 1))
        await pilot._post_mouse_events([MouseScrollDown], Lanes, offset=(GUTTER + 10, 1))
        await settle(app, pilot)
        assert (app.view.t0, app.view.t1) == (v.t0, v.t1)


async def test_lanes_up_down_help_palette_quit(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "down")
        assert app.lane == 1
        await press(app, pilot, "j", "k", "k", "up")
        assert app.lane == 0
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert "CommandPalette" in type(app.screen).__name__
        await pilot.press(*"fit the whole", "enter")
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.exit_status == 0 and app.return_code in (0, None)


async def test_pte_panel_follows_the_cursor(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        panel = lambda: str(app.query_one("#panel").render())     # noqa: E731
        await press(app, pilot, "g")
        await pilot.press(*"+1.5ms", "enter")
        await settle(app, pilot)
        assert _row(panel(), "live") == ["1", "4.0", "KiB"]       # entries set at 2 ms? no: 1.5
        await pilot.press("g", *"+6.5ms", "enter")                 # detached, not freed
        await settle(app, pilot)
        assert _row(panel(), "in flight") == ["1", "4.0", "KiB"]
        await press(app, pilot, "end")
        assert _row(panel(), "reclaimed") == ["1", "4.0", "KiB"]


def _row(text: str, label: str) -> list[str]:
    line = next(l for l in text.splitlines() if l.startswith(label))
    return line[len(label):].split()


async def test_a_corrupt_file_shows_the_clis_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"\x89PTVIZ\r\n\x00\x01garbage")
    from ptviz.cli import main
    assert main(["info", str(bad)]) == 2
    cli_line = capsys.readouterr().err.strip().removeprefix("ptviz: ")
    app = TraceApp(str(bad))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert app.error == cli_line and cli_line in str(app.screen.query_one("#error").render())
        await pilot.press("q")
    assert app.exit_status == 2


async def test_a_terminal_too_small_says_so(trace):
    app = TraceApp(trace)
    async with app.run_test(size=(50, 12)) as pilot:
        await settle(app, pilot)
        assert app.screen.has_class("too-small")
        assert "terminal too small (50×12)" in str(app.query_one("#small").render())
        await pilot.resize_terminal(120, 30)
        await settle(app, pilot)
        assert not app.screen.has_class("too-small")


def test_view_without_a_terminal_says_so(capsys, trace):
    from ptviz.cli import main
    assert main(["view", trace]) == 2
    assert "view needs a terminal" in capsys.readouterr().err


async def test_idle_cpus_hide_and_show(tmp_path):
    """A 64-CPU machine running on two CPUs stays usable: e hides the idle lanes."""
    path = tmp_path / "wide.msgpack"
    s = Story(path, cpus=64)
    s.at(1 * MS).on(0).marker(text="a")
    s.at(2 * MS).on(37).marker(text="b")
    s.writer.close()
    app = TraceApp(str(path))
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        assert len(app.frame.lanes) == 64
        await press(app, pilot, "end", "down")
        await press(app, pilot, "e")
        assert [lane.cpu for lane in app.frame.lanes] == [0, 37] and app.lane == 1
        assert "62 idle CPUs hidden" in str(app.query_one("#status").render())
        await press(app, pilot, "e")
        assert len(app.frame.lanes) == 64


async def test_a_truncated_trace_opens_with_a_banner(tmp_path):
    whole = os.path.join(TRACES, "reclaim-6.14-x86_64.msgpack")
    data = open(whole, "rb").read()
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(data[:-40])                       # footer and trailer gone
    app = TraceApp(str(cut))
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(app, pilot)
        assert "cut short at byte" in str(app.query_one("#status").render())


def test_view_sim_simulates_then_opens(monkeypatch, capsys):
    """``ptviz view --sim ARGS`` runs the simulator into a temporary file and opens that
    (the UI itself is replaced here: no terminal in the test)."""
    from ptviz.cli import main, view
    from replayer import Replay
    opened = {}

    def fake_view(path, path_b=None, align=None):
        with Replay.load(path) as r:
            opened["kernel"] = r.header["kernel"]["version"]
            opened["events"] = r.event_count
        return 0
    monkeypatch.setattr(view, "_view", fake_view)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["view", "--sim", "--kernel", "6.13", "--param", "size=8M"]) == 0
    assert opened["kernel"] == "6.13" and opened["events"] > 0
    assert main(["view", "--sim", "-o", "x.msgpack"]) == 2
    assert "leave -o out" in capsys.readouterr().err
