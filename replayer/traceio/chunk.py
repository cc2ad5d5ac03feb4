"""A chunk as the reader hands it out: its index entry, rows and checked columns."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np

_EMPTY_U16 = np.zeros(0, np.uint16)
#: Events folded at once, at most (whole chunks; a load never past a checkpoint, a seek
#: a group at a time): numpy's cost per call, not per row, dominates the fold of one
#: 4096-row chunk, and a group bounds what a fold holds.
GROUP_EVENTS = 32768


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """One footer index entry: where a chunk is and what time it covers."""

    index: int
    offset: int
    min_ts: int
    max_ts: int
    count: int


class Chunk:
    """A decoded chunk: positional rows with delta timestamps, plus comms.

    ``rows[i]`` is ``(kind, dts, cpu, pid, *fields)`` with ``kind`` already in
    this reader's :class:`KindTable` ids; ``timestamps()`` gives absolute ones.
    A v2 chunk arrives as columns; its rows are made on first use, in C.
    """

    __slots__ = ("info", "base_ts", "_rows", "comms", "kinds", "cpus", "dts", "_ts",
                 "_pids", "_fields", "_ranks", "_ranked")

    def __init__(self, info: ChunkInfo, base_ts: int, rows: tuple | None, comms: dict
                 ) -> None:
        self.info = info
        self.base_ts = base_ts
        self._rows = rows
        self.comms = comms
        self._pids = self._fields = self._ranks = None
        self._ranked: set[int] = set()
        #: Each row's kind and CPU as numpy uint16 columns, filled by the reader's checks.
        self.kinds = _EMPTY_U16
        self.cpus = _EMPTY_U16
        #: The rows' time deltas as ``array('q')``, filled by the reader's checks.
        self.dts = array("q")
        self._ts: array | None = None

    def timestamps(self) -> array:
        """Absolute timestamps as ``array('q')`` (plain ints when indexed); computed
        once, O(n) in C."""
        if self._ts is None:
            stamps = np.cumsum(np.frombuffer(self.dts, np.int64))
            stamps += self.base_ts
            self._ts = int64_array(stamps)
        return self._ts

    def set_columns(self, pids, fields: dict) -> None:
        """A v2 chunk's pid column and field columns per kind (:mod:`.columns`);
        ``kinds``, ``cpus`` and ``dts`` are set by the reader."""
        self._pids, self._fields = pids, fields

    @property
    def has_columns(self) -> bool:
        """Whether the rows can be read as columns (a v2 chunk whose rows were not
        made yet): :meth:`column` and :meth:`rows_at` then avoid making every row."""
        return self._fields is not None and self._rows is None

    def column(self, kind: int, j: int) -> list:
        """Field ``j`` of every row of ``kind``, in row order (column chunks only)."""
        return self._fields[kind][j].tolist() if kind in self._fields else []

    def int_column(self, kind: int, j: int) -> np.ndarray | None:
        """:meth:`column` as the integer array it is stored as, or None when it is not
        stored as integers (column chunks only)."""
        return self._fields[kind][j].ints if kind in self._fields else None

    def field_column(self, kind: int, j: int):
        """Field ``j`` of the rows of ``kind`` as its :class:`.columns.Column` (column
        chunks only; None when no row is of that kind)."""
        return self._fields[kind][j] if kind in self._fields else None

    def field_columns(self, kind: int) -> list:
        """Every field of the rows of ``kind`` as :class:`.columns.Column` s, in the kind
        table's order (column chunks only; empty when no row is of that kind)."""
        return list(self._fields.get(kind, ()))

    def pids_at(self, at: np.ndarray):
        """The pid column at positions ``at``, as a :class:`.columns.Column` (column
        chunks only)."""
        return self._pids.take(at)

    def rows_at(self, at: np.ndarray) -> tuple | list:
        """The rows at positions ``at`` (ascending)."""
        if not self.has_columns:
            rows = self.rows
            return itemgetter(*at.tolist())(rows) if len(at) > 1 else \
                tuple(rows[i] for i in at.tolist())
        from .columns import rows_at
        if self._ranks is None:
            self._ranks = np.zeros(len(self.kinds), np.int64)
        # Each row's place among its kind's rows, for the kinds asked for only: a fold
        # visits a few kinds of a chunk (a pass each), where ranking every row took a
        # stable sort of them all. A kind is marked ranked once its ranks are in.
        for kind in np.unique(self.kinds[at]).tolist():
            if kind not in self._ranked:
                where = np.flatnonzero(self.kinds == kind)
                self._ranks[where] = np.arange(len(where))
                self._ranked.add(kind)
        return rows_at(self.kinds, np.frombuffer(self.dts, np.int64), self.cpus, self._pids,
                       self._fields, self._ranks, at)

    @property
    def rows(self) -> tuple | list:
        if self._rows is None:
            from .columns import materialize_rows
            self._rows = materialize_rows(self.kinds, np.frombuffer(self.dts, np.int64),
                                          self.cpus, self._pids, self._fields)
        return self._rows

    def __len__(self) -> int:
        return len(self.kinds) if self._rows is None else len(self._rows)


