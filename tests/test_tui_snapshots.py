"""What ``ptviz view`` draws, pinned as SVG snapshots (pytest-textual-snapshot; Textual
is pinned exactly in the test extra so the pictures stay comparable). Update them
with ``pytest tests/test_tui_snapshots.py --snapshot-update`` after a deliberate change,
and look at the new SVGs before committing them."""

from __future__ import annotations

import os

import pytest

from ptviz.tui.app import TraceApp
from tests.conftest import ROOT
from tests.test_tui import settle


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    """Paths in the header are the ones given: relative to the checkout."""
    monkeypatch.chdir(ROOT)


async def loaded(pilot) -> None:
    await settle(pilot.app, pilot)


def test_main_screen_leak_613(snap_compare):
    """6.13 keeps the emptied table attached: the leaked table's detach at exit (L)."""
    app = TraceApp(os.path.join("traces", "leak-6.13-x86_64.msgpack"))
    assert snap_compare(app, terminal_size=(120, 36), run_before=loaded)


def test_main_screen_uaf_at_the_finding(snap_compare):
    """The semi-RCU sample, cursor on its use-after-free (f), wider terminal."""
    app = TraceApp(os.path.join("traces", "semi-rcu-walker-uaf.msgpack"))

    async def to_finding(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("f")
        await settle(pilot.app, pilot)
    assert snap_compare(app, terminal_size=(160, 48), run_before=to_finding)


def test_help_screen(snap_compare):
    app = TraceApp(os.path.join("traces", "reclaim-6.14-x86_64.msgpack"))

    async def help_(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
    assert snap_compare(app, terminal_size=(120, 40), run_before=help_)


def test_error_screen(snap_compare, tmp_path):
    bad = os.path.join("tests", "data", "not-a-trace.msgpack")
    app = TraceApp(bad)

    async def failed(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    assert snap_compare(app, terminal_size=(100, 24), run_before=failed)


def _tab(key: str, *then: str):
    async def run(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.app.workers.wait_for_complete()
        await pilot.press(key, *then)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    return run


def test_events_tab_filtered(snap_compare):
    """The reclaim story's table steps (ctrl+f kind=table_*), marked on the lanes."""
    app = TraceApp(os.path.join("traces", "reclaim-6.14-x86_64.msgpack"))
    assert snap_compare(app, terminal_size=(140, 44),
                        run_before=_tab("ctrl+f", *"kind=table_*", "enter"))


def test_tables_tab_leak_613(snap_compare):
    """6.13: every PTE table of the cover letter's loop leaked, then freed at exit."""
    app = TraceApp(os.path.join("traces", "sim-coverletter-6.13-x86_64.msgpack"))
    assert snap_compare(app, terminal_size=(140, 44), run_before=_tab("2"))


def test_lifecycle_screen(snap_compare):
    app = TraceApp(os.path.join("traces", "reclaim-6.14-x86_64.msgpack"))
    assert snap_compare(app, terminal_size=(140, 44), run_before=_tab("2", "enter"))


def test_findings_tab(snap_compare):
    app = TraceApp(os.path.join("traces", "semi-rcu-walker-uaf.msgpack"))
    assert snap_compare(app, terminal_size=(140, 44), run_before=_tab("3"))


def test_summary_tab(snap_compare):
    app = TraceApp(os.path.join("traces", "sim-coverletter-6.13-x86_64.msgpack"))
    assert snap_compare(app, terminal_size=(140, 44), run_before=_tab("4"))


def test_compare_613_614(snap_compare):
    """ptviz view A B: 6.13 leaks (L), 6.14 reclaims (R), interleaved per CPU."""
    app = TraceApp(os.path.join("traces", "sim-coverletter-6.13-x86_64.msgpack"),
                   os.path.join("traces", "sim-coverletter-6.14-x86_64.msgpack"))

    async def both(pilot) -> None:
        for _ in range(100):
            await settle(pilot.app, pilot)
            b = pilot.app.replay_b
            if b is not None and b.loaded and len(pilot.app.frame.lanes) == 8:
                return
            await pilot.pause(0.05)
    assert snap_compare(app, terminal_size=(140, 48), run_before=both)
