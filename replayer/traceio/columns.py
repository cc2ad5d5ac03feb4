"""Format v2 chunks: events stored as columns (FORMAT.md, "Version 2").

A v2 chunk's sixth element is ``[kinds, dts, cpus, pids, fields]``: the four
common columns, then ``fields`` = ``[[kind, [column, ...]], ...]``, one entry
per kind present (ascending ids), each column holding one field of that kind's
rows in row order. A column is one of

- ``bin``: one type byte (numpy's ``b B h H i I q Q``) then little-endian
  integers, the narrowest type that holds them;
- an array of the values themselves (nil, booleans, strings, arrays, maps);
- a map ``{"d": [distinct values], "c": <bin column of indexes into d>}``:
  strings that repeat (causes, reasons, comms of raw events, payload texts).

Decoding is a ``frombuffer`` per integer column; checking one is a ``min`` and a
``max`` in numpy. Rows are made from the columns in C (``zip`` per kind, then a
scatter through an object array), at about the cost of decoding v1 rows alone,
so a v2 chunk is read and checked several times faster than a v1 chunk.
"""

from __future__ import annotations

from array import array
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Sequence

import numpy as np

from .columns_text import decode_struct, decode_words, encode_struct, encode_words

_NONE = type(None)
#: type byte → numpy dtype of an integer column.
DTYPES = {ord(c): np.dtype(f"<{c}") for c in "bBhHiIqQ"}
_UNSIGNED = ((1 << 8, "B"), (1 << 16, "H"), (1 << 32, "I"), (1 << 63, "q"))
_SIGNED = ((1 << 7, "b"), (1 << 15, "h"), (1 << 31, "i"), (1 << 63, "q"))
#: How deep struct columns may nest (the reader refuses deeper ones).
MAX_STRUCT_DEPTH = 8
#: Fewer rows than this stay a plain array (a dictionary would not pay for itself).
_DICT_MIN_ROWS = 8


def int_column(values: Sequence[int]) -> bytes | None:
    """``values`` (Python ints, no bools) as a ``bin`` column, or None when one does
    not fit 64 bits. O(n) in C (``array`` takes Python ints faster than numpy)."""
    try:
        a = np.frombuffer(array("q", values), np.int64)
    except OverflowError:
        try:
            return b"Q" + np.frombuffer(array("Q", values), np.uint64).astype("<u8").tobytes()
        except OverflowError:
            return None
    return int_array_column(a)


def int_array_column(a: np.ndarray) -> bytes:
    """An int64 array as a ``bin`` column: the narrowest type that holds its values."""
    if not len(a):
        return b"B"
    lo, hi = int(a.min()), int(a.max())
    table = _UNSIGNED if lo >= 0 else _SIGNED
    span = hi if lo >= 0 else max(hi, -lo - 1)
    code = next(c for limit, c in table if span < limit)
    return code.encode() + a.astype(f"<{code}").tobytes()


def encode_column(values: Sequence[Any], depth: int = 0) -> Any:
    """The most compact column form for ``values``. O(n) in C, except words
    (:mod:`.columns_text`), tried for texts that do not repeat whole. Structs nest
    at most :data:`MAX_STRUCT_DEPTH` deep (deeper maps stay an array)."""
    types = set(map(type, values))
    if types == {int}:
        packed = int_column(values)
        if packed is not None:
            return packed
    if len(values) >= _DICT_MIN_ROWS:
        if types == {int, _NONE}:
            # A pid column with the kernel's nil among the tasks: a few distinct values
            # checked once each, not a value per row.
            distinct = dict.fromkeys(values)
            if 2 * len(distinct) <= len(values) and int_column(
                    [v for v in distinct if v is not None]) is not None:
                index = {v: i for i, v in enumerate(distinct)}
                return {"d": list(distinct),
                        "c": int_column(list(map(index.__getitem__, values)))}
        elif types <= {str, _NONE}:
            distinct = dict.fromkeys(values)
            if 2 * len(distinct) <= len(values):
                index = {v: i for i, v in enumerate(distinct)}
                return {"d": list(distinct),
                        "c": int_column(list(map(index.__getitem__, values)))}
            if types == {str}:
                packed = encode_words(values, int_array_column)
                if packed is not None:
                    return packed
        elif types == {dict} and depth < MAX_STRUCT_DEPTH:
            packed = encode_struct(values, lambda c: encode_column(c, depth + 1))
            if packed is not None:
                return packed
    return list(values)


