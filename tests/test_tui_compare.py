"""``ptviz view A B``: the cover letter's loop at 6.13 (A) and 6.14 (B) on one axis."""

from __future__ import annotations

import os

import pytest

from ptviz.cli import main
from ptviz.tui.app import TraceApp
from ptviz.tui.compare import first_marker, lane_order
from tests.conftest import TRACES
from tests.test_tui import settle

A = os.path.join(TRACES, "sim-coverletter-6.13-x86_64.msgpack")
B = os.path.join(TRACES, "sim-coverletter-6.14-x86_64.msgpack")
SIZE = (150, 50)


async def loaded(app, pilot) -> None:
    for _ in range(100):
        await settle(app, pilot)
        if app.replay_b is not None and app.replay_b.loaded and \
                len(app.frame.lanes) == 8:
            return
        await pilot.pause(0.05)
    raise AssertionError("B did not load")


def test_lane_orders():
    assert lane_order([0, 1], [0, 2], stacked=False) == [("a", 0), ("b", 0), ("a", 1),
                                                         ("b", 2)]
    assert lane_order([0, 1], [0, 2], stacked=True) == [("a", 0), ("a", 1), ("b", 0),
                                                        ("b", 2)]


async def test_both_traces_interleaved_then_stacked():
    app = TraceApp(A, B)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        labels = [lane.label for lane in app.frame.lanes]
        assert labels == ["A CPU 0", "B CPU 0", "A CPU 1", "B CPU 1", "A CPU 2", "B CPU 2",
                          "A CPU 3", "B CPU 3"]
        # Aligned at their first events (both start at 1 s: no shift); the axis holds both.
        assert app.b_shift == 0
        assert app.view.end == max(app.replay.last_ts, app.replay_b.last_ts)
        # 6.14 reclaims at each MADV_DONTNEED: B's CPU 0 lane shows reclaims, A's none.
        a0, b0 = app.frame.lanes[0], app.frame.lanes[1]
        assert not (a0.shown == b0.shown).all()
        await pilot.press("x")
        await settle(app, pilot)
        assert [lane.label for lane in app.frame.lanes][:4] == ["A CPU 0", "A CPU 1",
                                                                 "A CPU 2", "A CPU 3"]
        # Each counter twice: A then B.
        assert [c.label for c in app.frame.counters][:2] == ["A page tables",
                                                             "B page tables"]
        # The lane keys walk all eight lanes; the status line says whose CPU it is.
        await pilot.press("down", "down", "down", "down")
        await settle(app, pilot)
        assert app.lane == 4 and "B CPU 0" in str(app.query_one("#status").render())


async def test_the_summary_is_the_diff():
    app = TraceApp(A, B)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        await pilot.press("4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = str(app.query_one("#summary").render())
        assert "reclaimed (freed after PT_RECLAIM detach)   0 → 16 (+16)" in text


async def test_align_at_a_marker():
    app = TraceApp(A, B, align="after the loop")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(app, pilot)
        ta = first_marker(app.replay, "after the loop")
        tb = first_marker(app.replay_b, "after the loop")
        assert app.b_shift == ta - tb
        assert app.view.start == min(app.replay.first_ts, app.replay_b.first_ts + app.b_shift)


def test_align_needs_two_traces(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["view", A, "--align", "x"]) == 2
    assert "give two traces to align" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["nonexistent.msgpack"])
async def test_a_bad_second_trace_shows_the_error(bad, tmp_path):
    app = TraceApp(A, str(tmp_path / bad))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.error is not None and bad in app.error
