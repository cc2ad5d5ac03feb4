"""The writer's bulk path: events given as columns (:meth:`TraceWriter.add_columns`).

A simulator hands its events over tens of thousands at a time, their times, kinds and
CPUs already integer arrays. Going through :meth:`TraceWriter.add` would cost a Python
call, four list appends and two dictionary lookups an event, then the chunk encoder
would turn the lists back into arrays. Here the chunk being filled is kept as slices of
the given columns ("pending") and encoded from them when full, the integer columns
straight from numpy. The bytes are those an add per event writes (tests hold the two
equal): the same chunk boundaries, a chunk cut where a pid's comm changes, and the
same column encodings.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Sequence

import numpy as np

from ..vocab import N_COMMON
from . import framing
from .columns import _DICT_MIN_ROWS, encode_column, int_array_column, transpose
from .fieldcodes import Coded as CodedFields, _small, kind_columns
from .tasks import Coded, Lists, pid_column

_MISSING = object()


class ColumnsMixin:
    """The bulk path of :class:`.writer.TraceWriter` (its state, its methods)."""

    def add_columns(self, ts: np.ndarray, kinds: np.ndarray, cpus: np.ndarray,
                    pids: Sequence, fields: Sequence[tuple], comms: Sequence) -> None:
        """:meth:`add` for each event of columns: ``ts``, ``kinds`` and ``cpus`` integer
        arrays (int64), ``pids`` (ints or None), ``fields`` (tuples) and ``comms`` (str
        or None) sequences, all one length. The same bytes as an add per event, without
        Python work per event: a slice of the columns at a time fills the chunk, and a
        slice in which a pid's comm changes (a new chunk there) goes event by event.
        Every event is checked before any is added. O(n) (grouping by kind O(n log n),
        in C)."""
        if len(pids) != len(comms):
            raise ValueError("add_columns: columns of different lengths")
        self._add_columns(ts, kinds, cpus, Lists(pids, comms), fields)

    def add_task_columns(self, ts: np.ndarray, kinds: np.ndarray, cpus: np.ndarray,
                         tasks: np.ndarray, table: Sequence[tuple], fields: Sequence[tuple]
                         ) -> None:
        """:meth:`add_columns` with each event's pid and comm given as ``table[tasks[i]]``:
        ``tasks`` an integer array, ``table`` (pid, comm) pairs, which may grow between
        calls but whose entries never change. The same bytes; a simulator has a few
        tasks, so pids and comms are checked and encoded once per task, not per event.
        ``fields`` may be a :class:`.fieldcodes.Coded` (its entries shared by many events):
        the same bytes again, its entries transposed and checked once, not each event's."""
        tasks = np.asarray(tasks, np.int64)
        if len(tasks) and (int(tasks.min()) < 0 or int(tasks.max()) >= len(table)):
            raise ValueError("add_task_columns: a task code outside the table")
        self._add_columns(ts, kinds, cpus, Coded(tasks, table), fields)

    def _add_columns(self, ts: np.ndarray, kinds: np.ndarray, cpus: np.ndarray,
                     who: Lists | Coded, fields: Sequence[tuple]) -> None:
        ts, kinds, cpus = (np.asarray(c, np.int64) for c in (ts, kinds, cpus))
        n = len(ts)
        if not (len(kinds) == len(cpus) == len(who) == len(fields) == n):
            raise ValueError("add_columns: columns of different lengths")
        if not n:
            return
        self._check_lengths(kinds, fields)
        lo, hi = min(int(ts.min()), self._last_ts), max(int(ts.max()), self._last_ts)
        if lo < -(1 << 63) or hi - lo >= 1 << 63:
            # Deltas beyond int64: the per-event path writes such a chunk as rows.
            self._add_each(ts, kinds, cpus, who, fields)
            return
        i = 0
        while i < n:
            j = min(n, i + self._chunk_events - self.events_buffered)
            part = (ts[i:j], kinds[i:j], cpus[i:j], who[i:j], fields[i:j])
            if not self._comms_fit(part[3]):
                # A pid's comm changes at event i + k: add cuts the chunk there.
                k = part[3].first_change(self._comms)
                if k == 0 and not self.events_buffered:
                    self._add_each(*part)   # (not reached: a new chunk takes any comm)
                    i = j
                    continue
                j = i + k
                if k:
                    self._add_columns(ts[i:j], kinds[i:j], cpus[i:j], who[i:j], fields[i:j])
                self._flush()
            elif self._kinds:               # a chunk add began: filled as add fills it
                self._extend_lists(*part)
            else:
                self._pending.append(part)
                self._pending_n += j - i
                self._last_ts = int(ts[j - 1])
            if self.events_buffered >= self._chunk_events:
                self._flush()
            i = j

    def _check_lengths(self, kinds: np.ndarray, fields: Sequence[tuple]) -> None:
        """Raise add's message for the first event whose fields do not fit its kind."""
        small = _small(kinds)
        if small is not None:           # a table indexed by kind: no sort (np.unique's)
            present = np.flatnonzero(np.bincount(small)).tolist()
            table = np.full(present[-1] + 1, -1, np.int64)
            table[present] = [self._row_len.get(k, -1) - N_COMMON for k in present]
            want = table[small]
        else:
            uniq, inverse = np.unique(kinds, return_inverse=True)
            want = np.array([self._row_len.get(k, -1) - N_COMMON
                             for k in uniq.tolist()])[inverse.reshape(-1)]
        got = fields.lengths() if type(fields) is CodedFields else \
            np.fromiter(map(len, fields), np.int64, len(fields))
        bad = np.flatnonzero(want != got)
        if len(bad):
            kind = int(kinds[bad[0]])
            raise ValueError(f"kind {kind}: expected {self._row_len.get(kind, 0) - N_COMMON} "
                             f"fields, got {got[bad[0]]}")

    def _add_each(self, ts: np.ndarray, kinds: np.ndarray, cpus: np.ndarray,
                  who: Lists | Coded, fields: Sequence[tuple]) -> None:
        add = self.add
        if type(fields) is CodedFields:
            fields = fields.tolist()
        for row in zip(ts.tolist(), kinds.tolist(), cpus.tolist(), *who.lists(), fields):
            add(*row[:4], row[5], row[4])

    def _comms_fit(self, who: Lists | Coded) -> bool:
        """Whether no pid's comm changes in the slice or from what the chunk has; if so
        the chunk's comms take the slice's (in first-seen order, as add keeps them)."""
        pairs = who.pairs()
        if pairs is None:
            return False
        had = self._comms
        for pid, comm in pairs.items():
            seen = had.get(pid, _MISSING)
            if seen is not _MISSING and seen is not comm and seen != comm:
                return False
        had.update(pairs)
        return True

    def _extend_lists(self, ts: np.ndarray, kinds: np.ndarray, cpus: np.ndarray,
                      who: Lists | Coded, fields: Sequence[tuple]) -> None:
        """Append a slice (comms already taken) to the list buffers :meth:`add` fills."""
        if not self._kinds:
            self._base_ts = self._last_ts = int(ts[0])
        self._kinds.extend(kinds.tolist())
        self._dts.extend(np.diff(ts, prepend=self._last_ts).tolist())
        self._cpus.extend(cpus.tolist())
        self._pids.extend(who.lists()[0])
        self._last_ts = int(ts[-1])
        if type(fields) is CodedFields:
            fields = fields.tolist()
        for kind, rows in _by_kind(kinds, fields):
            self._fields.setdefault(kind, []).extend(rows)

    def _unpend(self) -> None:
        """Move the pending slices into the list buffers (before an add)."""
        parts, self._pending, self._pending_n = self._pending, [], 0
        last = self._last_ts
        for part in parts:
            self._extend_lists(*part)
        self._last_ts = last

    def _write_pending(self) -> None:
        """The pending slices as one chunk: what :meth:`_flush` writes from lists."""
        parts, self._pending, self._pending_n = self._pending, [], 0
        ts, kinds, cpus = (np.concatenate([p[j] for p in parts]) for j in range(3))
        coded = [(p[1], p[4]) for p in parts if type(p[4]) is CodedFields]
        per_kind = kind_columns(coded, _column) if len(coded) == len(parts) and \
            self.version >= 2 else None
        fields = None if per_kind is not None else list(chain.from_iterable(
            p[4].tolist() if type(p[4]) is CodedFields else p[4] for p in parts))
        comms = [x for pid, comm in self._comms.items() if comm is not None for x in (pid, comm)]
        self._comms = {}
        base = int(ts[0])
        dts = np.diff(ts, prepend=base)
        if self.version >= 2:
            if per_kind is None:
                per_kind = [[kind, [_column(c) for c in transpose(rows)]]
                            for kind, rows in sorted(_by_kind(kinds, fields))]
            body = [int_array_column(kinds), int_array_column(dts), int_array_column(cpus),
                    pid_column([p[3] for p in parts], _column), per_kind]
            lo, hi = int(ts.min()), int(ts.max())
            payload = framing.pack([base, lo, hi, len(ts), comms, body])
            if len(payload) <= framing.MAX_FRAME[framing.CHUNK]:
                self._append_chunk(payload, lo, hi, len(ts), _counts(kinds), _counts(cpus))
                return
        pids = list(chain.from_iterable(p[3].lists()[0] for p in parts))
        if fields is None:
            fields = list(chain.from_iterable(p[4].tolist() for p in parts))
        self._write_chunk(base, [(k, d, c, p, *f) for k, d, c, p, f in zip(
            kinds.tolist(), dts.tolist(), cpus.tolist(), pids, fields)], comms)


