"""What the keys and the mouse do in ``ptviz view``: a mixin of :class:`.app.TraceApp`.

Each action moves the :class:`~.view.View` (pure arithmetic, tested on its own) or picks
what to show, then asks for a frame; none reads the trace itself but through the
replay's queries.
"""

from __future__ import annotations

from replayer import TIMELINE_CLASSES, BadInput
from replayer.units import parse_moment

from .glyphs import PRIORITY
from .screens import GotoScreen, HelpScreen
from .text import markup_safe as _esc
from .text import printable
from .widgets import Lanes


class KeyActions:
    """Key bindings and mouse messages. Needs ``view``, ``replay``, ``cpus``, ``lane``,
    ``set_view`` and ``request_frame`` from the app."""

    # -- actions ------------------------------------------------------------------
    def _has_view(self) -> bool:
        return self.view is not None and self.replay is not None

    def action_zoom(self, factor: float) -> None:
        if self._has_view():
            self.set_view(self.view.zoom(float(factor)))

    def action_fit(self) -> None:
        if self._has_view():
            self.set_view(self.view.fit_all())

    def action_step(self, columns: int) -> None:
        if self._has_view():
            self.set_view(self.view.step(int(columns)))

    def action_pan(self, screens: int) -> None:
        if self._has_view():
            self.set_view(self.view.pan(int(screens)))

    def action_home(self) -> None:
        if self._has_view():
            self.set_view(self.view.home())

    def action_end(self) -> None:
        if self._has_view():
            self.set_view(self.view.end_())

    def action_lane(self, delta: int) -> None:
        if not self.cpus:
            return
        self.lane = max(0, min(self._lane_count() - 1, self.lane + int(delta)))
        self._main(Lanes).show_lane(self.lane)
        self._update_status()

    def action_cycle_class(self, delta: int) -> None:
        order = [TIMELINE_CLASSES.index(c) for c in PRIORITY]
        at = order.index(self.selected_class)
        self.selected_class = order[(at + int(delta)) % len(order)]
        self._update_status()

    def action_next_event(self, direction: int) -> None:
        if not self._has_view():
            return
        # From the event n/N last landed on (while the cursor is still there), so that
        # events of the same nanosecond are stepped through one by one.
        stepped = self._stepped
        index = stepped[1] if stepped is not None and stepped[0] == self.view.cursor else None
        hit = self.replay.next_event(self.view.cursor, {self.selected_class}, self.cpus,
                                     forward=int(direction) > 0, index=index)
        cls = TIMELINE_CLASSES[self.selected_class]
        if hit is None:
            self.notify(f"no {'later' if int(direction) > 0 else 'earlier'} {cls} event",
                        timeout=3)
            return
        ts, index, cpu = hit
        self._stepped = (ts, index)
        self.lane = self._lane_of(cpu)
        self.status_extra = f"event {index:,}"
        self.jump_to(ts)

    def action_next_marker(self, direction: int) -> None:
        if not self._has_view():
            return
        t = self.view.cursor
        times = [m["ts"] for m in self.replay.markers]
        picked = (min((x for x in times if x > t), default=None) if int(direction) > 0 else
                  max((x for x in times if x < t), default=None))
        if picked is None:
            self.notify("no more markers", timeout=3)
            return
        text = next(m["text"] for m in self.replay.markers if m["ts"] == picked)
        self.status_extra = f"marker: {_esc(text)[:60]}"
        self.jump_to(picked)

    def action_next_finding(self, direction: int) -> None:
        if not self._has_view():
            return
        if not self.replay.loaded:
            self.notify("findings are known when the load ends", timeout=3)
            return
        t = self.view.cursor
        findings = self.replay.findings
        fwd = int(direction) > 0
        cands = [f for f in findings if (f.ts > t if fwd else f.ts < t)]
        if not cands:
            self.notify(f"no {'later' if fwd else 'earlier'} finding"
                        + ("" if findings else " (this trace has none)"), timeout=3)
            return
        f = cands[0] if fwd else cands[-1]
        if f.cpu is not None and f.cpu in self.cpus:
            self.lane = self._lane_of(f.cpu)
        self.status_extra = f"{f.kind}: {_esc(f.message)[:80]}"
        self.jump_to(f.ts)

    def action_mark(self, which: str) -> None:
        if self._has_view():
            self.set_view(self.view.mark(which))

    def action_goto(self) -> None:
        if self._has_view():
            self.push_screen(GotoScreen(), self._goto_typed)

    def _goto_typed(self, text: str | None) -> None:
        if not text or not self._has_view():
            return
        try:
            t = parse_moment(text, self.view.start)
        except BadInput as exc:
            self.notify(printable(exc), severity="error", timeout=5, markup=False)
            return
        self.jump_to(t)

    def action_cycle_mm(self) -> None:
        if not self._has_view():
            return
        mms = sorted(m for m, b in list(self.replay.final.mm_peak.items()) if b)
        if mms:
            self.mm = mms[(mms.index(self.mm) + 1) % len(mms)] if self.mm in mms else mms[0]
            self.request_frame()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """With no trace to show (the error screen), only quitting is offered."""
        if self.error is not None and action not in ("quit", "command_palette"):
            return False
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_idle(self) -> None:
        """Hide the lanes of CPUs with no event in the whole trace (a 64-CPU machine
        running a 4-thread workload), or show them again."""
        if self.replay is None:
            return
        if self.hidden_cpus:
            self.cpus, self.hidden_cpus = sorted(set(self.cpus) | set(self._all_cpus)), 0
        else:
            busy = [c for c in self.cpus if len(self.replay.timeline.column(c))]
            self._all_cpus, self.hidden_cpus = list(self.cpus), len(self.cpus) - len(busy)
            self.cpus = busy
        self.lane = min(self.lane, max(0, self._lane_count() - 1))
        self.request_frame()

    def jump_to(self, t: int) -> None:
        if self._has_view():
            self.set_view(self.view.goto(t))

    # -- mouse --------------------------------------------------------------------
    def on_lanes_clicked(self, message: Lanes.Clicked) -> None:
        if self._has_view():
            self.lane = message.lane
            self.set_view(self.view.goto(self.view.column_span(message.column)[0],
                                         keep_window=True))
            self._main(Lanes).refresh()

    def on_lanes_zoom(self, message: Lanes.Zoom) -> None:
        if not self._has_view():
            return
        view = self.view
        if message.column is not None:
            view = view.goto(view.column_span(message.column)[0], keep_window=True)
        self.set_view(view.zoom(message.factor))