class Column:
    """One decoded column: ``ints`` (a numpy array), or ``values`` (a tuple; made on
    first use for the struct and words forms, whose ``form`` says so), or a
    dictionary ``values`` with ``codes`` into it."""

    __slots__ = ("ints", "_values", "codes", "_make", "form", "_n")

    def __init__(self, ints: np.ndarray | None = None, values: tuple | None = None,
                 codes: np.ndarray | None = None, make: Callable[[], tuple] | None = None,
                 form: str | None = None, n: int = 0) -> None:
        self.ints, self._values, self.codes = ints, values, codes
        self._make, self.form, self._n = make, form, n

    @property
    def values(self) -> tuple:
        if self._values is None and self._make is not None:
            self._values, self._make = self._make(), None
        return self._values

    def __len__(self) -> int:
        if self.ints is not None:
            return len(self.ints)
        if self._make is not None:
            return self._n
        return len(self.codes) if self.codes is not None else len(self.values)

    def tolist(self) -> list:
        """The column as Python values, as v1 rows hold them. O(n) in C."""
        if self.ints is not None:
            return self.ints.tolist()
        if self.codes is not None:
            if len(self.values) == 1:
                return [self.values[0]] * len(self.codes)
            # A take from an object array of the values (``fromiter``: a tuple value
            # stays one item): the same objects, in C, a sixth of a lookup per row.
            values = np.fromiter(self.values, object, len(self.values))
            return values.take(self.codes).tolist()
        return list(self.values)

    def slice(self, a: int, b: int) -> "Column":
        """Values ``a`` to ``b``, as a column (a struct or words column is made first)."""
        if self.ints is not None:
            return Column(ints=self.ints[a:b])
        if self.codes is not None:
            return Column(values=self.values, codes=self.codes[a:b])
        return Column(values=self.values[a:b])

    def take(self, at: np.ndarray) -> "Column":
        """The values at positions ``at``, as a column."""
        if self.ints is not None:
            return Column(ints=self.ints[at])
        if self.codes is not None:
            return Column(values=self.values, codes=self.codes[at])
        values = self.values
        return Column(values=tuple(map(values.__getitem__, at.tolist())))


def decode_column(obj: Any, n: int, depth: int = 0) -> Column:
    """A column of ``n`` rows as decoded by msgpack; ValueError says what is wrong."""
    if depth > MAX_STRUCT_DEPTH:
        raise ValueError("struct columns nest too deep")
    if isinstance(obj, bytes):
        return Column(ints=_ints(obj, n))
    if isinstance(obj, tuple):
        if len(obj) != n:
            raise ValueError(f"a column holds {len(obj)} values for {n} rows")
        return Column(values=obj)
    if isinstance(obj, dict) and set(obj) == {"d", "c"} and isinstance(obj["d"], tuple) \
            and isinstance(obj["c"], bytes):
        codes = _ints(obj["c"], n)
        if n and (int(codes.min()) < 0 or int(codes.max()) >= len(obj["d"])):
            raise ValueError("a dictionary column's index is outside its dictionary")
        return Column(values=obj["d"], codes=codes)
    if isinstance(obj, dict) and set(obj) == {"k", "f"}:
        return Column(make=decode_struct(obj, n, lambda c, m: decode_column(c, m, depth + 1)),
                      form="struct", n=n)
    if isinstance(obj, dict) and set(obj) == {"w", "c", "n"}:
        return Column(make=decode_words(obj, n, _ints), form="words", n=n)
    raise ValueError("a column is not a bin, an array, a dictionary, a struct or words")


def _ints(data: bytes, n: int) -> np.ndarray:
    dtype = DTYPES.get(data[0]) if data else None
    if dtype is None:
        raise ValueError("an integer column has an unknown type byte")
    if len(data) - 1 != n * dtype.itemsize:
        raise ValueError(f"an integer column holds {(len(data) - 1) // dtype.itemsize} "
                         f"values for {n} rows")
    return np.frombuffer(data, dtype, n, 1)


def transpose(rows: Sequence[tuple]) -> list[list]:
    """The columns of ``rows`` (tuples of one length; none for no rows). What ``zip(*rows)``
    gives, as lists, at half its cost: zip keeps an iterator per row alive (tens of
    thousands) and steps through them all for each column, out of cache."""
    return [list(map(itemgetter(j), rows)) for j in range(len(rows[0]))] if rows else []


