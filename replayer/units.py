"""Times and sizes as users type and read them.

Times are integer nanoseconds inside ptviz. Users type seconds (``1.5``) or a
value with a unit (``1.5ms``, ``250us``, ``3s``, ``20ns``); sizes in bytes or
with a binary unit (``1M`` = 1 MiB, ``50G``, ``4KiB``), as the kernel's own
``memparse`` reads them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .errors import UsageError

_TIME_UNITS = {"": 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1,
               "m": 60 * 10**9, "min": 60 * 10**9}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
               "p": 1 << 50}
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµ]*)\s*$")


def parse_time(text: str, what: str = "time") -> int:
    """``"1.5ms"`` → 1500000 (ns). A bare number is seconds. Exact: no float rounding."""
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _TIME_UNITS:
        raise UsageError(f"{what} {text!r}: expected a number of seconds or a value with "
                         f"a unit (ns, us, ms, s), e.g. 1.5ms")
    try:
        return int(Decimal(m.group(1)) * _TIME_UNITS[unit])
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise UsageError(f"{what} {text!r} is not a number") from None


def parse_moment(text: str, start: int, what: str = "time") -> int:
    """A time on the trace clock as users type it: ``"12.5"``, ``"12.5s"``, ``"1.5ms"``
    (absolute), or ``"+1.5ms"`` (``start`` + 1.5 ms). A negative time is refused."""
    text = text.strip()
    if text.startswith("+"):
        return start + parse_time(text[1:], what)
    if text.startswith("-"):
        raise UsageError(f"{what} {text!r}: a time is not negative: give it on the trace "
                         f"clock, or +OFFSET from the trace's start")
    return parse_time(text, what)


def parse_size(text: str, what: str = "size") -> int:
    """``"1M"`` → 1048576, ``"50G"``, ``"4KiB"``, ``"4096"``; binary units, as memparse."""
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else None
    if unit is not None and unit.endswith("ib"):
        unit = unit[:-2]
    elif unit is not None and len(unit) == 2 and unit.endswith("b"):
        unit = unit[:-1]
    if m is None or unit not in _SIZE_UNITS:
        raise UsageError(f"{what} {text!r}: expected bytes or a value with a unit "
                         f"(K, M, G, T), e.g. 50G")
    return int(Decimal(m.group(1)) * _SIZE_UNITS[unit])


def format_ts(ns: int) -> str:
    """Absolute timestamp in seconds with all nine digits: ``12.000345678``."""
    sign = "-" if ns < 0 else ""
    s, frac = divmod(abs(ns), 10**9)
    return f"{sign}{s}.{frac:09d}"


def format_duration(ns: int) -> str:
    """A span in the largest unit that keeps it ≥ 1: ``1.50 ms``, ``320 ns``."""
    a = abs(ns)
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if a >= scale:
            return f"{ns / scale:.3g} {unit}" if a < 100 * scale else f"{ns / scale:.1f} {unit}"
    return f"{ns} ns"


def format_bytes(n: int) -> str:
    """``1536`` → ``1.5 KiB``; exact bytes below 1 KiB."""
    a = abs(n)
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if a >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
