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
    """Which of ``keys`` (uint64, sorted, distinct) ``table`` holds: each key the table
    holds looked up among them, O(t log n) in C (a table holds the callbacks, grace
    periods or syncs open at once)."""
    out = np.zeros(len(keys), bool)
    if not len(table) or not len(keys):
        return out
    try:
        held = np.fromiter(table, np.uint64, len(table))
    except (OverflowError, TypeError, ValueError):
        return np.fromiter(map(table.__contains__, keys.tolist()), bool, len(keys))
    at = np.minimum(np.searchsorted(keys, held), len(keys) - 1)
    out[at[keys[at] == held]] = True
    return out


def _ids(kind: int, at: np.ndarray, field, int_field):
    """The first field (the key: a cb or a gp) of the rows of ``kind`` at ``at``."""
    if not len(at):
        return at
    ints = int_field(kind, 0, at)
    return ints if ints is not None else field(kind, 0, at)


class _Pairs:
    """The rows of one class in row order: ``at`` (positions), ``is_open``, ``keys``
    and ``prev`` (the previous row with the row's key, -1: none); per key, in the
    keys' order: ``first`` and ``last`` (its first and last rows) and ``held``
    (whether the table held it when the stretch began)."""

    __slots__ = ("at", "is_open", "keys", "prev", "first", "last", "held")