def encode_columns(kinds: list[int], dts: list[int], cpus: list, pids: list,
                   fields: dict[int, list[tuple]]) -> list:
    """The sixth element of a v2 chunk from the writer's column buffers (each kind's
    fields tuples in event order). O(n) in C."""
    per_kind = [[kind, [encode_column(c) for c in transpose(fields[kind])]]
                for kind in sorted(fields)]
    return [encode_column(kinds), encode_column(dts), encode_column(cpus),
            encode_column(pids), per_kind]


def encode_rows(rows: Sequence[tuple]) -> list:
    """:func:`encode_columns` for v1-style ``rows`` (the writer's path for a chunk it
    had to split)."""
    fields: dict[int, list[tuple]] = {}
    for row in rows:
        fields.setdefault(row[0], []).append(row[4:])
    return encode_columns(*(list(map(itemgetter(j), rows)) for j in range(4)), fields)


def materialize_rows(kinds: np.ndarray, dts: np.ndarray, cpus: np.ndarray, pids: Column,
                     fields: dict[int, list[Column]]) -> tuple:
    """v1-style rows ``(kind, dts, cpu, pid, *fields)`` in row order. O(n) in C: the
    rows grouped by kind (a stable argsort), a ``zip`` per kind, then one
    ``itemgetter`` puts them back in row order."""
    n = len(kinds)
    if not n:
        return ()
    order = np.argsort(kinds, kind="stable")
    grouped = kinds[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).tolist() + [n]
    g_dts, g_cpus = dts[order].tolist(), cpus[order].tolist()
    g_pids = pids.take(order).tolist()
    made: list[tuple] = []
    for lo, hi in zip(starts, starts[1:]):
        kind = int(grouped[lo])
        columns = [c.tolist() for c in fields.get(kind, ())]
        made.extend(zip([kind] * (hi - lo), g_dts[lo:hi], g_cpus[lo:hi], g_pids[lo:hi],
                        *columns))
    back = np.empty(n, np.int64)
    back[order] = np.arange(n)
    return itemgetter(*back.tolist())(made) if n > 1 else tuple(made)


def rows_at(kinds: np.ndarray, dts: np.ndarray, cpus: np.ndarray, pids: Column,
            fields: dict[int, list[Column]], ranks: np.ndarray, at: np.ndarray) -> tuple:
    """The v1-style rows at positions ``at`` only (ascending), made from the columns:
    what the fold visits, without making the rows it skips. O(len(at)) in C."""
    if not len(at):
        return ()
    k_at = kinds[at]
    order = np.argsort(k_at, kind="stable")
    grouped = k_at[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).tolist() + [len(at)]
    made: list[tuple] = []
    for lo, hi in zip(starts, starts[1:]):
        kind = int(grouped[lo])
        where = at[order[lo:hi]]
        r = ranks[where]
        columns = [c.take(r).tolist() for c in fields.get(kind, ())]
        made.extend(zip([kind] * (hi - lo), dts[where].tolist(), cpus[where].tolist(),
                        pids.take(where).tolist(), *columns))
    back = np.empty(len(at), np.int64)
    back[order] = np.arange(len(at))
    return itemgetter(*back.tolist())(made) if len(at) > 1 else tuple(made)


def decode_chunk(body: Any, n: int, remap: dict | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Column, dict[int, list[Column]]]:
    """``(kinds uint16, dts int64, cpus uint16, pids, {kind: field columns})`` of a v2
    chunk of ``n`` rows, kinds mapped onto the reader's table by ``remap`` (see
    :func:`.sections.kind_table`); ValueError says what is wrong."""
    if not (isinstance(body, tuple) and len(body) == 5 and isinstance(body[4], tuple)):
        raise ValueError("not [kinds, dts, cpus, pids, fields]")
    common = [decode_column(c, n) for c in body[:4]]
    for name, column in zip(("kind", "time delta", "cpu"), common):
        if column.ints is None:
            raise ValueError(f"the {name} column is not integers")
    kinds, dts, cpus = (c.ints for c in common[:3])
    if n and (int(kinds.min()) < 0 or int(kinds.max()) > 0xFFFF):
        raise ValueError("a kind is outside 0..65535")
    if n and (int(cpus.min()) < 0 or int(cpus.max()) > 0xFFFF):
        raise ValueError("a cpu is outside 0..65535")
    if dts.dtype == np.uint64 and n and int(dts.max()) >= 1 << 63:
        raise ValueError("a time delta is beyond 64 bits")
    kinds = kinds.astype(np.uint16)
    present = np.bincount(kinds, minlength=1)
    fields: dict[int, list[Column]] = {}
    for entry in body[4]:
        if not (isinstance(entry, tuple) and len(entry) == 2 and type(entry[0]) is int
                and isinstance(entry[1], tuple)):
            raise ValueError("a kind's fields are not [kind, [column, ...]]")
        kind, columns = entry
        if kind in fields or not 0 <= kind < len(present) or not present[kind]:
            raise ValueError(f"fields for kind {kind}, which has no rows here or twice")
        fields[kind] = [decode_column(c, int(present[kind])) for c in columns]
    if len(fields) != np.count_nonzero(present):
        missing = sorted(set(np.flatnonzero(present).tolist()) - set(fields))
        raise ValueError(f"kind {missing[0]} has rows but no fields entry")
    if remap is not None:
        kinds, fields = _remap(kinds, fields, remap)
    return kinds, dts.astype(np.int64), cpus.astype(np.uint16), common[3], fields