class ChunkSlice:
    """Rows ``[lo, hi)`` of a column chunk, as the fold reads a stretch of it (a seek
    folds from a checkpoint to a time inside a chunk): its columns sliced, no row
    made but those the fold visits."""

    __slots__ = ("chunk", "lo", "hi", "kinds", "cpus")
    has_columns = True

    def __init__(self, chunk: Chunk, lo: int, hi: int) -> None:
        self.chunk, self.lo, self.hi = chunk, lo, hi
        self.kinds, self.cpus = chunk.kinds[lo:hi], chunk.cpus[lo:hi]

    def __len__(self) -> int:
        return self.hi - self.lo

    def _field(self, kind: int, j: int):
        column = self.chunk._fields[kind][j]
        before = int(np.count_nonzero(self.chunk.kinds[:self.lo] == kind))
        return column.slice(before, before + int(np.count_nonzero(self.kinds == kind)))

    def column(self, kind: int, j: int) -> list:
        """Field ``j`` of the slice's rows of ``kind``, in row order."""
        return self._field(kind, j).tolist() if kind in self.chunk._fields else []

    def int_column(self, kind: int, j: int) -> np.ndarray | None:
        return self._field(kind, j).ints if kind in self.chunk._fields else None

    def field_column(self, kind: int, j: int):
        return self._field(kind, j) if kind in self.chunk._fields else None

    def pids_at(self, at: np.ndarray):
        return self.chunk.pids_at(np.asarray(at) + self.lo)

    def rows_at(self, at: np.ndarray) -> tuple | list:
        """The rows at positions ``at`` of the slice (ascending)."""
        return self.chunk.rows_at(np.asarray(at) + self.lo)



def merge_chunks(chunks: list[Chunk]) -> Chunk:
    """Consecutive chunks as one: what the replay folds at once, because numpy's cost
    per call, not per row, dominates a 4096-row chunk. Rows, columns and timestamps
    are those of the parts one after another (each row keeps its delta); ``info``
    covers them all, ``comms`` is the parts' merged. O(n) in C."""
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    info = ChunkInfo(first.info.index, first.info.offset,
                     min(c.info.min_ts for c in chunks), max(c.info.max_ts for c in chunks),
                     sum(c.info.count for c in chunks))
    comms: dict = {}
    for c in chunks:
        comms.update(c.comms)
    if all(c.has_columns for c in chunks):
        merged = Chunk(info, first.base_ts, None, comms)
        from .columns import concat_columns
        merged.set_columns(concat_columns([c._pids for c in chunks]), _MergedFields(chunks))
    else:
        merged = Chunk(info, first.base_ts, tuple(chain.from_iterable(c.rows for c in chunks)),
                       comms)
    merged.kinds = np.concatenate([c.kinds for c in chunks])
    merged.cpus = np.concatenate([c.cpus for c in chunks])
    # bytes.join reads each array's buffer: one copy into the bytes, one into the array.
    merged.dts = array("q", b"".join([c.dts for c in chunks]))
    merged._ts = array("q", b"".join([c.timestamps() for c in chunks]))
    return merged


def int64_array(a: np.ndarray) -> array:
    """An int64 numpy array as ``array('q')``: one copy (``array(tobytes())`` makes two)."""
    out = array("q")
    if len(a):          # a zero-size buffer cannot always be cast
        out.frombytes(memoryview(np.ascontiguousarray(a, np.int64)).cast("B"))
    return out


class _MergedFields(Mapping):
    """The field columns of consecutive chunks, kind by kind, each column joined when
    first read: the fold reads a few columns of a few kinds (not a detach's
    ``inferred`` or an IPI's callsite), and a raw event's packed text is not made into
    strings unless asked for."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self._chunks = chunks
        self._kinds = sorted(set().union(*(c._fields for c in chunks)))
        self._made: dict[int, _MergedColumns] = {}

    def __getitem__(self, kind: int) -> "_MergedColumns":
        made = self._made.get(kind)
        if made is None:
            if kind not in self._kinds:
                raise KeyError(kind)
            made = self._made[kind] = _MergedColumns(
                [c._fields[kind] for c in self._chunks if kind in c._fields])
        return made

    def __contains__(self, kind: object) -> bool:
        return kind in self._made or kind in self._kinds

    def __iter__(self):
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


class _MergedColumns(Sequence):
    """One kind's field columns over consecutive chunks (each part a chunk's list of
    columns), column ``j`` joined when first read."""

    __slots__ = ("_parts", "_made")

    def __init__(self, parts: list[list]) -> None:
        self._parts = parts
        self._made: list = [None] * len(parts[0])

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self._made)))]
        made = self._made[j]
        if made is None:
            from .columns import concat_columns
            made = self._made[j] = concat_columns([part[j] for part in self._parts])
        return made

    def __len__(self) -> int:
        return len(self._made)
