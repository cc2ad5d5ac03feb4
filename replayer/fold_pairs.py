"""RCU callbacks, grace periods and walker syncs of a stretch, applied at once.

Each is a pairing by key: an ``rcu_queue`` and the ``rcu_invoke`` of its callback
(key: cb), a grace period's start and end (key: gp), a CPU's ``table_sync_begin``
and ``table_sync_end`` (key: the CPU). The per-row handlers of
:class:`.fold_context.ContextHandlers` keep one open entry per key: an open
replaces what the key held, a close takes it (or finds nothing). So a close's
partner is its key's previous row in the stretch when that row is an open, none
when it is a close, and what the state held when the key has no earlier row; the
state a key is left in is its last row's doing. None of it reads or writes the
tables, so the whole stretch is applied here, before the tables' rows, and only
an ``rcu_queue`` that names tables is still visited (for its tables' half).

A collapse or an allocator trace queues, invokes and syncs once per table page
freed; visited one at a time, those rows cost more than the tables themselves.
Cost: a stable argsort per class, O(n log n) in C, plus Python per key still open
at the end of the stretch and per finding. Tests compare this with the per-row
handlers (``tests/test_fold_fast.py``).
"""

from __future__ import annotations

from itertools import compress

import numpy as np

from . import vocab as v
from .state import Finding

_NO_START = -(1 << 62)          # a grace period end that matched no start


def _keys(values) -> np.ndarray | None:
    """Keys as a uint64 array (None when one is not an integer of 64 bits: the rows
    are then visited one by one, as the handlers take anything hashable)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.uint64, copy=False)
    try:
        return np.array(values, np.uint64)
    except (OverflowError, TypeError, ValueError):
        return None


def _held(table: dict, keys: np.ndarray) -> np.ndarray:
    """Which of ``keys`` (uint64) ``table`` holds: one ``isin`` against the table's
    keys (few: callbacks, grace periods or syncs open at once)."""
    if not len(table) or not len(keys):
        return np.zeros(len(keys), bool)
    try:
        held = np.fromiter(table, np.uint64, len(table))
    except (OverflowError, TypeError, ValueError):
        return np.array([int(k) in table for k in keys.tolist()], bool)
    return np.isin(keys, held)


def _ids(kind: int, at: np.ndarray, field, int_field):
    """The first field (the key: a cb or a gp) of the rows of ``kind`` at ``at``."""
    if not len(at):
        return at
    ints = int_field(kind, 0, at)
    return ints if ints is not None else field(kind, 0, at)


def _pairs(opens: np.ndarray, closes: np.ndarray, open_keys, close_keys):
    """The rows of one class in row order: ``(at, is_open, keys, prev, last)``;
    ``prev[e]`` is the previous row with row ``e``'s key (-1: none) and ``last``
    lists each key's last row. None when a key is not a 64-bit integer."""
    ok, ck = _keys(open_keys), _keys(close_keys)
    if ok is None or ck is None:
        return None
    at = np.concatenate([opens, closes])
    o = np.argsort(at, kind="stable")
    at, keys = at[o], np.concatenate([ok, ck])[o]
    is_open = (o < len(opens))
    n = len(at)
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    first = np.ones(n, bool)
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    prev = np.empty(n, np.int64)
    prev[by_key] = np.where(first, -1, np.r_[-1, by_key[:-1]])
    last = by_key[np.r_[first[1:], True]]
    return at, is_open, keys, prev, last


