"""Reading a stretch's fields for the fold: from a column chunk's columns (no row
made) or from rows, and the runs of ``pte_set`` the fold applies as one step."""

from __future__ import annotations

from collections import Counter
from operator import itemgetter

import numpy as np

from . import vocab as v
from .traceio.chunk import Chunk, ChunkSlice
from .vocab import N_COMMON

_PFN, _N = (v.KIND_BY_ID[v.PTE_SET].fields.index(f) for f in ("pfn", "n"))
#: Row sources the fold reads as columns (else: a sequence of rows).
COLUMNS = (Chunk, ChunkSlice)


def field(rows, kind: int, j: int, at: np.ndarray) -> list:
    """Field ``j`` of the rows at ``at``, all of ``kind``: from a column chunk's column
    (``at`` must then be every row of that kind), else from the rows."""
    if isinstance(rows, COLUMNS) and rows.has_columns:
        values = rows.column(kind, j)
        assert len(values) == len(at)
        return values
    getter = itemgetter(N_COMMON + j)
    picked = itemgetter(*at.tolist())(rows) if len(at) > 1 else (rows[int(at[0])],)
    return list(map(getter, picked))


def field_counts(rows, kind: int, j: int, at: np.ndarray) -> dict:
    """How many of the rows at ``at`` (every row of ``kind``, as for :func:`field`)
    hold each value of field ``j`` (values equal in Python share a count). A
    dictionary column is counted by its codes, O(n) in C, no value made per row."""
    if isinstance(rows, COLUMNS) and rows.has_columns:
        column = rows.field_column(kind, j)
        if column is not None and column.codes is not None:
            counts: dict = {}
            for value, n in zip(column.values, np.bincount(
                    column.codes, minlength=len(column.values)).tolist()):
                if n:
                    counts[value] = counts.get(value, 0) + n
            return counts
    return Counter(field(rows, kind, j, at))


def int_field(rows, kind: int, j: int, at: np.ndarray) -> np.ndarray:
    """:func:`field` as an int64 array, straight from a column chunk's integers when
    it has them (a pfn column's numpy array is not made into Python ints and back)."""
    if isinstance(rows, COLUMNS) and rows.has_columns:
        ints = rows.int_column(kind, j)
        if ints is not None:
            assert len(ints) == len(at)
            return ints.astype(np.int64)
    return np.array(field(rows, kind, j, at), np.int64)


def stored_ints(rows, kind: int, j: int, at: np.ndarray) -> np.ndarray | None:
    """Field ``j`` of the rows of ``kind`` (all at ``at``) as the integer array a
    column chunk stores, or None (then :func:`field` reads it)."""
    if isinstance(rows, COLUMNS) and rows.has_columns:
        ints = rows.int_column(kind, j)
        if ints is not None:
            assert len(ints) == len(at)
        return ints
    return None


def pte_set_runs(rows, kinds: np.ndarray,
                  pos: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For the rows at ``pos``: (entries each visit adds, rows it stands for).

    A pte_set whose previous visited row is a pte_set of the same table joins
    that row's run: the run's totals go to its first row, and the joined rows
    get -1 (not visited). Other kinds get (0, 1). None when there is no pte_set.
    ``pos`` holds every pte_set row of ``rows``.
    """
    is_set = kinds == v.PTE_SET
    n_sets = int(np.count_nonzero(is_set))
    if n_sets == 0:
        return None
    # Worked out among the pte_set rows alone (most of a fault-heavy stretch's rows,
    # but the other rows' answer is known): a set joins the set just before it in
    # ``pos`` when both are on one table.
    where = np.flatnonzero(is_set)
    pfns = int_field(rows, v.PTE_SET, _PFN, pos[where])
    added = int_field(rows, v.PTE_SET, _N, pos[where])
    joins = np.zeros(len(where), bool)
    joins[1:] = (where[1:] == where[:-1] + 1) & (pfns[1:] == pfns[:-1])
    heads = np.flatnonzero(~joins)
    out = np.zeros(len(pos), np.int64)
    count = np.ones(len(pos), np.int64)
    out[where[joins]] = count[where[joins]] = -1
    out[where[heads]] = np.add.reduceat(added, heads)
    count[where[heads]] = np.diff(np.append(heads, len(where)))
    return out, count
