"""Folding event rows into a :class:`ReplayState`: the replay's inner loop.

One :class:`Folder` runs the full replay with ``recording=True``: it appends to
the :class:`TableLog`, the counter series and the findings. Seeking re-runs a
short stretch from a checkpoint with ``recording=False``, which changes the
state only, so a seek never duplicates history.

Rows are ``(kind, dts, cpu, pid, *fields)`` as the trace reader yields them;
field positions come from :mod:`replayer.vocab`. The hottest kinds (entries
set and cleared, TLB flushes) are handled inline; the rest dispatch to a
method per kind. Cost: O(1) per event, except walker and IPI bookkeeping,
which is O(tables held / IPIs pending on that CPU).

``Folder(fast=True)`` (what a replay uses) reads a v2 chunk's columns, skips the
rows that provably change nothing and applies IPIs and provenance in bulk;
``fast=False`` visits every row and is the reference the fast path is tested
against (``tests/test_fold_fast.py``).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable

import numpy as np
from sortedcontainers import SortedKeyList

from . import vocab as v
from .fold_bulk import IS_TABLE, E_ALLOC, MIN_STEPS, KindRows, read_steps
from .fold_context import ContextHandlers, _counts
from .fold_lives import apply_lives
from .fold_record import record_zaps
from .fold_rows import (COLUMNS as _COLUMNS, field as _field, field_counts as _field_counts,
                        int_field as _int_field, pte_set_runs as _pte_set_runs,
                        stored_ints as _stored_ints)
from .fold_pairs import PairsInBulk
from .fold_skip import idle_walk_tables, idle_walks
from .fold_tables import TableHandlers, appenders
from .fold_view import mm_news
from .series import SeriesSet
from .state import Finding, ReplayState, TableLog

_kind_of, _cpu_of = itemgetter(0), itemgetter(2)
_ALLOC_PFN = v.KIND_BY_ID[v.TABLE_ALLOC].fields.index("pfn")

#: Kinds the Python loop must visit; the rest change nothing (or are counted in bulk).
_HANDLED = (v.TABLE_ALLOC, v.PTE_SET, v.PTE_CLEAR, v.TABLE_DETACH, v.TABLE_QUEUE,
            v.TABLE_FREE, v.RCU_QUEUE, v.RCU_GP_START, v.RCU_GP_END, v.RCU_INVOKE,
            v.WALK_BEGIN, v.WALK_TABLE, v.WALK_END, v.IPI_SEND, v.IPI_ENTER,
            v.TABLE_SYNC_BEGIN, v.TABLE_SYNC_END, v.MM_NEW, v.MM_EXIT, v.MARKER, v.LOST,
            v.ZAP_BEGIN, v.ZAP_END)
_NEEDS_PYTHON = np.zeros(1 << 16, dtype=bool)
_NEEDS_PYTHON[list(_HANDLED)] = True


def _finding_order(f: Finding) -> tuple:
    return (f.ts, f.events)


class ArchSizes:
    """What a table page costs, from the trace header's ``arch``.

    ``pte_bytes``: what one PTE table adds to VmPTE (PTRS_PER_PTE × sizeof(pte_t));
    ``upper_bytes``: the same for PMD/PUD tables; ``page_size``: what one table
    page adds to the global PageTables count.
    """

    def __init__(self, arch: dict[str, Any] | None) -> None:
        arch = arch or {}
        self.page_size = int(arch.get("page_size") or 4096)
        word = int(arch.get("pte_size") or 8)
        self.pte_bytes = int(arch.get("pte_table_bytes")
                             or int(arch.get("ptrs_per_pte") or self.page_size // word) * word)
        self.upper_bytes = int(arch.get("pmd_table_bytes") or self.page_size)

    def table_bytes(self, level: int) -> int:
        return self.pte_bytes if level == v.LEVEL_PTE else self.upper_bytes


class Folder(TableHandlers, ContextHandlers, PairsInBulk):
    """Applies rows to ``state``; records history when ``recording``."""

    def __init__(self, sizes: ArchSizes, state: ReplayState, log: TableLog,
                 series: SeriesSet | None, recording: bool, fast: bool = True) -> None:
        self.sizes = sizes
        #: Skip rows that provably change nothing (:mod:`.fold_skip`); False visits
        #: every row: the reference the fast path is tested against.
        self.fast = fast
        #: The last fold visited at most 1 % of its rows one by one (the rest in bulk):
        #: the replay's next group may be twice as long, a seek from it still cheap.
        self.regular, self._visited = False, 0
        self.state = state
        self.log = log
        self.series = series
        self.recording = recording
        self._level_bytes = [sizes.upper_bytes, sizes.pte_bytes] + [sizes.upper_bytes] * 3
        self._mm_series: dict[int, tuple] = {}     # mm → its series' appenders
        self._kinds: KindRows | None = None          # where each kind is, this fold
        if recording:
            self._add_attached = appenders(series.pte_attached)
            self._add_in_flight = appenders(series.pte_in_flight)
            self._add_page_table_bytes = appenders(series.page_table_bytes)
            self._add_empty = appenders(series.empty_attached)
        #: rcu_gp_end events seen; early-callback findings count only if there are any.
        self.gp_ends_seen = 0
        self.early_callbacks: list[Finding] = []
        # Findings stay in time order even when an end-of-trace check adds older ones.
        self.findings: SortedKeyList = SortedKeyList(key=_finding_order)
        self.markers: list[dict[str, Any]] = []
        self.syncs: list[tuple[int, str, int, int, int]] = []  # cpu, method, t0, t1, targets
        self.gp_durations: list[int] = []
        self.gp_end_times: list[int] = []         # when each grace period ended, in order
        #: (cpu, ts) of every lost event, for the windows checks must not trust.
        self.losses: list[tuple[int, int]] = []
        #: (event index, timeline class) of events whose class is not their kind's
        #: (the detach and free of a reclaimed or a leaked table), taken per chunk.
        self.marks: list[tuple[int, int]] = []
        # Which zap emptied a table, and which took it: a table that a zap emptied and
        # a later one detached sat leaked between them (PT_RECLAIM would have freed it).
        # Zaps are told apart by their zap_begin's index, per task (threads zap their
        # mm concurrently). Recording pass only.
        self._last_zap: dict[int | None, int] = {}   # pid → index of its latest zap_begin
        self._open_zap: dict[int | None, int] = {}   # pid → that index, until its zap_end
        self._emptied_by: dict[int, int] = {}        # pfn → the zap that emptied it, or -1
        # PTE tables attached, and detached not yet freed: the series the peaks of the
        # live and in-flight classes come from (recording pass only).
        self._pte_attached = self._pte_in_flight = 0
        self.zaps: dict[str, int] = {}
        self._handlers: dict[int, Callable[[tuple, int, int], None]] = {
            v.TABLE_ALLOC: self._table_alloc, v.PTE_CLEAR: self._pte_clear,
            v.TABLE_DETACH: self._table_detach, v.TABLE_QUEUE: self._table_queue,
            v.TABLE_FREE: self._table_free, v.RCU_QUEUE: self._rcu_queue,
            v.RCU_GP_START: self._gp_start, v.RCU_GP_END: self._gp_end,
            v.RCU_INVOKE: self._rcu_invoke, v.WALK_BEGIN: self._walk_begin,
            v.WALK_TABLE: self._walk_table, v.WALK_END: self._walk_end,
            v.IPI_SEND: self._ipi_send, v.IPI_ENTER: self._ipi_enter,
            v.TABLE_SYNC_BEGIN: self._sync_begin, v.TABLE_SYNC_END: self._sync_end,
            v.MM_NEW: self._mm_new, v.MM_EXIT: self._mm_exit, v.MARKER: self._marker,
            v.LOST: self._lost, v.ZAP_BEGIN: self._zap_begin, v.ZAP_END: self._zap_end,
        }
        if fast:
            # Callbacks, grace periods and syncs are applied in bulk
            # (:mod:`.fold_pairs`): an rcu_queue is visited for its tables only, and
            # not at all amid table steps applied in bulk (its tables are among them),
            # unless its callback could not be paired.
            self._handlers[v.RCU_QUEUE] = self._rcu_queue_fast

    def release_series(self) -> None:
        """Let go of the series' arrays once the load is done: the appenders are bound
        methods of the arrays, and would keep the ones :meth:`SeriesSet.compact`
        replaced alive beside the new (a fork storm's series, twice over)."""
        self._mm_series.clear()
        if self.recording:
            self._add_attached = self._add_in_flight = self._add_page_table_bytes = None
            self._add_empty = None

    # -- the loop ----------------------------------------------------------
    def fold(self, rows, stamps, first_index: int, kinds=None, cpus=None) -> None:
        """Apply ``rows`` (absolute ``stamps``) whose first is event ``first_index``.

        ``rows``: a sequence of rows, a whole :class:`Chunk` or a :class:`ChunkSlice`
        of one (a column chunk then makes only the rows the loop visits).
        ``kinds``/``cpus`` are the rows' uint16 columns when the caller has them.
        numpy finds the work first: TLB flushes are counted per CPU in bulk, kinds
        that change nothing are skipped (and, on the fast path, walkers nobody can
        see; IPIs and provenance are applied in bulk), and a run of ``pte_set`` on
        one table (other kinds may sit between) is applied as one step. The Python
        loop then visits only what is left. O(n) in C plus O(work) in Python.
        """
        if isinstance(rows, _COLUMNS):
            kinds, cpus = rows.kinds, rows.cpus
            if not rows.has_columns:
                rows = rows.rows
        if not len(rows):
            return
        self._visited = 0
        if kinds is None:
            kinds = np.fromiter(map(_kind_of, rows), np.uint16, len(rows))
            cpus = np.fromiter(map(_cpu_of, rows), np.uint16, len(rows))
        s = self.state
        k = np.asarray(kinds, np.uint16)
        kr = self._kinds = KindRows(k)
        flushes = kr.at(v.TLB_FLUSH)
        if len(flushes):
            tlb = s.tlb_flushes
            for cpu, n in _counts(np.asarray(cpus, np.uint16)[flushes]):
                tlb[cpu] = tlb.get(cpu, 0) + n
        pos = np.flatnonzero(_NEEDS_PYTHON[k])
        handlers = self._handlers
        if self.fast:
            pos = self._drop_idle(rows, k, np.asarray(cpus, np.uint16), pos, stamps,
                                  first_index)
            self._provenance_in_bulk(kr, lambda kind, j, at: _field(rows, kind, j, at),
                                     lambda kind, j, at: _field_counts(rows, kind, j, at))
        runs = _pte_set_runs(rows, k[pos], pos)
        work_n = work_count = None
        if runs is not None:
            keep = runs[0] >= 0
            pos, work_n, work_count = pos[keep], runs[0][keep], runs[1][keep]
        if not (self.fast and isinstance(rows, _COLUMNS) and rows.has_columns and
                len(pos) >= MIN_STEPS and self._fold_in_bulk(
                    rows, k, np.asarray(cpus, np.uint16), pos, work_n, work_count, stamps,
                    first_index)):
            self._visit(rows, pos, work_n, work_count, stamps, first_index, handlers)
        s.index = first_index + len(k)
        s.ts = stamps[len(k) - 1]
        self.regular = self._visited * 100 <= len(k)

    def _visit(self, rows, pos: np.ndarray, work_n, work_count, stamps, first_index: int,
               handlers: dict) -> None:
        """Apply the rows at ``pos`` one by one (``work_n``/``work_count``: for each,
        what its pte_set run adds and how many rows it stands for; None when no
        pte_set is among them)."""
        if not len(pos):
            return
        self._visited += len(pos)
        s = self.state
        work_pos = pos.tolist()
        if work_n is not None:
            work_n, work_count = work_n.tolist(), work_count.tolist()
        work_rows = rows.rows_at(pos) if isinstance(rows, _COLUMNS) else (
            itemgetter(*work_pos)(rows) if len(work_pos) > 1 else
            tuple(rows[p] for p in work_pos))
        present, empty_since = s.present, s.empty_since
        record_empty = self.series.empty_attached.append if self.recording else None
        PTE_SET = v.PTE_SET
        for j, p in enumerate(work_pos):
            row = work_rows[j]
            if row[0] == PTE_SET:
                pfn = row[5]
                before = present.get(pfn)
                if before is None:
                    s.orphans += work_count[j]
                    continue
                if before == 0 and pfn in empty_since:
                    del empty_since[pfn]
                    if record_empty:
                        record_empty(stamps[p], len(empty_since))
                present[pfn] = before + work_n[j]
            else:
                handlers[row[0]](row, stamps[p], first_index + p)

    def _fold_in_bulk(self, rows, k: np.ndarray, c: np.ndarray, pos: np.ndarray, work_n,
                      work_count, stamps, first_index: int) -> bool:
        """The rows at ``pos`` with their table steps applied in bulk
        (:func:`.fold_lives.apply_lives`), stretch by stretch between the rows that
        must see the tables as they are at that moment (an mm_new of an mm that
        exited, which resets its peak); a walker read learns what its pfn held at that
        moment from the stretch's steps, a marker what it reads from a
        :class:`.fold_view.StretchView`. A stretch with few table rows, or one that is
        not regular, is visited row by row. False (nothing done) when no stretch has
        enough table rows."""
        pk = k[pos]
        table = IS_TABLE[pk]
        new_mms = mm_news(self, rows, k, pos)
        cuts = np.flatnonzero(new_mms[3]) if new_mms is not None else pos[:0]
        in_table = np.r_[0, np.cumsum(table & (pk != v.PTE_SET))][np.r_[0, cuts + 1, len(pos)]]
        big = np.diff(in_table) >= MIN_STEPS      # per stretch (the cutting row in the next)
        if not big.any():
            return False
        is_set = pk == v.PTE_SET
        # Rows with nothing left to do once the stretch is applied: zaps (recorded at
        # once below), rcu_queues (their tables are steps, their callbacks paired).
        done = (pk == v.ZAP_BEGIN) | (pk == v.ZAP_END)
        if self.callbacks_paired:
            done |= pk == v.RCU_QUEUE
        steps = read_steps(rows, self._kinds, pos[is_set], work_n[is_set] if work_n is not None
                           else pos[:0])
        if steps is None:
            return False
        steps.kinds, steps.cpus = k, c
        steps.walk_rows = self._kinds.any_of(v.WALK_BEGIN, v.WALK_END)
        is_read = pk == v.WALK_TABLE
        read_pfns = None
        if is_read.any():
            every_read = self._kinds.at(v.WALK_TABLE)
            read_pfns = _int_field(rows, v.WALK_TABLE, 0, every_read)[
                np.searchsorted(every_read, pos[is_read])]
            read_rank = np.cumsum(is_read) - 1
        cuts = cuts.tolist() + [len(pos)]
        ts_all = np.frombuffer(stamps, np.int64)
        step_at = np.searchsorted(steps.pos, pos[cuts[:-1]]).tolist() + [len(steps)]
        zap_at = np.searchsorted(steps.zaps[0], pos[cuts[:-1]]).tolist() + [len(steps.zaps[0])]
        allocs_before = np.r_[0, np.cumsum(steps.ek == E_ALLOC)]
        lo = s_lo = z_lo = 0
        pending = 0                  # rows from here on wait to be visited one by one
        for cut, s_hi, z_hi, bulk in zip(cuts, step_at, zap_at, big.tolist()):
            end = min(cut + 1, len(pos))             # the cutting row included
            if bulk:
                self._visit_rows(rows, pos, work_n, work_count, pending, lo, stamps,
                                 first_index)
                pending = lo
                reads = None
                if read_pfns is not None and is_read[lo:cut].any():
                    mine = lo + np.flatnonzero(is_read[lo:cut])
                    reads = (pos[mine], read_pfns[read_rank[mine]])
                news = None
                if new_mms is not None:
                    mine = lo + np.flatnonzero(pk[lo:cut] == v.MM_NEW)
                    rank = new_mms[0][mine]
                    news = (pos[mine], new_mms[1][rank], [new_mms[2][r] for r in rank.tolist()])
                markers = self.recording and bool((pk[lo:cut] == v.MARKER).any())
                applied = apply_lives(self, steps, s_lo, s_hi, z_lo, z_hi, ts_all,
                                      first_index, int(allocs_before[s_lo]),
                                      int(pos[lo]) if lo < len(pos) else len(k), reads,
                                      news, markers)
                if applied is not None:
                    writes, tids, view = applied
                    handlers = self._handlers
                    if view is not None:
                        handlers = {**handlers, v.MARKER: lambda row, ts, i, view=view: (
                            self._marker(row, ts, i, view))}
                    if tids is not None:
                        found = dict(zip((reads[0] + first_index).tolist(), tids.tolist()))
                        handlers = {**handlers, v.WALK_TABLE: lambda row, ts, i, found=found: (
                            self._walk_read(row, ts, i, found[i]))}
                    # The zap rows are done too: their pid → mm writes are among
                    # ``writes``, and what they record is recorded here at once.
                    self._visit(rows, pos[lo:cut][~table[lo:cut] & ~done[lo:cut]], None,
                                None, stamps, first_index, handlers)
                    self.state.pid_mm.update(writes)
                    if self.recording:
                        record_zaps(self, steps, z_lo, z_hi, first_index)
                    pending = cut
            lo, s_lo, z_lo = end, s_hi, z_hi
        self._visit_rows(rows, pos, work_n, work_count, pending, len(pos), stamps, first_index)
        return True

    def _visit_rows(self, rows, pos, work_n, work_count, lo: int, hi: int, stamps,
                    first_index: int) -> None:
        """:meth:`_visit` of ``pos[lo:hi]`` with the per-row handlers."""
        if hi > lo:
            self._visit(rows, pos[lo:hi], None if work_n is None else work_n[lo:hi],
                        None if work_count is None else work_count[lo:hi], stamps,
                        first_index, self._handlers)

    def _drop_idle(self, rows, k: np.ndarray, c: np.ndarray, pos: np.ndarray, stamps,
                   first_index: int) -> np.ndarray:
        """``pos`` without the rows the fast path does not visit: walks and walker
        reads that change nothing (:mod:`.fold_skip`), and the IPIs, applied here in
        bulk."""
        s, kr = self.state, self._kinds
        frees = kr.at(v.TABLE_FREE)
        # Three comparisons cost less than merging the three kinds' positions.
        walkers = np.flatnonzero((k == v.WALK_BEGIN) | (k == v.WALK_TABLE) | (k == v.WALK_END))
        walks, tables = idle_walks(k, c, s.walkers.keys(), frees, walkers)
        drop = [walks]
        if len(tables):
            all_tables = kr.at(v.WALK_TABLE)
            allocs = kr.at(v.TABLE_ALLOC)
            changes = np.concatenate([allocs, frees])
            change_pfns = np.concatenate([
                _int_field(rows, v.TABLE_ALLOC, _ALLOC_PFN, allocs) if len(allocs) else allocs,
                _int_field(rows, v.TABLE_FREE, 0, frees) if len(frees) else frees])
            alive = np.zeros(len(changes), bool)
            alive[:len(allocs)] = True
            read = _int_field(rows, v.WALK_TABLE, 0, all_tables)[
                np.searchsorted(all_tables, tables)]
            drop.append(idle_walk_tables(tables, read, s.tid_of, changes, change_pfns,
                                         alive))
        field = lambda kind, j, at: _field(rows, kind, j, at)  # noqa: E731
        drop.append(self._ipis_in_bulk(rows, kr, c, stamps, first_index, field))
        drop += self._pairs_in_bulk(kr, c, np.frombuffer(stamps, np.int64), first_index, field,
                                    lambda kind, j, at: _stored_ints(rows, kind, j, at))
        skipped = np.zeros(len(k), bool)
        for positions in drop:
            skipped[positions] = True
        return pos[~skipped[pos]]

    # -- helpers -----------------------------------------------------------
    def _find(self, kind: str, ts: int, cpu: int | None, pfn: int | None, mm: int | None,
              message: str, *events: int, since: int | None = None,
              on_cpu: bool = False) -> None:
        if self.recording:
            self.findings.add(Finding(kind, ts, cpu, pfn, mm, message, tuple(events),
                                      since, on_cpu))