def _pairs(opens: np.ndarray, closes: np.ndarray, open_keys, close_keys,
           table: dict) -> _Pairs | None:
    """The rows of opens and closes with keys (any order of the keys' values); None
    when a key is not a 64-bit integer. Two stable argsorts, O(n log n) in C."""
    ok, ck = _keys(open_keys), _keys(close_keys)
    if ok is None or ck is None:
        return None
    r = _Pairs()
    at = np.concatenate([opens, closes])
    keys = np.concatenate([ok, ck])
    if len(opens) and len(closes):
        o = np.argsort(at, kind="stable")      # two sorted runs: one merge
        at, keys = at[o], keys[o]
        r.is_open = o < len(opens)
    else:
        r.is_open = np.full(len(at), bool(len(opens)))
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    new = np.ones(len(at) + 1, bool)       # where a key's rows start, and the end
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:-1])
    same = ~new[1:-1]
    r.prev = np.full(len(at), -1, np.int64)
    r.prev[by_key[1:][same]] = by_key[:-1][same]
    r.first, r.last = by_key[new[:-1]], by_key[new[1:]]
    r.at, r.keys = at, keys
    r.held = _held(table, keys[r.first])
    return r


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
            return ends, ends, ends, before

        r = _pairs(starts, ends, _ids(v.RCU_GP_START, starts, field, int_field),
                   _ids(v.RCU_GP_END, ends, field, int_field), s.gp_open)
        if r is None:
            return None
        at = r.at
        # The ends (``ends``: their rows, in order) and the row before each of its id.
        end_at = np.flatnonzero(~r.is_open)
        p = r.prev[end_at]
        has = p >= 0
        matched = r.is_open[p] & has
        start_row = at[p]
        start_idx = np.where(matched, start_row + first_index, _NO_START)
        start_ts = ts_all[start_row]
        # An end whose id has no earlier row here takes the start the state holds.
        for j in np.flatnonzero(~has).tolist():
            held = s.gp_open.get(int(r.keys[end_at[j]]))
            if held is not None:
                matched[j] = True
                start_ts[j], start_idx[j] = held
        done_after = np.maximum.accumulate(start_idx)
        np.maximum(done_after, before, out=done_after)
        if len(done_after):
            s.gp_done_after = int(done_after[-1])
        self.gp_ends_seen += len(ends)
        if self.recording and len(ends):
            ts = ts_all[ends]
            self.gp_end_times.extend(ts.tolist())
            self.gp_durations.extend((ts - start_ts)[matched].tolist())
        self._leave(s.gp_open, r, lambda rows: zip(ts_all[at[rows]].tolist(),
                                                   (at[rows] + first_index).tolist()))
        return at, ends, done_after, before

    def _callbacks(self, kr, c, ts_all, first_index: int, field, int_field, gp_ends,
                   done_after, done_before):
        """RCU callbacks queued and invoked (the tables an ``rcu_queue`` names aside):
        returns the positions done (every invoke, and every queue naming no table)."""
        s = self.state
        queued, invoked = kr.at(v.RCU_QUEUE), kr.at(v.RCU_INVOKE)
        if not len(queued) and not len(invoked):
            return queued

        pending = s.rcu_pending
        r = _pairs(queued, invoked, _ids(v.RCU_QUEUE, queued, field, int_field),
                   _ids(v.RCU_INVOKE, invoked, field, int_field), pending)
        if r is None:
            return None
        at, is_queue = r.at, r.is_open
        was = is_queue[r.prev]             # the callback pending just before the row
        was[r.first] = r.held
        found = was & ~is_queue
        s.rcu_invoked += len(invoked)
        pfns = field(v.RCU_QUEUE, 2, queued) if len(queued) else []

        def entries(rows: np.ndarray):
            """What ``rcu_pending`` holds for the queue rows ``rows``."""
            funcs = field(v.RCU_QUEUE, 1, queued)
            j = np.searchsorted(queued, at[rows]).tolist()      # the queues' places
            return zip(ts_all[at[rows]].tolist(), map(funcs.__getitem__, j),
                       [tuple(p or ()) for p in map(pfns.__getitem__, j)],
                       (at[rows] + first_index).tolist())
        if self.recording:
            ts = ts_all[at]
            moved = is_queue | found
            delta = (is_queue & ~was).astype(np.int64)
            delta -= found
            self.series.rcu_pending.extend(ts[moved], len(pending) + np.cumsum(delta)[moved])
            if found.any():
                self._early_callbacks(r, found, ts, c, first_index, gp_ends, done_after,
                                      done_before, entries)
        self._leave(pending, r, entries)
        names_tables = np.fromiter(map(bool, pfns), bool, len(pfns))
        return np.concatenate([invoked, queued[~names_tables]])

    def _early_callbacks(self, r: _Pairs, found, ts, c, first_index, gp_ends, done_after,
                         done_before, entries) -> None:
        """The invokes that ran before any grace period started after their queue
        (``_rcu_invoke``'s check, against ``gp_done_after`` as it was at each)."""
        at, keys, prev = r.at, r.keys, r.prev
        fe = np.flatnonzero(found)
        if len(done_after):
            ends_before = np.searchsorted(gp_ends, at[fe])
            gda = np.where(ends_before > 0, done_after[ends_before - 1], done_before)
        else:
            gda = np.full(len(fe), done_before, np.int64)
        p = prev[fe]
        inside = p >= 0
        queue_idx = at[p] + first_index
        outside = fe[~inside].tolist()
        held = [self.state.rcu_pending[int(keys[e])] for e in outside]
        queue_idx[~inside] = [h[3] for h in held]
        early = np.flatnonzero(gda < queue_idx)
        if not len(early):
            return
        held_of = dict(zip(outside, held))
        for j in early.tolist():
            e = int(fe[j])
            q_ts, func, pfns, q_idx = next(iter(entries(prev[e:e + 1]))) if prev[e] >= 0 \
                else held_of[e]
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
        r = _pairs(begins, ends, c[begins], c[ends], s.sync_open)
        if r is None:
            return None
        at = r.at
        methods = field(v.TABLE_SYNC_BEGIN, 0, begins) if len(begins) else []
        targets = field(v.TABLE_SYNC_BEGIN, 1, begins) if len(begins) else []

        def entries(rows: np.ndarray):
            """What ``sync_open`` holds for the begin rows ``rows``."""
            j = np.searchsorted(begins, at[rows]).tolist()      # the begins' places
            return zip(map(methods.__getitem__, j),
                       [tuple(t or ()) for t in map(targets.__getitem__, j)],
                       ts_all[at[rows]].tolist(), (at[rows] + first_index).tolist())
        if self.recording and len(ends):
            self._sync_records(r, begins, ends, ts_all, methods, targets)
        self._leave(s.sync_open, r, entries)
        return at

    def _sync_records(self, r: _Pairs, begins, ends, ts_all, methods, targets) -> None:
        """``syncs`` gets (cpu, method, begin ts, end ts, targets) for each end that
        took a begin, in the ends' order. Python per sync only to make its tuple."""
        end_at = np.flatnonzero(~r.is_open)
        p = r.prev[end_at]
        inside = p >= 0
        took = r.is_open[p] & inside
        # An end with no earlier row of its CPU here takes the begin the state holds.
        held = {}
        for j in np.flatnonzero(~inside).tolist():
            begin = self.state.sync_open.get(int(r.keys[end_at[j]]))
            if begin is not None:
                took[j] = True
                held[j] = begin
        picked = np.flatnonzero(took)
        if not len(picked):
            return
        begin_rows = r.at[p[picked]]          # (a held begin's: any, replaced below)
        if len(begins):
            rank = np.minimum(np.searchsorted(begins, begin_rows), len(begins) - 1).tolist()
            method = list(map(methods.__getitem__, rank))
            try:
                n_targets = list(map(len, map(targets.__getitem__, rank)))
            except TypeError:                   # a nil among them
                n_targets = [len(targets[j] or ()) for j in rank]
        else:
            method, n_targets = [None] * len(picked), [0] * len(picked)
        t0 = ts_all[begin_rows].tolist()
        if held:
            place = {j: k for k, j in enumerate(picked.tolist())}
            for j, begin in held.items():
                k = place[j]
                method[k], t0[k], n_targets[k] = begin[0], begin[2], len(begin[1])
        self.syncs.extend(zip(r.keys[end_at[picked]].tolist(), method, t0,
                              ts_all[ends[picked]].tolist(), n_targets))

    @staticmethod
    def _leave(table: dict, r: _Pairs, entries) -> None:
        """Each key as its last row leaves it: open (``entries(rows)``: what the table
        holds for those rows) or taken (only a key the table held when the stretch
        began can be: one opened here and closed is not in it). Python per key left
        open and per key taken."""
        opened = r.is_open[r.last]
        for key in r.keys[r.last[r.held & ~opened]].tolist():
            table.pop(key, None)
        left = r.last[opened]
        if len(left):
            table.update(zip(r.keys[left].tolist(), entries(left)))
