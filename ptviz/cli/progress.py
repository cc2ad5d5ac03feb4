"""A progress bar on stderr for long work, drawn by rich (installed with textual),
and nothing at all when stderr is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterator

#: The bar is brought up to date at most this often.
_SHOW_EVERY_S = 0.1


class Bar:
    """What a long task reports to: ``bar(n)`` advances by ``n``; :meth:`at` sets the
    count done (a replay's or reader's ``progress(done, total)`` callbacks)."""

    def __init__(self, update: Callable[..., None] | None = None,
                 note: Callable[[str], None] | None = None) -> None:
        self._update = update
        self._note = note
        self.done = 0

    def __call__(self, n: int, total: int | None = None) -> None:
        self.done += n
        if self._update is not None:
            self._update(n, total)

    def at(self, done: int, total: int | None = None) -> None:
        self(done - self.done, total)

    def note(self, text: str) -> None:
        """A few words after the count (``3 failed``), replacing the previous ones."""
        if self._note is not None:
            self._note(text)


@contextlib.contextmanager
def progress_bar(what: str, total: int | None, unit: str = "events") -> Iterator[Bar]:
    """Yields a :class:`Bar`. The bar shows the count done (of ``total`` when known;
    ``total`` may be revised as work goes), the rate and the time left; it is removed
    when the work ends."""
    if not sys.stderr.isatty():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TextColumn("{task.fields[note]}"), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total or None, rate="", note="")

        held = [0, None, 0.0]          # advance and total not yet shown, when last shown

        def update(n: int, new_total: int | None) -> None:
            # rich's update costs ~50 µs: a caller reporting every few events (a
            # simulation's steps) would spend more in it than in its work.
            held[0] += n
            held[1] = new_total if new_total is not None else held[1]
            now = time.monotonic()
            if now - held[2] < _SHOW_EVERY_S:
                return
            speed = bar.tasks[0].speed
            extra: dict[str, Any] = {} if held[1] is None else {"total": held[1]}
            bar.update(task, advance=held[0], rate=f"{speed:,.0f}/s" if speed else "",
                       **extra)
            held[:] = [0, None, now]
        yield Bar(update, lambda text: bar.update(task, note=text))


def load_replay(reader: Any, what: str = "replay") -> Any:
    """``Replay.load(reader)`` with a progress bar of its events."""
    from replayer.replay import Replay
    with progress_bar(what, reader.event_count) as bar:
        return Replay.load(reader, progress=bar.at)
