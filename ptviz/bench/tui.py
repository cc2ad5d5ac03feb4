"""The terminal UI's figures, measured headless with Textual's ``App.run_test``:

- ``tui_first_frame_s``: from starting the app to the first frame whose lanes show
  events (the load still running);
- ``tui_loaded_s``: until the whole trace is loaded;
- ``tui_redraw_ms``: median, over pans and zooms, from the key's action until the
  lanes have drawn its frame (computed in a worker, then painted);
- ``tui_max_block_ms``: the longest the event loop was kept from running (a ticker
  that wakes every 2 ms records how late it woke) from start to loaded;
- ``tui_events_page_ms``: median, over jumps to random rows of the Events tab, from
  selecting the row until every line of the page is made (decoding included);
- ``tui_tables_open_ms``: from the Tables tab's key until its first page is drawn, on a
  trace with ≥ 100 k PTE table pages (:func:`measure_tables`).
"""

from __future__ import annotations

import asyncio
import statistics
import time

#: Actions whose redraws are timed (the keys + + + shift+→ … 0): zooms and pans both
#: ways. Run as the key would run them, without the test pilot's own waiting.
ACTIONS = ("zoom(0.5)", "zoom(0.5)", "zoom(0.5)", "pan(1)", "pan(1)", "zoom(2)", "pan(-1)",
           "zoom(0.5)", "pan(1)", "zoom(2)", "zoom(2)", "fit")
TICK_S = 0.002


def in_fresh_process(figure: str, path: str) -> dict:
    """``figure`` (:func:`measure_tui` or :func:`measure_tables`) of ``path``, measured
    in a child process, as ``ptviz view`` starts one: in the bench's own process the
    objects its earlier figures left (hundreds of thousands) made the collector's full
    passes, which stop every thread, tens of ms longer, a stall no user sees."""
    import json
    import subprocess
    import sys
    code = ("import json, sys\n"
            f"from ptviz.bench.tui import {figure}\n"
            f"print(json.dumps({figure}(sys.argv[1])))\n")
    proc = subprocess.run([sys.executable, "-c", code, path], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{figure} of {path} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_tui(path: str, size: tuple[int, int] = (160, 48)) -> dict:
    return asyncio.run(_measure(path, size))


async def _measure(path: str, size: tuple[int, int]) -> dict:
    from ..tui.app import TraceApp
    from ..tui.widgets import Lanes
    app = TraceApp(path)
    lateness: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lateness.append(time.perf_counter() - t - TICK_S)

    async with app.run_test(size=size) as pilot:
        started = app.started_at
        tick = asyncio.create_task(ticker())
        first = None
        while app.replay is None or not app.replay.loaded or app.frame is None \
                or not app.frame.loaded:
            frame = app.frame
            if first is None and frame is not None and any(l.events for l in frame.lanes):
                first = time.perf_counter() - started
            if app.error is not None:
                raise RuntimeError(app.error)
            await asyncio.sleep(0.005)
        loaded = time.perf_counter() - started
        first = loaded if first is None else first
        done.set()
        await tick
        redraws = []
        lanes = app.query_one(Lanes)
        for action in ACTIONS:
            await pilot.pause()
            t = time.perf_counter()
            await app.run_action(action)
            while app.frame is None or app.frame.view != app.view or \
                    lanes.painted != app.frame.serial:
                await asyncio.sleep(0.0005)
            redraws.append((time.perf_counter() - t) * 1000)
        pages = await _event_pages(app, pilot)
    return {"tui_events_page_ms": round(statistics.median(pages), 1),
            "tui_events_page_max_ms": round(max(pages), 1),
            "tui_first_frame_s": round(first, 3), "tui_loaded_s": round(loaded, 3),
            "tui_redraw_ms": round(statistics.median(redraws), 1),
            "tui_redraw_max_ms": round(max(redraws), 1),
            "tui_max_block_ms": round(max(lateness, default=0) * 1000, 1)}


async def _event_pages(app, pilot) -> list[float]:
    """Milliseconds to show the Events tab's page at each of 20 random rows."""
    import random
    from ..tui.tabs import EventList
    await app.run_action("tab('events')")
    await pilot.pause()
    events = app.query_one("#events", EventList)
    rng = random.Random(1)
    times = []
    for _ in range(20):
        row = rng.randrange(len(events.source))
        t = time.perf_counter()
        events.select(row, place=0.0)
        for y in range(events.size.height):
            events.render_line(y)
        times.append((time.perf_counter() - t) * 1000)
        await pilot.pause()
    return times


def measure_tables(path: str, size: tuple[int, int] = (160, 48)) -> dict:
    """``tui_tables_open_ms`` on the trace at ``path`` (loaded first, not timed)."""
    return asyncio.run(_tables(path, size))


async def _tables(path: str, size: tuple[int, int]) -> dict:
    from ..tui.app import TraceApp
    from ..tui.sources import TableSource
    from ..tui.tabs import TableList
    app = TraceApp(path)
    async with app.run_test(size=size) as pilot:
        while app.replay is None or not app.replay.loaded or app.frame is None:
            if app.error is not None:
                raise RuntimeError(app.error)
            await asyncio.sleep(0.01)
        await pilot.pause()
        tables = app.query_one("#tables", TableList)
        t = time.perf_counter()
        await app.run_action("tab('tables')")
        while not isinstance(tables.source, TableSource):
            await asyncio.sleep(0.001)
        for y in range(tables.size.height):
            tables.render_line(y)
        opened = (time.perf_counter() - t) * 1000
        return {"tui_tables_open_ms": round(opened, 1), "tui_tables": len(tables.source)}
