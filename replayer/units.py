"""Times, sizes and counts as users type and read them.

Times are integer nanoseconds inside ptviz. Users type seconds (``1.5``) or a
value with a unit (``1.5ms``, ``250us``, ``3s``, ``20ns``); sizes in bytes or
with a binary unit (``1M`` = 1 MiB, ``50G``, ``4KiB``), as the kernel's own
``memparse`` reads them; counts plain or with a decimal one (``500k``, ``2M`` =
two million). One grammar reads sizes and counts (:func:`parse_size`,
:func:`parse_count`); errors name the argument.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

from .errors import UsageError

_TIME_UNITS = {"": 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1,
               "m": 60 * 10**9, "min": 60 * 10**9}
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµ]*)\s*$")


def parse_time(text: str, what: str = "time") -> int:
    """``"1.5ms"`` → 1500000 (ns). A bare number is seconds. Exact: no float rounding."""
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _TIME_UNITS:
        raise UsageError(f"{what} {text!r}: expected a number of seconds or a value with "
                         f"a unit (ns, us, ms, s), e.g. 1.5ms")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise UsageError(f"{what} {text!r} is not a number") from None
    # Checked before any arithmetic: 1e999999999 would overflow the context, or build a
    # billion-digit integer. Trace times are int64 nanoseconds.
    ns = number * _TIME_UNITS[unit] if number.is_zero() or number.adjusted() < 30 else None
    if ns is None or (not ns.is_zero() and (ns.adjusted() > 18 or abs(ns) >= 1 << 63)):
        raise UsageError(f"{what} {text!r}: out of range (trace times are 64-bit "
                         f"nanoseconds, about 292 years)")
    return int(ns)


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


class AmountError(UsageError):
    """A size or count that cannot be used. The message names the argument and the value,
    then ``detail``: the ``problem`` (``not a number``, ``unknown unit 'Q'``, ``not a whole
    number``, ``out of range``) and, for a syntax problem, what is accepted. Callers that
    say more (a range) use the parts."""

    def __init__(self, what: str, text: str, problem: str, accepted: str = "") -> None:
        self.problem = problem
        self.detail = f"{problem}; expected {accepted}" if accepted else problem
        super().__init__(f"{what} {shown(text)}: {self.detail}")


def shown(text: str) -> str:
    """A command-line value as a one-line message shows it: quoted only when it must be."""
    return text if text and text.isprintable() and text == text.strip() else repr(text)


# A decimal number (ASCII digits only: int() and Decimal() would also take "٣" or "1_0"),
# then a unit, on one line (spaces between them). Sizes and counts share it; only what a
# unit multiplies by differs.
_AMOUNT = re.compile(r"\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
                     r" *([A-Za-z]*)\s*", re.ASCII)
_BINARY = {"": 1, "b": 1, **{f"{p}{b}": 1 << (10 * (i + 1)) for i, p in enumerate("kmgtp")
                               for b in ("", "b", "ib")}}
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
#: An amount's decimal exponent beyond this is out of any range ptviz has (10^30); the
#: exact product of 1e999999999 would be a billion-digit integer.
_MAX_EXPONENT = 30


def parse_size(text: str, what: str = "size") -> int:
    """Bytes as users type them: ``4096``, ``64M``, ``1.5G``, ``4KiB``, ``2mb``.

    Suffixes are **binary**, as the kernel's ``memparse`` reads them: K = 2^10, M = 2^20,
    G = 2^30, T = 2^40, P = 2^50, in either case, with or without ``B`` or ``iB`` (``4K``,
    ``4KB``, ``4KiB`` alike); ``B`` or none is bytes. The number may have a fraction or an
    exponent (``1.5G``, ``1e3``) as long as the bytes come out whole; a sign is kept (the
    caller checks the range). Anything else raises :class:`AmountError` naming ``what``.
    """
    return _amount(text, what, _BINARY, "bytes, or a number with K, M, G, T or P (powers of "
                   "1024), e.g. 64M", " of bytes")


def parse_count(text: str, what: str = "count") -> int:
    """A number of things as users type it: ``100000``, ``500k``, ``2M``, ``1.5G``, ``1e6``.

    Suffixes are **decimal**: k = 10^3, M = 10^6, G = 10^9, T = 10^12, in either case
    (``2M`` events is two million). Fractions and exponents are fine when the count comes
    out whole; a sign is kept (the caller checks the range). Anything else raises
    :class:`AmountError` naming ``what``.
    """
    return _amount(text, what, _DECIMAL, "a whole number, or one with k, M, G or T (powers "
                   "of 1000), e.g. 500k", "")


def _amount(text: str, what: str, units: dict[str, int], accepted: str, of: str) -> int:
    m = _AMOUNT.fullmatch(text)
    if m is None:
        raise AmountError(what, text, "not a number", accepted)
    scale = units.get(m[2].lower())
    if scale is None:
        raise AmountError(what, text, f"unknown unit {m[2]!r}", accepted)
    number = Decimal(m[1])
    if not number.is_zero() and abs(number.adjusted()) > _MAX_EXPONENT:
        raise AmountError(what, text, "out of range" if number.adjusted() > 0 else
                          f"not a whole number{of}")
    with localcontext() as ctx:
        ctx.prec = len(m[1]) + 40            # exact: 4096.000…01 must not round to 4096
        exact = number * scale
    if exact != exact.to_integral_value():
        raise AmountError(what, text, f"not a whole number{of}")
    return int(exact)


SIZE_SUFFIXES = (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10))


def format_size(n: int) -> str:
    """Bytes the shortest way :func:`parse_size` reads them back: ``2M``, ``1073741820K``,
    ``1000``."""
    return min([f"{n // s}{u}" for u, s in SIZE_SUFFIXES if n > 0 and n % s == 0] + [str(n)],
               key=len)


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
