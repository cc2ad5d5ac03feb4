"""Each event's fields as a code into a table of tuples (the writer's bulk path, bulk.py).

A simulator emits millions of events whose fields repeat: a run of faults shares one
fields tuple over tens of events. Given as one tuple an event, the writer would sort the
tuples by kind, transpose them and encode each column value by value: ~200 ns an event,
most of a simulator's writing time. Given as :class:`Coded` (``table.entries[codes[i]]``
is event i's tuple), each kind's entries are transposed once into arrays (:meth:`Table.
columns`) and a chunk's columns are numpy takes of them, so an event costs its share of
its entry. The values, hence the bytes, are those of the tuples (tests hold them equal).
"""

from __future__ import annotations

from array import array
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .columns import int_array_column, transpose

_NO_INTS = np.zeros(0, np.int64)


def _small(a: np.ndarray) -> np.ndarray | None:
    """``a`` (non-empty) as uint8 or uint16 when its values fit (kinds), else None."""
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= 1 << 16:
        return None
    return a.astype(np.uint8 if hi < 1 << 8 else np.uint16)


def groups(kinds: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(kind, the indexes of its events in order)`` for each kind, ascending: a stable
    sort's order (of small ints, numpy sorts by radix, in O(n))."""
    first = int(kinds[0])
    if (kinds == first).all():
        return [(first, np.arange(len(kinds)))]
    small = _small(kinds)
    order = np.argsort(kinds if small is None else small, kind="stable")
    grouped = kinds[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).tolist()
    return [(int(grouped[a]), order[a:b]) for a, b in zip(starts, starts[1:] + [len(kinds)])]


class Same:
    """A column of one str or nil (a cause, a simulator's nil ``inferred``): its length
    alone, so that a chunk's values are made by a list repetition, not taken one by one."""

    __slots__ = ("value", "n")
    dtype = None

    def __init__(self, value: Any, n: int) -> None:
        self.value, self.n = value, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: np.ndarray) -> "Same":
        return Same(self.value, len(rows))

    def tolist(self) -> list:
        return [self.value] * self.n

    def astype(self, dtype: Any) -> np.ndarray:
        return np.array(self.tolist() + [0], object)[:-1]


def _as_array(values: list) -> np.ndarray | Same:
    """A column of entries: int64 or uint64 when every value is an int (not a bool) that
    fits (what int_column packs), one str or nil as a :class:`Same`, else an object
    array of the values themselves."""
    first = values[0]
    if (first is None or type(first) is str) and values.count(first) == len(values) and \
            set(map(type, values)) == {type(first)}:
        return Same(first, len(values))
    if set(map(type, values)) == {int}:
        for code, dtype in (("q", np.int64), ("Q", np.uint64)):
            try:
                return np.frombuffer(array(code, values), dtype)
            except OverflowError:
                pass
    return np.fromiter(values, object, len(values))