class PairsInBulk:
    """A mixin of :class:`.fold.Folder` (the fast path): :meth:`_pairs_in_bulk`.
    ``callbacks_paired``: whether the stretch's callbacks were (ids that are not
    64-bit integers leave them to the per-row handlers)."""

    callbacks_paired = False

    def _rcu_queue_fast(self, row: tuple, ts: int, i: int) -> None:
        """An rcu_queue on the fast path: its tables, and its callback unless paired."""
        self._rcu_tables(row, ts, i)
        if not self.callbacks_paired:
            self._rcu_callback(row, ts, i)

    def _pairs_in_bulk(self, kr, c: np.ndarray, ts_all: np.ndarray,
                       first_index: int, field, int_field) -> list[np.ndarray]:
        """Apply every grace period, RCU callback and walker sync row of the stretch;
        returns the positions the loop may now skip. ``field(kind, j, at)`` reads a
        field of the rows at ``at`` as a list, ``int_field`` as an array when stored
        as integers (else None)."""
        done = []
        self.callbacks_paired = False    # else each rcu_queue's handler does its callback
        gp = self._grace_periods(kr, ts_all, first_index, field, int_field)
        if gp is not None:
            done.append(gp[0])
            cb = self._callbacks(kr, c, ts_all, first_index, field, int_field, *gp[1:])
            if cb is not None:
                done.append(cb)
                self.callbacks_paired = True
        sync = self._syncs(kr, c, ts_all, first_index, field)
        if sync is not None:
            done.append(sync)
        return done

    def _grace_periods(self, kr, ts_all, first_index: int, field, int_field):
        """Grace periods: returns (their rows, the ends' positions, ``gp_done_after``
        after each end, and before the first), or None when ids are not integers."""
        s = self.state
        starts, ends = kr.at(v.RCU_GP_START), kr.at(v.RCU_GP_END)
        before = s.gp_done_after
        if not len(starts) and not len(ends):
            return np.zeros(0, np.int64), ends, np.zeros(0, np.int64), before

        paired = _pairs(starts, ends, _ids(v.RCU_GP_START, starts, field, int_field),
                        _ids(v.RCU_GP_END, ends, field, int_field))
        if paired is None:
            return None
        at, is_start, keys, prev, last = paired
        ts = ts_all[at]
        end = ~is_start
        has = prev >= 0
        matched = np.zeros(len(at), bool)
        matched[has] = is_start[prev[has]]
        start_idx = np.full(len(at), _NO_START, np.int64)
        start_ts = np.zeros(len(at), np.int64)
        start_idx[matched] = at[prev[matched]] + first_index
        start_ts[matched] = ts[prev[matched]]
        # An end whose id has no earlier row here takes the start the state holds.
        for e in np.flatnonzero(end & ~has).tolist():
            held = s.gp_open.get(int(keys[e]))
            if held is not None:
                matched[e] = True
                start_ts[e], start_idx[e] = held
        done_after = np.maximum.accumulate(np.r_[before, start_idx[end]])[1:]
        if len(done_after):
            s.gp_done_after = int(done_after[-1])
        self.gp_ends_seen += int(np.count_nonzero(end))
        if self.recording:
            self.gp_end_times.extend(ts[end].tolist())
            self.gp_durations.extend((ts - start_ts)[end & matched].tolist())
        self._leave(s.gp_open, keys, last, is_start,
                    lambda e: (int(ts[e]), first_index + int(at[e])))
        return at, at[end], done_after, before

    def _callbacks(self, kr, c, ts_all, first_index: int, field, int_field, gp_ends,
                   done_after, done_before):
        """RCU callbacks queued and invoked (the tables an ``rcu_queue`` names aside):
        returns the positions done (every invoke, and every queue naming no table)."""
        s = self.state
        queued, invoked = kr.at(v.RCU_QUEUE), kr.at(v.RCU_INVOKE)
        if not len(queued) and not len(invoked):
            return np.zeros(0, np.int64)

        paired = _pairs(queued, invoked, _ids(v.RCU_QUEUE, queued, field, int_field),
                        _ids(v.RCU_INVOKE, invoked, field, int_field))
        if paired is None:
            return None
        at, is_queue, keys, prev, last = paired
        pending = s.rcu_pending
        has = prev >= 0
        was = np.zeros(len(at), bool)       # the callback pending just before the row
        was[has] = is_queue[prev[has]]
        fresh = np.flatnonzero(~has)
        was[fresh] = _held(pending, keys[fresh])
        found = ~is_queue & was
        s.rcu_invoked += len(invoked)
        funcs = field(v.RCU_QUEUE, 1, queued) if len(queued) else []
        pfns = [p or () for p in field(v.RCU_QUEUE, 2, queued)] if len(queued) else []
        q_rank = np.cumsum(is_queue) - 1      # a queue row's place among the queues
        ts = ts_all[at]

        def entry(e: int) -> tuple:
            j = int(q_rank[e])
            return (int(ts[e]), funcs[j], tuple(pfns[j]), first_index + int(at[e]))
        if self.recording:
            delta = np.where(is_queue, ~was, -found.astype(np.int64)).astype(np.int64)
            moved = is_queue | found
            self.series.rcu_pending.extend(ts[moved], len(pending) + np.cumsum(delta)[moved])
            self._early_callbacks(at, keys, prev, found, is_queue, ts, c, first_index,
                                  gp_ends, done_after, done_before, entry)
        self._leave(pending, keys, last, is_queue, entry)
        names_tables = np.fromiter(map(len, pfns), np.int64, len(pfns)) > 0
        return np.concatenate([invoked, queued[~names_tables]])

    def _early_callbacks(self, at, keys, prev, found, is_queue, ts, c, first_index,
                         gp_ends, done_after, done_before, entry) -> None:
        """The invokes that ran before any grace period started after their queue
        (``_rcu_invoke``'s check, against ``gp_done_after`` as it was at each)."""
        ends_before = np.searchsorted(gp_ends, at[found])
        gda = np.where(ends_before > 0, done_after[np.maximum(ends_before - 1, 0)]
                       if len(done_after) else done_before, done_before)
        fe = np.flatnonzero(found)
        queue_idx = np.empty(len(fe), np.int64)
        inside = prev[fe] >= 0
        queue_idx[inside] = at[prev[fe[inside]]] + first_index
        held = [self.state.rcu_pending[int(keys[e])] for e in fe[~inside].tolist()]
        queue_idx[~inside] = [h[3] for h in held]
        early = np.flatnonzero(gda < queue_idx)
        if not len(early):
            return
        held_of = dict(zip(fe[~inside].tolist(), held))
        for j in early.tolist():
            e = int(fe[j])
            q_ts, func, pfns, q_idx = entry(int(prev[e])) if prev[e] >= 0 else held_of[e]
            i = first_index + int(at[e])
            self.early_callbacks.append(Finding(
                "rcu_early", int(ts[e]), int(c[at[e]]), pfns[0] if pfns else None, None,
                f"RCU callback {int(keys[e])} ({func or 'function unknown'}) ran before any "
                f"grace period that started after it was queued", (q_idx, i), since=q_ts))

    def _syncs(self, kr, c, ts_all, first_index: int, field):
        """Walker syncs begun and ended, per CPU: returns their rows."""
        s = self.state
        begins = kr.at(v.TABLE_SYNC_BEGIN)
        ends = kr.at(v.TABLE_SYNC_END)
        if not len(begins) and not len(ends):
            return None
        paired = _pairs(begins, ends, c[begins], c[ends])
        if paired is None:
            return None
        at, is_begin, keys, prev, last = paired
        methods = field(v.TABLE_SYNC_BEGIN, 0, begins) if len(begins) else []
        targets = field(v.TABLE_SYNC_BEGIN, 1, begins) if len(begins) else []
        b_rank = np.cumsum(is_begin) - 1
        ts = ts_all[at]

        def entry(e: int) -> tuple:
            j = int(b_rank[e])
            return (methods[j], tuple(targets[j] or ()), int(ts[e]), first_index + int(at[e]))
        if self.recording:
            self._sync_records(at, is_begin, keys, prev, ts, b_rank, methods, targets)
        self._leave(s.sync_open, keys, last, is_begin, entry)
        return at

    def _sync_records(self, at, is_begin, keys, prev, ts, b_rank, methods, targets) -> None:
        """``syncs`` gets (cpu, method, begin ts, end ts, targets) for each end that
        took a begin, in the ends' order."""
        ends = np.flatnonzero(~is_begin)
        p = prev[ends]
        inside = p >= 0
        took = np.zeros(len(ends), bool)
        took[inside] = is_begin[p[inside]]
        b = b_rank[np.maximum(p, 0)].tolist()
        method = [methods[j] if j >= 0 else None for j in b]
        n_targets = [len(targets[j] or ()) if j >= 0 else 0 for j in b]
        t0 = ts[np.maximum(p, 0)].tolist()
        took = took.tolist()
        # An end with no earlier row of its CPU here takes the begin the state holds.
        for j in np.flatnonzero(~inside).tolist():
            begin = self.state.sync_open.get(int(keys[ends[j]]))
            if begin is not None:
                took[j], method[j], t0[j], n_targets[j] = True, begin[0], begin[2], len(begin[1])
        self.syncs.extend(compress(zip(keys[ends].tolist(), method, t0, ts[ends].tolist(),
                                       n_targets), took))

    @staticmethod
    def _leave(table: dict, keys: np.ndarray, last: np.ndarray, is_open: np.ndarray,
               entry) -> None:
        """Each key as its last row leaves it: open (``entry(row)``) or taken (only a
        key the table held can be: one opened here and closed is not in it). Python
        per key left open and per key taken that was open before."""
        opened = is_open[last]
        for e, key in zip(last[opened].tolist(), keys[last[opened]].tolist()):
            table[key] = entry(e)
        taken = keys[last[~opened]]
        for key in taken[_held(table, taken)].tolist():
            table.pop(key, None)
