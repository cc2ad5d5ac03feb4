"""The timeline's window onto a trace: what is shown, where the cursor is, and how keys
move them. Pure arithmetic on integer nanoseconds (no Textual), so every key's effect
is testable on its own and the widgets only draw it.

The window ``[t0, t1)`` is split into ``columns`` buckets of equal width; the cursor
is a time, shown in the column that holds it. Zooming keeps the cursor's column
where it is on screen (so the eye stays on it), panning moves by whole screens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
#: The narrowest window: one nanosecond per column.
MIN_NS_PER_COLUMN = 1
ZOOM_STEP = 2


@dataclass(frozen=True)
class View:
    """``[t0, t1)`` over ``columns`` columns, a ``cursor`` time, the trace's span
    ``[start, end]``, markers ``a``/``b`` (times or None)."""

    start: int
    end: int
    t0: int
    t1: int
    columns: int
    cursor: int
    a: int | None = None
    b: int | None = None

    def __post_init__(self) -> None:
        # Times are int64 everywhere below (numpy columns): a window over a trace that
        # spans nearly all of it must not reach past either end.
        width = min(self.t1 - self.t0, I64_MAX - I64_MIN)
        t0 = min(max(self.t0, I64_MIN), I64_MAX - width)
        if (t0, t0 + width) != (self.t0, self.t1):
            object.__setattr__(self, "t0", t0)
            object.__setattr__(self, "t1", t0 + width)

    @classmethod
    def fit(cls, start: int, end: int, columns: int) -> "View":
        """The whole trace, cursor at its start."""
        columns = max(1, columns)
        span = max(end - start + 1, columns * MIN_NS_PER_COLUMN)
        return cls(start, end, start, start + _round_up(span, columns), columns, start)

    # -- geometry ----------------------------------------------------------------
    @property
    def ns_per_column(self) -> int:
        return max(MIN_NS_PER_COLUMN, (self.t1 - self.t0) // self.columns)

    def column_of(self, t: int) -> int | None:
        """The column showing time ``t``, or None off screen."""
        if not self.t0 <= t < self.t1:
            return None
        return (t - self.t0) * self.columns // (self.t1 - self.t0)

    def column_span(self, column: int) -> tuple[int, int]:
        """``[a, b)``: the times column ``column`` covers (the same bucketing as
        :meth:`replayer.Replay.buckets`)."""
        width = self.t1 - self.t0
        a = self.t0 + -(-column * width // self.columns)
        b = self.t0 + -(-(column + 1) * width // self.columns)
        return a, b

    def time_at(self, column: int) -> int:
        return self.column_span(max(0, min(column, self.columns - 1)))[0]

    @property
    def cursor_column(self) -> int | None:
        return self.column_of(self.cursor)

    # -- keys ----------------------------------------------------------------------
    def resized(self, columns: int) -> "View":
        """The same time per column over a new width, cursor column kept."""
        columns = max(1, columns)
        return self._window(self.ns_per_column * columns, columns)

    def zoom(self, factor: float) -> "View":
        """Window width × ``factor`` (< 1 zooms in), about the cursor's screen position;
        never narrower than 1 ns per column, never wider than the trace."""
        width = int((self.t1 - self.t0) * factor)
        return self._window(width, self.columns)

    def fit_all(self) -> "View":
        cursor = min(max(self.cursor, self.start), self.end)
        return replace(View.fit(self.start, self.end, self.columns), cursor=cursor,
                       a=self.a, b=self.b)

    def step(self, columns: int) -> "View":
        """Move the cursor by ``columns`` columns; the window follows it off screen."""
        col = self.column_of(self.cursor)
        if col is None:
            col = 0 if self.cursor < self.t0 else self.columns - 1
        target = col + columns
        if 0 <= target < self.columns:
            return self.goto(self.column_span(target)[0], keep_window=True)
        return self.goto(self.cursor + columns * self.ns_per_column)

    def pan(self, screens: float) -> "View":
        """Move the window by ``screens`` widths; the cursor moves with it."""
        shift = int((self.t1 - self.t0) * screens)
        width = self.t1 - self.t0
        t0 = _clamp(self.t0 + shift, self.start - width // 2, self.end - width // 2)
        return replace(self, t0=t0, t1=t0 + width,
                       cursor=_clamp(self.cursor + (t0 - self.t0), self.start, self.end))

    def goto(self, t: int, keep_window: bool = False) -> "View":
        """Cursor at ``t`` (clamped to the trace); the window moves only if ``t`` is
        off screen (then ``t`` lands at a third of it), or never with ``keep_window``."""
        t = _clamp(t, self.start, self.end)
        if keep_window or self.t0 <= t < self.t1:
            return replace(self, cursor=t)
        width = self.t1 - self.t0
        t0 = t - width // 3
        return replace(self, t0=t0, t1=t0 + width, cursor=t)

    def home(self) -> "View":
        return self.goto(self.start)

    def end_(self) -> "View":
        return self.goto(self.end)

    def mark(self, which: str) -> "View":
        return replace(self, **{which: self.cursor})

    def _window(self, width: int, columns: int) -> "View":
        width = _round_up(max(width, columns * MIN_NS_PER_COLUMN), columns)
        full = _round_up(max(self.end - self.start + 1, columns), columns)
        if width >= full:
            return replace(View.fit(self.start, self.end, columns), cursor=self.cursor,
                           a=self.a, b=self.b)
        # Keep the cursor at the same fraction of the screen.
        frac_num = self.cursor - self.t0
        frac_den = max(1, self.t1 - self.t0)
        t0 = self.cursor - frac_num * width // frac_den
        t0 = _clamp(t0, self.start - width // 2, self.end - width // 2)
        return replace(self, t0=t0, t1=t0 + width, columns=columns)


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


def _clamp(x: int, lo: int, hi: int) -> int:
    return lo if x < lo else hi if x > hi else x


# -- times as people read them ---------------------------------------------------------
_UNITS = (("s", 10**9), ("ms", 10**6), ("µs", 10**3), ("ns", 1))


def unit_for(ns: int) -> tuple[str, int]:
    """The largest unit in which ``ns`` is at least 1."""
    for name, scale in _UNITS:
        if abs(ns) >= scale:
            return name, scale
    return "ns", 1


def fmt_span(ns: int) -> str:
    """``1.5 ms``, ``250 ns``, ``3.2 s``: three significant digits."""
    name, scale = unit_for(ns)
    if scale == 1:
        return f"{ns} ns"
    value = ns / scale
    return f"{value:.3g} {name}" if abs(value) < 1000 else f"{value:.0f} {name}"


def fmt_offset(ns: int, step: int) -> str:
    """A time relative to the trace start for an axis whose ticks are ``step`` apart:
    ``+1.5ms``, ``+20µs``; enough digits to tell neighbouring ticks apart."""
    name, scale = unit_for(max(step, 1))
    if scale == 1:
        return f"+{ns}ns"
    digits = 0
    while step % scale and (step * 10 ** digits) % scale and digits < 3:
        digits += 1
    return f"+{ns / scale:.{digits}f}{name}"


def nice_step(ns: float) -> int:
    """The 1-2-5 step at or above ``ns``."""
    step = 1
    while step * 10 <= ns:
        step *= 10
    for m in (1, 2, 5, 10):
        if step * m >= ns:
            return step * m
    return step * 10