def _remap(kinds: np.ndarray, fields: dict[int, list[Column]], remap: dict
           ) -> tuple[np.ndarray, dict[int, list[Column]]]:
    """A foreign kind table's ids and field orders mapped onto the reader's."""
    lookup = np.full(1 << 16, -1, np.int64)
    out: dict[int, list[Column]] = {}
    for file_id, columns in fields.items():
        if file_id not in remap:
            raise ValueError(f"kind {file_id} is not in the header")
        spec, order = remap[file_id]
        if len(columns) != sum(j is not None for j in order):
            raise ValueError(f"kind {file_id} has {len(columns)} field columns, its header "
                             f"entry another number")
        m = len(columns[0]) if columns else int(np.count_nonzero(kinds == file_id))
        lookup[file_id] = spec.id
        out[spec.id] = [columns[j] if j is not None else Column(values=(None,) * m)
                        for j in order]
    return lookup[kinds].astype(np.uint16), out


def concat_columns(parts: Sequence[Column]) -> Column:
    """One column holding ``parts`` one after another (the same field of consecutive
    chunks): integers stay an array when one dtype can hold them all, dictionaries stay
    a dictionary (their value lists joined, codes shifted, or kept when every part
    has the same dictionary); otherwise the values. O(n) in C."""
    if len(parts) == 1:
        return parts[0]
    if all(p.ints is not None for p in parts):
        arrays = [p.ints for p in parts]
        dtype = arrays[0].dtype
        if all(a.dtype == dtype for a in arrays):
            return Column(ints=np.concatenate(arrays))
        dtype = np.result_type(*arrays)
        if dtype.kind in "iu":
            return Column(ints=np.concatenate(arrays).astype(dtype, copy=False))
        # uint64 beside a signed type (numpy would make floats): uint64 holds them when
        # none is negative, int64 when none is 2**63 or more.
        if all(not len(a) or int(a.min()) >= 0 for a in arrays):
            return Column(ints=np.concatenate([a.astype(np.uint64) for a in arrays]))
        if all(a.dtype != np.uint64 or not len(a) or int(a.max()) < 1 << 63 for a in arrays):
            return Column(ints=np.concatenate([a.astype(np.int64) for a in arrays]))
    elif all(p.codes is not None or p.ints is not None for p in parts):
        # Dictionaries beside integers (a pid column with nils in some chunks only):
        # the integers become a dictionary too.
        parts = [p if p.codes is not None else _as_dictionary(p.ints) for p in parts]
        if _same_dictionary(parts):
            return Column(values=parts[0].values,
                          codes=np.concatenate([p.codes for p in parts]))
        values: list = []
        codes = []
        for p in parts:
            codes.append(p.codes.astype(np.int64) + len(values) if values else p.codes)
            values.extend(p.values)
        return Column(values=tuple(values), codes=np.concatenate(codes).astype(np.int64))
    return Column(values=tuple(chain.from_iterable(
        p.values if p.ints is None and p.codes is None else p.tolist() for p in parts)))


#: Types whose equal values are the same value (``1 == True``, ``0.0 == -0.0``: not).
_EXACT = {str, int, _NONE}


def _same_dictionary(parts: Sequence[Column]) -> bool:
    """Whether every part's dictionary holds the same values as the first's (a cause or
    a reason column: chunk after chunk the same few strings). O(dictionary size)."""
    first = parts[0].values
    types = list(map(type, first))
    if not _EXACT.issuperset(types):
        return False
    return all(p.values == first and list(map(type, p.values)) == types for p in parts[1:])


def _as_dictionary(ints: np.ndarray) -> Column:
    values, codes = np.unique(ints, return_inverse=True)
    return Column(values=tuple(values.tolist()), codes=codes.reshape(-1))
