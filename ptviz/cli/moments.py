"""Times as users give them on the command line, the same for every command:

* ``1.5ms``, ``2.000345s``, ``12`` (seconds): the trace's own clock, as ftrace and
  ``ptviz events`` print it;
* ``+1.5ms``: from the trace's first event;
* ``marker:TEXT``: the first marker whose text contains TEXT.

A time outside the trace is taken as given, with a warning saying where the trace
lies (an absolute time typed as if relative, ``--at 1.5ms`` on a trace that starts
at 2 s, is the usual slip).
"""

from __future__ import annotations

from typing import Callable, Iterable

from replayer.errors import UsageError
from replayer.units import format_ts, parse_moment

from .errors import warn

def resolve(text: str, flag: str, first: int | None, last: int | None,
            markers: Callable[[], Iterable[tuple[int, str]]]) -> int:
    """``text`` as absolute ns. ``markers()``: (ts, text) of the trace's markers in
    time order (only called for ``marker:``)."""
    if text.startswith("marker:"):
        want = text[len("marker:"):]
        if not want:
            raise UsageError(f"{flag} {text!r}: give the text to look for, marker:TEXT")
        hit = next((ts for ts, t in markers() if isinstance(t, str) and want in t), None)
        if hit is None:
            raise UsageError(f"{flag} {text!r}: no marker's text contains {want!r}")
        return hit
    ns = parse_moment(text, first or 0, flag)
    if first is not None and last is not None and not first <= ns <= last:
        side = "before the trace starts" if ns < first else "after the trace ends"
        hint = f" (did you mean +{text}?)" if ns < first and not text.startswith("+") else ""
        warn(f"{flag} {text} is {side}: its events are from {format_ts(first)} to "
             f"{format_ts(last)} s{hint}")
    return ns


def replay_markers(replay) -> Callable[[], list[tuple[int, str]]]:
    return lambda: [(m["ts"], m["text"]) for m in replay.markers]
