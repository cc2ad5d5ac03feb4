"""What the tabs do, a mixin of :class:`.app.TraceApp`: fill them when the trace is
loaded (in workers), follow the cursor, filter and search events, sort tables, open a
table's lifecycle, jump to what the user picks.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import numpy as np
from textual import work
from textual.css.query import NoMatches
from textual.widgets import Input, Static, TabbedContent, Tree
from textual.worker import get_current_worker

from replayer import BadInput
from replayer.filters import parse_filter, searchable, select
from replayer.lifecycle import lifecycle
from ..words import printable
from .rowlist import RowList
from .sources import TABLE_COLUMNS, EventSource, TableSource
from .tabs import EventList, LifecycleScreen, TableList

#: Terminals shorter than this start with the tabs hidden (``t`` shows them).
PANE_FROM_HEIGHT = 34


class TabActions:
    """Needs from the app: ``replay``, ``view``, ``cpus``, ``lane``, ``_main``,
    ``set_view``, ``request_frame``, ``notify``, ``push_screen``."""

    def _init_tabs(self) -> None:
        #: (times, CPUs) of the events marked on the lanes, or None.
        self.highlight: tuple[np.ndarray, np.ndarray] | None = None
        self.highlight_what = ""
        self.pane_wanted: bool | None = None        # None: by the terminal's height
        self._search: tuple[str, ...] = ()
        self._skip_follow = False
        self._follow_serial = 0         # the latest follow; older ones are not shown

    # -- showing the pane --------------------------------------------------------------
    def _pane_shown(self) -> bool:
        stack = self.screen_stack             # empty once the app is closing
        return bool(stack) and not stack[0].has_class("no-pane")

    def _place_pane(self, height: int) -> None:
        show = self.pane_wanted if self.pane_wanted is not None else height >= PANE_FROM_HEIGHT
        if self.screen_stack:
            self.screen_stack[0].set_class(not show, "no-pane")

    def action_toggle_pane(self) -> None:
        self.pane_wanted = not self._pane_shown()
        self._place_pane(self.size.height)
        if not self.pane_wanted:
            self._focus_lanes()
        else:
            self._fill_shown_tab()

    def action_tab(self, name: str) -> None:
        """Show the pane on tab ``name`` and put the focus in it."""
        self.pane_wanted = True
        self._place_pane(self.size.height)
        tabs = self._main("#tabs", TabbedContent)
        tabs.active = f"tab-{name}"
        self._fill_shown_tab()
        focus = {"events": "#events", "tables": "#tables", "findings": "#findings"}.get(name)
        if focus:
            self._main(focus).focus()

    def action_leave_pane(self) -> None:
        """``escape``: close an open filter or search line, else back to the lanes."""
        for box in ("#filter", "#search"):
            widget = self._main(box, Input)
            if widget.has_class("open"):
                widget.remove_class("open")
                self._main("#events").focus()
                return
        self._focus_lanes()

    def _focus_lanes(self) -> None:
        from .widgets import Lanes
        self._main(Lanes).focus()

    # -- filling -------------------------------------------------------------------
    def _fill_tabs(self) -> None:
        """After the load: the event list and the findings (cheap); the tables and the
        summary when their tab is first shown, off the UI thread."""
        self._main("#events", EventList).set_source(EventSource(self.replay))
        self._follow(self.view.cursor)
        self._fill_findings()
        self._filled: set[str] = set()
        self._fill_shown_tab()

    def _fill_shown_tab(self) -> None:
        filled = getattr(self, "_filled", None)
        if filled is None or not self._pane_shown():
            return                                  # not loaded yet, or hidden
        active = self._main("#tabs", TabbedContent).active
        if active == "tab-tables" and "tables" not in filled:
            filled.add("tables")
            self._tables_worker()
        elif active == "tab-summary" and "summary" not in filled:
            filled.add("summary")
            self._summary_worker()

    def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        self._fill_shown_tab()

    def _grow_events(self) -> None:
        """While loading: the unfiltered list grows with what is loaded."""
        with suppress(NoMatches):
            events = self._main("#events", EventList)
            if isinstance(events.source, EventSource) and events.source.indexes is None:
                events._resize()
                events.refresh()

    @work(thread=True, exclusive=True, group="tables")
    def _tables_worker(self) -> None:
        source = TableSource(self.replay)
        self.call_from_thread(self._show_tables, source)

    def _show_tables(self, source: TableSource) -> None:
        with suppress(NoMatches):
            totals = source.totals()
            leaked = int((source.t.leaked_since >= 0).sum())
            self._main("#table-totals", Static).update(
                "  ".join(f"{name.replace('_', ' ')} {n:,}" for name, n in totals.items())
                + (f"  (leaked before their free: {leaked:,})" if leaked else "")
                + "   o/O sort, r reverse, enter: the page's lifecycle")
            self._main("#tables", TableList).set_source(source)

    @work(thread=True, exclusive=True, group="summary")
    def _summary_worker(self) -> None:
        text = self._summary_text()
        self.call_from_thread(self._show_summary, text)

    def _show_summary(self, text: str) -> None:
        with suppress(NoMatches):
            self._main("#summary", Static).update(
                "\n".join(printable(line) for line in text.split("\n")))

    def _fill_findings(self) -> None:
        tree = self._main("#findings", Tree)
        tree.clear()
        findings = self.replay.findings
        tree.root.set_label(f"{len(findings)} finding(s)"
                            + (f", {sum(self.replay.suppressed.values())} suppressed "
                               f"(the trace lost events around them)"
                               if self.replay.suppressed else ""))
        by_kind: dict[str, list] = {}
        for f in findings:
            by_kind.setdefault(f.kind, []).append(f)
        for kind, group in by_kind.items():
            node = tree.root.add(f"{kind} ({len(group)})", expand=True)
            for f in group:
                node.add_leaf(printable(f"{f.ts / 1e9:.9f} s  CPU {f.cpu}  {f.message}"),
                              data=f)
        tree.root.expand()

    # -- the cursor and the events list ---------------------------------------------
    def _follow(self, t: int) -> None:
        """The events list opens at the first event at or after the cursor: found and
        its rows decoded in a worker (a chunk's decoding, off the UI thread), then
        selected, unless something newer moved the list meanwhile."""
        if self._skip_follow:
            self._skip_follow = False
            return
        with suppress(NoMatches):
            events = self._main("#events", EventList)
            if isinstance(events.source, EventSource):
                self._follow_serial += 1
                self._follow_worker(events.source, t, self._follow_serial,
                                    max(1, events.size.height))

    @work(thread=True, exclusive=True, group="follow")
    def _follow_worker(self, source: EventSource, t: int, serial: int, height: int) -> None:
        row = source.row_at_index(self.replay.index_at(t))
        source.prefetch(row, height)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._show_follow, source, row, serial)

    def _show_follow(self, source: EventSource, row: int, serial: int) -> None:
        with suppress(NoMatches):
            events = self._main("#events", EventList)
            if serial == self._follow_serial and events.source is source:
                events.select(row, place=0.33)

    def _select_event_row(self, row: int) -> None:
        """Select ``row`` of the events list for the user (a search's match): a cursor
        follow still under way no longer moves the list."""
        self._follow_serial += 1
        with suppress(NoMatches):
            self._main("#events", EventList).select(row, 0.33)

    def on_row_list_chosen(self, message: RowList.Chosen) -> None:
        source = message.rows.source
        if isinstance(source, EventSource):
            event = source.event(message.row)
            self._skip_follow = True
            self._follow_serial += 1
            self._go(event.ts, event.cpu)
        elif isinstance(source, TableSource):
            self._open_lifecycle(source.tid(message.row))

    def _go(self, ts: int, cpu: int | None) -> None:
        if cpu is not None and cpu in self.cpus:
            self.lane = self._lane_of(cpu)
        self.jump_to(ts)

    # -- filter and search ----------------------------------------------------------------
    def action_filter(self) -> None:
        self.action_tab("events")
        box = self._main("#filter", Input)
        box.add_class("open")
        box.focus()

    def action_search(self) -> None:
        self.action_tab("events")
        box = self._main("#search", Input)
        box.add_class("open")
        box.focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "filter":
            self._apply_filter(message.value)
        elif message.input.id == "search":
            self._search = tuple(message.value.lower().split())
            message.input.remove_class("open")
            self._main("#events").focus()
            if self._search:
                self._search_worker(1)

    def _apply_filter(self, text: str) -> None:
        try:
            flt = parse_filter(text, [k.name for k in self.replay.reader.kinds])
        except BadInput as exc:
            self.notify(printable(exc), severity="error", timeout=6, markup=False)
            return
        box = self._main("#filter", Input)
        box.remove_class("open")
        self._main("#events").focus()
        if flt.empty:
            self.highlight, self.highlight_what = None, ""
            self._main("#events", EventList).set_source(EventSource(self.replay))
            self._follow(self.view.cursor)
            self.request_frame()
            return
        self._main("#events", EventList).set_source(
            EventSource(self.replay, np.zeros(0, np.int64), note="filtering…"))
        self._filter_worker(flt, text.strip())

    @work(thread=True, exclusive=True, group="filter")
    def _filter_worker(self, flt: Any, text: str) -> None:
        worker = get_current_worker()
        idx, ts, cpus = select(self.replay, flt, cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.call_from_thread(self._show_filtered, idx, ts, cpus, text)

    def _show_filtered(self, idx: np.ndarray, ts: np.ndarray, cpus: np.ndarray,
                       text: str) -> None:
        self.highlight, self.highlight_what = (ts, cpus), f"filter: {text}"
        with suppress(NoMatches):
            self._main("#events", EventList).set_source(
                EventSource(self.replay, idx, note="nothing matches"))
            self._follow(self.view.cursor)
        self.request_frame()

    def on_event_list_search_next(self, message: EventList.SearchNext) -> None:
        if self._search:
            self._search_worker(message.direction)
        else:
            self.action_search()

    @work(thread=True, exclusive=True, group="search")
    def _search_worker(self, direction: int) -> None:
        worker = get_current_worker()
        events = self._main("#events", EventList)
        source, start = events.source, events.selected
        words = self._search
        rows = range(start + 1, len(source)) if direction > 0 else range(start - 1, -1, -1)
        for row in rows:
            if worker.is_cancelled:
                return
            text = searchable(source.event(row))
            if all(w in text for w in words):
                self.call_from_thread(self._select_event_row, row)
                return
        self.call_from_thread(self.notify, f"no {'later' if direction > 0 else 'earlier'} "
                              f"event with {' '.join(words)!r}", timeout=3)

    # -- tables ---------------------------------------------------------------------
    def on_table_list_sort(self, message: TableList.Sort) -> None:
        tables = self._main("#tables", TableList)
        source = tables.source
        if not isinstance(source, TableSource):
            return
        column = (source.sort_column + message.step) % len(TABLE_COLUMNS)
        source.sort(column, (not source.reverse) if message.reverse else source.reverse)
        tables.select(0)
        tables.refresh()

    def _open_lifecycle(self, tid: int) -> None:
        rec = self.replay.log.record(tid)
        screen = LifecycleScreen(f"PTE table page {rec['pfn']:#x} (mm {rec['mm']:#x}, span "
                                 f"{rec['addr']:#x}): its whole life; enter jumps to a step")

        def closed(step: dict | None) -> None:
            if step is not None:
                self._go(step["ts"], step["cpu"])

        self.push_screen(screen, closed)
        self._lifecycle_worker(screen, tid, rec["pfn"])

    @work(thread=True, exclusive=True, group="lifecycle")
    def _lifecycle_worker(self, screen: LifecycleScreen, tid: int, pfn: int) -> None:
        worker = get_current_worker()
        steps = lifecycle(self.replay, tid, lambda: worker.is_cancelled)
        if worker.is_cancelled:
            return
        ts = np.array([s["ts"] for s in steps], np.int64)
        cpus = np.array([s["cpu"] for s in steps], np.int64)

        def show() -> None:
            with suppress(NoMatches):
                screen.show(steps)
            self.highlight, self.highlight_what = (ts, cpus), f"table {pfn:#x}"
            self.request_frame()
        self.call_from_thread(show)

    # -- findings -------------------------------------------------------------------
    def on_tree_node_selected(self, message: Tree.NodeSelected) -> None:
        f = message.node.data
        if f is not None:
            self._go(f.ts, f.cpu)

