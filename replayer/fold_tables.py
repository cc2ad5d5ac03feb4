"""Table-page handlers of the fold: allocation, entries, detach, queue, free.

A mixin of :class:`replayer.fold.Folder`; see there for the state it changes
and the ``recording`` contract (the state must change the same way whether
or not history is being recorded, so that seeking reaches the same state).
"""

from __future__ import annotations

from typing import Any

from . import vocab as v
from .state import (ATTACHED, DETACH_CODES, DETACHED, FREE_CODES, QUEUED, T_ALLOC_IDX,
                    T_ALLOC_TS, T_LEAK_TS,
                    T_DETACH_CAUSE, T_DETACH_TS, T_FREE_IDX, T_FREE_PATH, T_FREE_TS,
                    T_QUEUE_TS, T_VIA, VIA_CODES)


RECLAIM, COLLAPSE = DETACH_CODES["reclaim"], DETACH_CODES["collapse"]
_PROVENANCE = ((v.TABLE_ALLOC, "table_alloc"), (v.TABLE_DETACH, "table_detach"),
               (v.TABLE_QUEUE, "table_queue"), (v.TABLE_FREE, "table_free"))
_INFERRED = {kind: v.KIND_BY_ID[kind].fields.index("inferred") for kind, _ in _PROVENANCE}
_CAUSE = v.KIND_BY_ID[v.TABLE_DETACH].fields.index("cause")
CLS_RECLAIM, CLS_RECLAIM_FREE, CLS_LEAK, CLS_LEAK_FREE = (
    v.TIMELINE_CLASSES.index(c) for c in ("reclaim", "reclaim_free", "leak", "leak_free"))


def appenders(series) -> tuple:
    """``(values.append, ts.append)`` of a :class:`.series.Series` being recorded."""
    return series.values.append, series.ts.append


