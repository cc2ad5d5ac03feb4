"""``ptviz view A B``: two traces on one time axis, a mixin of :class:`.app.TraceApp`.

B is shifted onto A's clock: aligned at their first events, or at the first marker of
each whose text holds ``--align MARKER``. Its lanes are computed from the same view,
shifted back, and set among A's: interleaved per CPU (A CPU 0, B CPU 0, …) or stacked
(all of A, then all of B; ``x`` toggles). Each counter lane shows A then B. The keys
that step through events, markers and findings, and the Events and Tables tabs, work on
A; the Summary tab shows ``ptviz diff A B``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from replayer import Replay
from replayer.diff import diff_reports
from replayer.report import build_report

from . import frame as frames
from .view import View


def lane_order(cpus_a: list[int], cpus_b: list[int], stacked: bool) -> list[tuple[str, int]]:
    """The lanes, top to bottom, as (trace, CPU)."""
    if stacked:
        return [("a", c) for c in cpus_a] + [("b", c) for c in cpus_b]
    out = []
    for c in sorted(set(cpus_a) | set(cpus_b)):
        if c in cpus_a:
            out.append(("a", c))
        if c in cpus_b:
            out.append(("b", c))
    return out


def first_marker(replay: Replay, text: str) -> int | None:
    return next((m["ts"] for m in replay.markers if text in m["text"]), None)


class CompareMode:
    """Needs from the app: ``replay``, ``replay_b``, ``cpus``, ``lane``, ``view``,
    ``notify``."""

    def _init_compare(self, path_b: str | None, align: str | None) -> None:
        self.path_b, self.align = path_b, align
        self.replay_b: Replay | None = None
        self.cpus_b: list[int] = []
        #: Added to B's times to put them on A's clock.
        self.b_shift = 0
        self.stacked = False

    @property
    def comparing(self) -> bool:
        return self.path_b is not None

    # -- lanes -----------------------------------------------------------------------
    def _lanes(self) -> list[tuple[str, int]]:
        if not self.comparing:
            return [("a", c) for c in self.cpus]
        return lane_order(self.cpus, self.cpus_b, self.stacked)

    def _lane_count(self) -> int:
        return len(self._lanes())

    def _lane_of(self, cpu: int, side: str = "a") -> int:
        """The lane showing ``cpu`` of trace ``side`` (the current lane if none)."""
        lanes = self._lanes()
        return lanes.index((side, cpu)) if (side, cpu) in lanes else self.lane

    def _lane_source(self, lane: int) -> tuple[Replay | None, int | None, int]:
        """(replay, CPU, shift onto A's clock) of lane ``lane``."""
        lanes = self._lanes()
        if not lanes:
            return None, None, 0
        side, cpu = lanes[max(0, min(lane, len(lanes) - 1))]
        return (self.replay, cpu, 0) if side == "a" else (self.replay_b, cpu, self.b_shift)

    def action_toggle_stack(self) -> None:
        if self.comparing:
            side_cpu = self._lanes()[self.lane] if self._lanes() else None
            self.stacked = not self.stacked
            if side_cpu is not None:
                self.lane = self._lane_of(side_cpu[1], side_cpu[0])
            self.request_frame()

    # -- the time axis ------------------------------------------------------------------
    def _align_b(self) -> None:
        """B's shift: its first event on A's, or the ``--align`` marker on A's."""
        a, b = self.replay, self.replay_b
        if a is None or b is None:
            return
        span_a, span_b = a.reader.time_span or (0, 0), b.reader.time_span or (0, 0)
        self.b_shift = span_a[0] - span_b[0]
        if self.align and a.loaded and b.loaded:
            ta, tb = first_marker(a, self.align), first_marker(b, self.align)
            if ta is None or tb is None:
                which = " and ".join(n for n, t in (("A", ta), ("B", tb)) if t is None)
                self.notify(f"no marker with {self.align!r} in {which}: aligned at the "
                            f"traces' starts", severity="warning", timeout=8, markup=False)
            else:
                self.b_shift = ta - tb

    def _span(self, span: tuple[int, int]) -> tuple[int, int]:
        """A's span widened to hold B's, shifted."""
        if self.replay_b is None:
            return span
        b = self.replay_b.reader.time_span or span
        return min(span[0], b[0] + self.b_shift), max(span[1], b[1] + self.b_shift)

    def _refit(self) -> None:
        """The view over both traces, once B is there (cursor kept)."""
        span = self._span(self.replay.reader.time_span or (0, 0))
        view = View.fit(span[0], span[1], self.view.columns)
        self.view = replace(view, cursor=min(max(self.view.cursor, span[0]), span[1]))

    # -- frames --------------------------------------------------------------------------
    def _with_b(self, frame: frames.Frame, view: View, mm_b: int | None) -> frames.Frame:
        """``frame`` (A's) with B's lanes and counters set in (called in the frame
        worker)."""
        b = self.replay_b
        if b is None:
            for lane in frame.lanes:
                lane.label = f"A CPU {lane.cpu}"
            return frame
        shift = self.b_shift
        shifted = replace(view, t0=view.t0 - shift, t1=view.t1 - shift,
                          cursor=view.cursor - shift, start=view.start - shift,
                          end=view.end - shift, a=None, b=None)
        fb = frames.compute_frame(b, shifted, list(self.cpus_b), mm_b, frame.serial)
        by_side = {("a", lane.cpu): lane for lane in frame.lanes}
        by_side.update({("b", lane.cpu): lane for lane in fb.lanes})
        lanes = []
        for side, cpu in lane_order([l.cpu for l in frame.lanes], [l.cpu for l in fb.lanes],
                                    self.stacked):
            lane = by_side[(side, cpu)]
            lane.label = f"{side.upper()} CPU {cpu}"
            lanes.append(lane)
        counters = []
        for ca, cb in zip(frame.counters, fb.counters):
            counters += [replace(ca, label=f"A {ca.label}"), replace(cb, label=f"B {cb.label}")]
        return replace(frame, lanes=lanes, counters=counters)

    # -- the summary ----------------------------------------------------------------------
    def _summary_text(self) -> str:
        from ..cli.diff import render as render_diff
        from ..cli.replay_text import render as render_report
        if self.replay_b is None:
            return render_report(build_report(self.replay))
        return render_diff(diff_reports(build_report(self.replay),
                                        build_report(self.replay_b)))

    def _b_top_mm(self) -> Any:
        peaks = dict(self.replay_b.final.mm_peak) if self.replay_b is not None else {}
        return max(peaks, key=peaks.get) if peaks else None