def _by_kind(kinds: np.ndarray, fields: Sequence[tuple]) -> list[tuple[int, Sequence]]:
    """``(kind, its fields in order)`` for each kind in ``kinds``, in the order of a
    stable sort by kind."""
    first = int(kinds[0])
    if (kinds == first).all():
        return [(first, fields)]
    small = _small(kinds)
    # A stable sort's order depends only on the keys' order: of small ints, numpy sorts
    # them by radix, in O(n).
    order = np.argsort(kinds if small is None else small, kind="stable")
    grouped = kinds[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).tolist()
    in_order = itemgetter(*order.tolist())(fields)     # a tuple: 2+ kinds, 2+ events
    return [(int(grouped[a]), in_order[a:b])
            for a, b in zip(starts, starts[1:] + [len(kinds)])]


def _counts(a: np.ndarray) -> dict[int, int]:
    """How many times each value occurs in ``a`` (non-empty), by value."""
    small = _small(a)
    if small is None:
        values, counts = np.unique(a, return_counts=True)
        return dict(zip(values.tolist(), counts.tolist()))
    counts = np.bincount(small)
    values = np.flatnonzero(counts)
    return dict(zip(values.tolist(), counts[values].tolist()))


def _column(values: Sequence) -> object:
    """:func:`.columns.encode_column` of ``values``, at a few ns a value instead of tens
    when they are all one int, one str or all nil (a simulator's mm, pid, cause or its
    nil ``inferred``): what encode_column makes of such a column, made without looking
    at each value again. Any other column goes to encode_column (tests hold the two
    equal on constant columns of every type and length)."""
    n = len(values)
    first = values[0] if n else None
    if not n or values[-1] is not first and values[-1] != first or values.count(first) != n:
        return encode_column(values)
    if first is None:
        return {"d": [None], "c": b"B" + bytes(n)} if n >= _DICT_MIN_ROWS else list(values)
    kind = type(first)
    if (kind is int or kind is str) and set(map(type, values)) == {kind}:
        if kind is str:
            return {"d": [first], "c": b"B" + bytes(n)} if n >= _DICT_MIN_ROWS else \
                list(values)
        if -(1 << 63) <= first < 1 << 63:
            return int_array_column(np.full(n, first, np.int64))
        if 1 << 63 <= first < 1 << 64:
            return b"Q" + np.full(n, first, "<u8").tobytes()
    return encode_column(values)