class TableHandlers:
    # -- accounting --------------------------------------------------------
    def _account(self, mm: int, level: int, sign: int, ts: int) -> None:
        """One table of ``level`` attached (sign 1) to or detached (-1) from ``mm``."""
        s = self.state
        b = s.mm_bytes.get(mm, 0) + sign * self._level_bytes[level if 0 < level < 5 else 0]
        s.mm_bytes[mm] = b
        if b > s.mm_peak.get(mm, 0):
            s.mm_peak[mm] = b
        key = (mm, level)
        s.mm_tables[key] = s.mm_tables.get(key, 0) + sign
        if self.recording:
            # Series appends inlined (value, then time, as Series.append does): a
            # table's life makes about twelve, the bulk of its cost.
            if level == v.LEVEL_PTE:
                self._pte_attached += sign
                add_value, add_ts = self._add_attached
                add_value(self._pte_attached)
                add_ts(ts)
            pair = self._mm_series.get(mm)
            if pair is None:
                pair = self._mm_series[mm] = appenders(self.series.mm_bytes(mm))
            pair[0](b)
            pair[1](ts)

    def _pages(self, sign: int, ts: int) -> None:
        """One table page allocated (1) or freed (-1): the global PageTables count."""
        s = self.state
        s.pt_bytes += sign * self.sizes.page_size
        if s.pt_bytes > s.pt_peak:
            s.pt_peak = s.pt_bytes
        if self.recording:
            add_value, add_ts = self._add_page_table_bytes
            add_value(s.pt_bytes)
            add_ts(ts)

    def _in_flight_changed(self, sign: int, ts: int) -> None:
        """A PTE table detached (1), or a detached one freed or forgotten (-1)."""
        if self.recording:
            self._pte_in_flight += sign
            add_value, add_ts = self._add_in_flight
            add_value(self._pte_in_flight)
            add_ts(ts)

    def _empty_changed(self, ts: int) -> None:
        if self.recording:
            add_value, add_ts = self._add_empty
            add_value(len(self.state.empty_since))
            add_ts(ts)

    def _provenance_in_bulk(self, kr, field, counts) -> None:
        """What :meth:`_provenance` counts, for every table row of a stretch at once
        (the fast path; ``field(kind, j, at)`` reads a field of the rows at ``at``,
        ``counts(kind, j, at)`` how many hold each value)."""
        p = self.state.provenance
        for kind, name in _PROVENANCE:
            at = kr.at(kind)
            if not len(at):
                continue
            held = counts(kind, _INFERRED[kind], at)      # flag?: True, False or nil
            seen = held.get(None, 0) + held.get(False, 0)
            for key, n in (((name, False), seen), ((name, True), len(at) - seen)):
                if n:
                    p[key] = p.get(key, 0) + n
            if kind == v.TABLE_DETACH and seen < len(at):
                inferred = field(kind, _INFERRED[kind], at)
                causes = field(kind, _CAUSE, at)
                other = sum(1 for i, c in zip(inferred, causes) if i and c == "other")
                if other:
                    key = ("table_detach_guessed", True)
                    p[key] = p.get(key, 0) + other

    def _provenance(self, kind: str, inferred: Any) -> None:
        key = (kind, bool(inferred))
        p = self.state.provenance
        p[key] = p.get(key, 0) + 1

    # -- tables ------------------------------------------------------------
    def _table_alloc(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        if not self.fast:
            self._provenance("table_alloc", row[8] if len(row) > 8 else None)
        mm, level, pfn, addr = row[4], row[5], row[6], row[7]
        if pfn in s.tid_of:
            # The previous table at this pfn was never seen freed (events lost, or a
            # trace that started late): drop it from the state, note it.
            s.orphans += 1
            self._forget(pfn, ts)
        tid = s.next_tid
        s.next_tid = tid + 1
        if self.recording:
            self.log.append(pfn, mm, level, addr, ts, i)
        s.tid_of[pfn] = tid
        s.stage[pfn] = ATTACHED
        if level == v.LEVEL_PTE:
            s.present[pfn] = 0
            s.empty_since[pfn] = ts
            self._empty_changed(ts)
        if row[3] is not None:
            s.pid_mm[row[3]] = mm
        self._account(mm, level, 1, ts)
        self._pages(1, ts)

    def _forget(self, pfn: int, ts: int) -> None:
        """Drop a table from the state: its page, and its VmPTE share if still attached."""
        s = self.state
        tid = s.tid_of.pop(pfn)
        if s.stage.pop(pfn) == ATTACHED:
            self._account(self.log.mm(tid), self.log.level(tid), -1, ts)
        elif self.log.level(tid) == v.LEVEL_PTE:
            self._in_flight_changed(-1, ts)
        s.present.pop(pfn, None)
        if s.empty_since.pop(pfn, None) is not None:
            self._empty_changed(ts)
        self._pages(-1, ts)

    def _pte_clear(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn = row[5]
        p = s.present.get(pfn)
        if p is None:
            s.orphans += 1
            return
        p = max(0, p - row[6])
        s.present[pfn] = p
        if p == 0 and s.stage.get(pfn) == ATTACHED and pfn not in s.empty_since:
            s.empty_since[pfn] = ts
            self._empty_changed(ts)
            if self.recording:
                self._emptied_by[pfn] = self._open_zap.get(row[3], -1)

    def _table_detach(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn = row[5]
        inferred = row[7] if len(row) > 7 else None
        if not self.fast:
            self._provenance("table_detach", inferred)
            if inferred and row[6] == "other":
                self._provenance("table_detach_guessed", True)
        if s.stage.get(pfn) != ATTACHED:
            s.orphans += 1
            return
        tid = s.tid_of[pfn]
        log = self.log
        level = log.level(tid)
        s.stage[pfn] = DETACHED
        empty = s.empty_since.pop(pfn, None)
        if empty is not None:
            self._empty_changed(ts)
        if level == v.LEVEL_PTE:
            self._in_flight_changed(1, ts)
        if self.recording:
            cause = DETACH_CODES.get(row[6], DETACH_CODES["other"])
            log.set_step(tid, T_DETACH_TS, ts, i)
            log.set(tid, T_DETACH_CAUSE, cause)
            emptied_by = self._emptied_by.pop(pfn, -1)
            taken_by = self._last_zap.get(row[3])
            if cause == RECLAIM:
                self.marks.append((i, CLS_RECLAIM))
            elif empty is not None and cause != COLLAPSE and taken_by is not None and \
                    emptied_by != taken_by:
                # Emptied before the zap that took it (by another zap, or never
                # filled): it sat leaked until now. A task with no zap in the trace
                # cannot tell.
                log.set(tid, T_LEAK_TS, empty)
                self.marks.append((i, CLS_LEAK))
        self._account(log.mm(tid), level, -1, ts)

    def _table_queue(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn = row[4]
        if not self.fast:
            self._provenance("table_queue", row[6] if len(row) > 6 else None)
        if s.stage.get(pfn) not in (DETACHED, ATTACHED):
            s.orphans += 1
            return
        s.stage[pfn] = QUEUED if s.stage[pfn] == DETACHED else s.stage[pfn]
        if self.recording:
            tid = s.tid_of[pfn]
            self.log.set_step(tid, T_QUEUE_TS, ts, i)
            self.log.set(tid, T_VIA, VIA_CODES.get(row[5], 0))

    def _table_free(self, row: tuple, ts: int, i: int) -> None:
        s = self.state
        pfn, cpu = row[4], row[2]
        if not self.fast:
            self._provenance("table_free", row[6] if len(row) > 6 else None)
        tid = s.tid_of.get(pfn)
        log = self.log
        if tid is None:
            s.orphans += 1  # the same in both modes: seeking must reach the same state
            last = log.tids_of(pfn) if self.recording else None
            if last and log.get(last[-1], T_FREE_IDX) >= 0:
                self._find("double_free", ts, cpu, pfn, log.mm(last[-1]),
                           f"table {pfn:#x} freed again; it was freed at event "
                           f"{log.get(last[-1], T_FREE_IDX)}", log.get(last[-1], T_FREE_IDX), i,
                           since=log.get(last[-1], T_FREE_TS))
            return
        mm = log.mm(tid)
        st = s.stage[pfn]
        if st == ATTACHED:
            self._find("free_attached", ts, cpu, pfn, mm,
                       f"table {pfn:#x} freed while still attached to mm {mm:#x}",
                       log.get(tid, T_ALLOC_IDX), i, since=log.get(tid, T_ALLOC_TS))
        if s.present.get(pfn, 0) > 0:
            self._find("free_nonempty", ts, cpu, pfn, mm,
                       f"table {pfn:#x} freed with {s.present[pfn]} present entries",
                       log.get(tid, T_ALLOC_IDX), i, since=log.get(tid, T_ALLOC_TS))
        for wcpu, walk in s.walkers.items():
            if wcpu == cpu:
                continue
            for held_pfn, held_tid, held_idx in walk[4]:
                if held_pfn == pfn and held_tid == tid:
                    self._find("use_after_free", ts, wcpu, pfn, mm,
                               f"table {pfn:#x} freed on CPU {cpu} "
                               f"({row[5] or 'path unknown'}) while a {walk[1] or 'lockless'} "
                               f"walker on CPU {wcpu} ({walk[2] or 'protection unknown'}) "
                               f"still holds it",
                               walk[5], held_idx, i, since=walk[0], on_cpu=True)
        if log.level(tid) == v.LEVEL_PTE:
            cause = log.get(tid, T_DETACH_CAUSE)
            slot = 0 if cause == DETACH_CODES["reclaim"] else (
                2 if cause == DETACH_CODES["collapse"] else 1)
            if slot == 0:
                s.freed_reclaimed += 1
            elif slot == 2:
                s.freed_collapse += 1
            else:
                s.freed_unmap += 1
            f = list(s.mm_freed.get(mm, (0, 0, 0)))
            f[slot] += 1
            s.mm_freed[mm] = tuple(f)
        if self.recording:
            log.set_step(tid, T_FREE_TS, ts, i)
            log.set(tid, T_FREE_PATH, FREE_CODES.get(row[5], 0))
            if log.get(tid, T_DETACH_CAUSE) == RECLAIM:
                self.marks.append((i, CLS_RECLAIM_FREE))
            elif log.get(tid, T_LEAK_TS) >= 0:
                self.marks.append((i, CLS_LEAK_FREE))
        self._forget(pfn, ts)
