"""The main screen's two text lines: the header (what the trace is, the view window,
the cursor, markers A/B; in compare mode, trace B too) and the status line (the
events under the cursor's column, the class ``n``/``N`` jump to, marks, progress,
truncation, hidden CPUs). A mixin of :class:`.app.TraceApp`: both read its state
(``replay``, ``view``, ``frame``, …) and are redrawn whenever it changes."""

from __future__ import annotations

from textual.widgets import Static

from replayer import TIMELINE_CLASSES
from replayer.units import format_ts

from . import frame as frames
from .glyphs import LOOKS
from .text import markup_safe as _esc
from .view import fmt_span


class HeaderLines:
    """The header and status lines of :class:`.app.TraceApp` (a mixin)."""

    def _update_header(self) -> None:
        replay, view = self.replay, self.view
        if replay is None or view is None:
            return
        h = replay.header
        arch = h.get("arch") or {}
        k = h.get("kernel") or {}
        config = " ".join(f"{name}={_yn(k.get(key))}" for key, name in
                          (("pt_reclaim", "PT_RECLAIM"), ("table_free", "free"),
                           ("sync", "sync")) if k.get(key) is not None)
        events = replay.reader.event_count
        line1 = (f"[b]{'A ' if self.comparing else ''}{_esc(self.path)}[/b]  "
                 f"{_esc(h.get('source') or '?')} · "
                 f"{_esc(arch.get('name', '?'))}{' (assumed)' if arch.get('inferred') else ''}"
                 f" · kernel {_esc(k.get('version', '?'))} "
                 f"({_esc(config)}) · "
                 f"{len(self.cpus)} CPUs · {events:,} events in "
                 f"{fmt_span(view.end - view.start)}")
        if self.comparing:
            b = self.replay_b
            kb = (b.header.get("kernel") or {}) if b is not None else {}
            line1 += (f"   [b]B {_esc(self.path_b)}[/b] kernel "
                      f"{_esc(kb.get('version', '?'))}, "
                      + (f"{b.reader.event_count:,} events, shifted "
                         f"{fmt_span(self.b_shift)}" if b is not None else "opening…"))
        marks = ""
        if view.a is not None or view.b is not None:
            marks = "  " + "  ".join(f"{n.upper()} +{fmt_span(t - view.start)}" for n, t in
                                     (("a", view.a), ("b", view.b)) if t is not None)
            if view.a is not None and view.b is not None:
                marks += f"  Δt {fmt_span(abs(view.b - view.a))}"
        line2 = (f"view +{fmt_span(view.t0 - view.start)} … +{fmt_span(view.t1 - view.start)}"
                 f" ({fmt_span(view.ns_per_column)}/col)   cursor {format_ts(view.cursor)} s "
                 f"(+{fmt_span(view.cursor - view.start)}){marks}")
        self._main("#header", Static).update(line1 + "\n" + line2)

    def _update_status(self) -> None:
        parts = []
        frame, view = self.frame, self.view
        replay, cpu, shift = self._lane_source(self.lane)
        if frame is not None and view is not None and replay is not None:
            col = view.cursor_column
            if col is not None:
                t0, t1 = view.column_span(col)
                kinds = frames.bucket_kinds(replay, cpu, t0 - shift, t1 - shift)
                what = ", ".join(f"{_esc(name)} {n}" for name, n in kinds[:5]) or "no events"
                side = ("B " if replay is self.replay_b else "A ") if self.comparing else ""
                parts.append(f"{side}CPU {cpu} · {what}")
        cls = TIMELINE_CLASSES[self.selected_class]
        parts.append(f"n/N: [{LOOKS[cls].colour}]{LOOKS[cls].glyph}[/] {cls}")
        if self.status_extra:
            parts.append(self.status_extra)
        if self.highlight is not None:
            parts.append(f"[reverse]{_esc(self.highlight_what)}: {len(self.highlight[0]):,} "
                         f"marked[/]")
        if self.progress_text:
            parts.append(f"[b]{self.progress_text}[/b]")
        if replay is not None and replay.reader.truncated_at is not None:
            parts.append(f"[b red]cut short at byte {replay.reader.truncated_at:,}: events "
                         f"after it are missing[/]")
        if self.hidden_cpus:
            parts.append(f"{self.hidden_cpus} idle CPUs hidden (e)")
        self._main("#status", Static).update("  │  ".join(parts))


def _yn(value) -> str:
    return "y" if value is True else "n" if value is False else str(value)