def _merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` then ``b``; as objects (Python ints) when their dtypes differ."""
    if type(a) is Same and type(b) is Same and a.value is b.value:
        return Same(a.value, a.n + b.n)
    if a.dtype != b.dtype:
        a, b = a.astype(object), b.astype(object)
    return np.concatenate([a, b])


class Table:
    """Fields tuples: ``entries`` (codes from 0, each one's kind in ``row_kinds``), then
    the entries of each kind of ``packed`` given as its columns (the codes after, kind by
    kind in its order): a simulator's most common events never made into tuples. Each
    kind's columns are made once, on first use (a table serves several chunks)."""

    __slots__ = ("entries", "row_kinds", "packed", "kinds", "_columns", "_local", "_lengths",
                 "_list")

    def __init__(self, entries: list[tuple], kinds: np.ndarray,
                 packed: dict[int, list[np.ndarray]] | None = None) -> None:
        self.entries, self.row_kinds, self.packed = entries, kinds, packed or {}
        #: Each code's kind.
        self.kinds = np.concatenate([kinds] + [np.full(len(c[0]), k, np.int64)
                                               for k, c in self.packed.items()])
        self._columns: dict[int, list[np.ndarray] | None] = {}
        self._local: np.ndarray | None = None      # each code's row in its kind's columns
        self._lengths: np.ndarray | None = None
        self._list: list[tuple] | None = None

    def __len__(self) -> int:
        return len(self.kinds)

    def bounds(self) -> list[int]:
        """Where the entries and each packed kind's codes begin, and the end."""
        at = [0, len(self.entries)]
        for cols in self.packed.values():
            at.append(at[-1] + len(cols[0]))
        return at

    def lengths(self) -> np.ndarray:
        if self._lengths is None:
            self._lengths = np.concatenate(
                [np.fromiter(map(len, self.entries), np.int64, len(self.entries))]
                + [np.full(len(c[0]), len(c), np.int64) for c in self.packed.values()])
        return self._lengths

    def tuples(self) -> list[tuple]:
        """Every code's tuple (the packed ones made): for the writer's slow paths."""
        if self._list is None:
            self._list = self.entries + [t for cols in self.packed.values()
                                         for t in zip(*(c.tolist() for c in cols))]
        return self._list

    def columns(self, kind: int) -> tuple[list[np.ndarray], np.ndarray] | None:
        """The columns of ``kind``'s entries, and each code's row in them; None when
        its entries differ in length (the writer refuses them before asking)."""
        if kind not in self._columns:
            if self._local is None:
                # Codes of a kind in order: its tuples, then its packed entries.
                self._local = np.zeros(len(self.kinds), np.int64)
                for _, at in groups(self.kinds) if len(self.kinds) else ():
                    self._local[at] = np.arange(len(at))
            at = np.flatnonzero(self.row_kinds == kind).tolist()
            rows = [self.entries[i] for i in at] if len(at) < 2 else \
                list(itemgetter(*at)(self.entries))
            packed = self.packed.get(kind)
            widths = set(map(len, rows)) | ({len(packed)} if packed else set())
            cols = None
            if len(widths) == 1:
                cols = [_as_array(c) for c in transpose(rows)] if rows else packed
                if rows and packed:
                    cols = [_merged(a, b) for a, b in zip(cols, packed)]
            self._columns[kind] = cols
        cols = self._columns[kind]
        return None if cols is None else (cols, self._local)


class Coded:
    """Event i's fields are ``table.entries[codes[i]]``: a sequence of tuples to the
    writer (len, slices, iteration), without a tuple an event."""

    __slots__ = ("codes", "table")

    def __init__(self, codes: np.ndarray, table: Table) -> None:
        self.codes, self.table = codes, table

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, part: slice) -> "Coded":
        if not isinstance(part, slice):
            raise TypeError("Coded fields take slices; take() for an order")
        return Coded(self.codes[part], self.table)

    def take(self, order: np.ndarray) -> "Coded":
        return Coded(self.codes[order], self.table)

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.tolist())

    def tolist(self) -> list[tuple]:
        return list(map(self.table.tuples().__getitem__, self.codes.tolist()))

    def lengths(self) -> np.ndarray:
        """Each event's number of fields."""
        return self.table.lengths()[self.codes] if len(self.codes) else _NO_INTS

    def compact(self) -> "Coded":
        """The same fields in a table of the entries they use alone (what a machine keeps
        for later holds only what it needs). Codes keep their order."""
        used, codes = np.unique(self.codes, return_inverse=True)
        t = self.table
        bounds = t.bounds()
        rows = used[used < bounds[1]].tolist()
        packed = {}
        for (kind, cols), lo, hi in zip(t.packed.items(), bounds[1:], bounds[2:]):
            mine = used[(used >= lo) & (used < hi)] - lo
            if len(mine):
                packed[kind] = [c[mine] for c in cols]
        table = Table([t.entries[i] for i in rows], t.row_kinds[rows], packed)
        return Coded(codes.reshape(-1).astype(np.int64), table)

    @staticmethod
    def concat(parts: Sequence["Coded"]) -> "Coded":
        """The events of ``parts`` in order, in one table: the tables' tuples one after
        another, then each packed kind's entries one table after another."""
        tables = list({id(p.table): p.table for p in parts}.values())
        if len(tables) == 1:
            return Coded(np.concatenate([p.codes for p in parts]), tables[0])
        kinds = list(dict.fromkeys(k for t in tables for k in t.packed))
        packed = {}
        for k in kinds:
            cols = [t.packed[k] for t in tables if k in t.packed]
            packed[k] = cols[0]
            for more in cols[1:]:
                packed[k] = [_merged(a, b) for a, b in zip(packed[k], more)]
        table = Table(list(chain.from_iterable(t.entries for t in tables)),
                      np.concatenate([t.row_kinds for t in tables]), packed)
        # Each table's codes move by where its tuples and each of its packed kinds land.
        new = dict(zip(kinds, table.bounds()[1:]))
        rows_before, before = 0, dict.fromkeys(kinds, 0)
        shifts = {}
        for t in tables:
            shift = [rows_before]
            for k, lo in zip(t.packed, t.bounds()[1:]):
                shift.append(new[k] + before[k] - lo)
                before[k] += len(t.packed[k][0])
            shifts[id(t)] = (np.array(t.bounds()[1:-1], np.int64), np.array(shift, np.int64))
            rows_before += len(t.entries)
        out = []
        for p in parts:
            edges, shift = shifts[id(p.table)]
            out.append(p.codes + shift[np.searchsorted(edges, p.codes, side="right")])
        return Coded(np.concatenate(out), table)


def kind_columns(parts: Sequence[tuple[np.ndarray, Coded]], column: Callable[[list], Any]
                 ) -> list | None:
    """A v2 chunk's ``fields`` element for the events of ``parts`` ((kinds, fields),
    in order): each kind present, ascending, with its columns; what ``column`` makes of
    each kind's values, integer columns made from the arrays without it. None when an
    event's entry is of another kind (the caller then encodes the tuples)."""
    pieces: dict[int, list[list[np.ndarray]]] = {}
    for kinds, fields in parts:
        table = fields.table
        for kind, at in groups(kinds):
            codes = fields.codes[at]
            made = table.columns(kind)
            if made is None or bool((table.kinds[codes] != kind).any()):
                return None
            cols, local = made
            rows = local[codes]
            pieces.setdefault(kind, []).append([c[rows] for c in cols])
    return [[kind, [_joined([p[j] for p in pieces[kind]], column)
                    for j in range(len(pieces[kind][0]))]]
            for kind in sorted(pieces)]


def _joined(arrays: list[np.ndarray], column: Callable[[list], Any]) -> Any:
    """``column`` of the values of ``arrays`` one after another, without it when they are
    ints: what int_column packs (int64 when every value fits, else uint64)."""
    if all(type(a) is Same and a.value is arrays[0].value for a in arrays):
        return column([arrays[0].value] * sum(a.n for a in arrays))
    dtypes = {a.dtype for a in arrays}
    if dtypes == {np.dtype(np.int64)}:
        return int_array_column(np.concatenate(arrays))
    if dtypes == {np.dtype(np.uint64)}:
        a = np.concatenate(arrays)
        if int(a.max()) < 1 << 63:
            return int_array_column(a.astype(np.int64))
        return b"Q" + a.astype("<u8").tobytes()
    return column(list(chain.from_iterable(a.tolist() for a in arrays)))
