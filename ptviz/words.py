"""Events in words, the same in ``ptviz events`` and the UI's Events tab.

A line is ``time  CPU  task  kind  fields``; fields read as the kernel prints them
(hex for mm, pfn and addresses, levels by name, IPI targets as a CPU list). Trace
strings pass through :func:`printable` (no control characters reach a terminal).
"""

from __future__ import annotations

from typing import Any

from replayer import vocab as v
from replayer.filters import HEX_FIELDS
from replayer.traceio import Event

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
#: Fields that say nothing a reader needs on a one-line view.
_QUIET = frozenset(("inferred",))


def printable(text: Any) -> str:
    return str(text).translate(_CONTROL)


def task(event: Event) -> str:
    """``comm-pid`` as ftrace prints it (``<idle>-0``; ``-`` when no task)."""
    if event.pid is None:
        return "-"
    return f"{printable(event.comm or '<...>')}-{event.pid}"


def _value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "level" and isinstance(value, int):
        return v.LEVEL_NAMES.get(value, str(value))
    if isinstance(value, int) and key in HEX_FIELDS:
        return f"{value:#x}"
    if isinstance(value, (list, tuple)):
        inner = ",".join(f"{x:#x}" if isinstance(x, int) and key in HEX_FIELDS else str(x)
                         for x in value)
        return f"[{inner}]"
    if isinstance(value, dict):
        return "{" + " ".join(f"{k}={_value(k, x)}" for k, x in value.items()) + "}"
    return printable(value)


def fields_text(event: Event) -> str:
    """``mm=0x… pfn=0x… level=pte cause=reclaim``; an inferred step ends in ``(inferred)``."""
    parts = [f"{k}={_value(k, x)}" for k, x in event.fields.items() if k not in _QUIET]
    if event.fields.get("inferred"):
        parts.append("(inferred)")
    return " ".join(parts)
