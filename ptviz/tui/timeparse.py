"""Times as ``ptviz view``'s go-to prompt takes them."""

from __future__ import annotations

from replayer import UsageError
from replayer.units import parse_time


def parse_when(text: str, start: int) -> int:
    """``"+1.5ms"`` → ``start`` + 1.5 ms; ``"12.5"`` or ``"12.5s"`` → that absolute time
    on the trace clock. Raises :class:`UsageError` with the accepted forms."""
    text = text.strip()
    if text.startswith("+"):
        return start + parse_time(text[1:], "time")
    if text.startswith("-"):
        raise UsageError(f"time {text!r}: times are on the trace clock, or +OFFSET from "
                         f"the trace's start")
    return parse_time(text, "time")
