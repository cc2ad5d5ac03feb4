"""The table steps of a stretch of rows, read as columns for :mod:`.fold_lives`.

A fork storm or an allocator trace allocates, fills, empties, detaches, queues and
frees a table page every few hundred events; visited one row at a time, those six
steps cost more than everything else the replay does. The fast fold reads them
here as numpy columns (one row per step, in trace order) and applies a whole
stretch of them at once (:func:`.fold_lives.apply_lives`), keeping the per-row
handlers for stretches that hold anything unusual.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from . import vocab as v
from .state import DETACH_CODES, FREE_CODES, VIA_CODES

# The steps, as the bulk path codes them.
E_ALLOC, E_SET, E_CLEAR, E_DETACH, E_QUEUE, E_RCU, E_FREE = range(7)
#: A row with no pid (nil), in the pid column.
NO_PID = -1
#: Below this many table rows (pte_set runs aside) a stretch is cheaper row by row:
#: the bulk path costs ~0.5 ms whatever the stretch, a table's life row by row ~10 µs.
MIN_STEPS = 384

IS_TABLE = np.zeros(1 << 16, dtype=bool)
IS_TABLE[[v.TABLE_ALLOC, v.PTE_SET, v.PTE_CLEAR, v.TABLE_DETACH, v.TABLE_QUEUE,
           v.TABLE_FREE]] = True


class KindRows:
    """Where each kind's rows are in a stretch: one stable argsort of the kind column
    (a radix sort, in C), instead of a pass over every row for each kind asked about
    (a fold asks for some twenty). ``k`` is the column itself."""

    __slots__ = ("k", "_order", "_bounds")

    def __init__(self, k: np.ndarray) -> None:
        self.k = k
        # A radix sort makes a pass per byte: kinds below 256 (all of today's) take one.
        small = len(k) and int(k.max()) < 256
        self._order = np.argsort(k.astype(np.uint8) if small else k, kind="stable")
        self._bounds = np.r_[0, np.cumsum(np.bincount(k))] if len(k) else np.zeros(1, np.int64)

    def at(self, kind: int) -> np.ndarray:
        """The positions of the rows of ``kind``, ascending."""
        if kind + 1 >= len(self._bounds):
            return self._order[:0]
        return self._order[self._bounds[kind]:self._bounds[kind + 1]]

    def any_of(self, *kinds: int) -> np.ndarray:
        """The positions of the rows of any of ``kinds``, ascending."""
        return np.sort(np.concatenate([self.at(kind) for kind in kinds]))


def _field_index(kind: int, name: str) -> int:
    return v.KIND_BY_ID[kind].fields.index(name)


_ALLOC = tuple(_field_index(v.TABLE_ALLOC, f) for f in ("mm", "level", "pfn", "addr"))
_SET_PFN = _field_index(v.PTE_SET, "pfn")
_CLEAR = (_field_index(v.PTE_CLEAR, "pfn"), _field_index(v.PTE_CLEAR, "n"))
_DETACH = (_field_index(v.TABLE_DETACH, "pfn"), _field_index(v.TABLE_DETACH, "cause"))
_QUEUE = (_field_index(v.TABLE_QUEUE, "pfn"), _field_index(v.TABLE_QUEUE, "via"))
_FREE = (_field_index(v.TABLE_FREE, "pfn"), _field_index(v.TABLE_FREE, "path"))
_RCU_PFNS = _field_index(v.RCU_QUEUE, "pfns")
_ZAP_MM = _field_index(v.ZAP_BEGIN, "mm")
_ZAP_CAUSE = _field_index(v.ZAP_BEGIN, "cause")
_OTHER_CAUSE = DETACH_CODES["other"]


class Steps:
    """Table steps of a stretch, one per element, in row order: ``pos`` (row in the
    stretch), ``ek`` (``E_*``), ``pfn``, ``n`` (entries a set run adds or a clear
    removes), ``pid`` (``NO_PID`` for nil), ``code`` (detach cause, queue via or
    free path, as :mod:`.state` codes them), and for allocations ``mm`` (Python
    ints; ``mm_column`` the same as an array), ``level`` and ``addr`` (int64, two's
    complement as the log keeps it).
    ``alloc_at``: where each allocation's step is. ``zaps``: (positions, pids,
    begin?, mms, causes) of the stretch's zap_begin/zap_end rows. ``kinds`` and
    ``cpus``: every row's; ``walk_rows``: the walk_begin and walk_end rows (the fold
    sets these three)."""

    __slots__ = ("pos", "ek", "pfn", "n", "pid", "code", "mm", "mm_column", "level", "addr",
                 "zaps",
                 "kinds", "cpus", "walk_rows")

    def __len__(self) -> int:
        return len(self.pos)


def _ints(rows, kind: int, j: int) -> np.ndarray | None:
    """Field ``j`` of every row of ``kind`` as int64, or None when the column is not
    stored as integers or holds a value int64 cannot (the per-row path copes)."""
    col = rows.int_column(kind, j)
    if col is None:
        return None
    if col.dtype == np.uint64 and len(col) and int(col.max()) >= 1 << 63:
        return None
    return col.astype(np.int64)


def _codes(rows, kind: int, j: int, table: dict, default: int) -> np.ndarray:
    """A text field as ``table`` codes it (``default`` for others): once per distinct
    text when the column is a dictionary."""
    col = rows.field_column(kind, j)
    get = table.get
    if col is not None and col.codes is not None:
        return np.array([get(x, default) for x in col.values], np.int64)[col.codes]
    return np.array([get(x, default) for x in rows.column(kind, j)], np.int64)


def _pids(rows, at: np.ndarray) -> np.ndarray | None:
    pids = rows.pids_at(at)
    if pids.ints is not None:
        return pids.ints.astype(np.int64)
    if pids.codes is None:
        return _pid_array(pids.tolist())
    table = _pid_array(pids.values)          # a dictionary: its values once each
    return None if table is None else table[pids.codes]


def _pid_array(values) -> np.ndarray | None:
    """Pids (nil as ``NO_PID``) as int64; None when one is not an int that fits."""
    if not all(p is None or type(p) is int for p in values):
        return None
    try:
        out = np.array([NO_PID if p is None else p for p in values], np.int64)
    except OverflowError:
        return None
    if (out[np.array([p is not None for p in values], bool)] == NO_PID).any():
        return None
    return out


def read_steps(rows, kr: KindRows, heads: np.ndarray, head_n: np.ndarray) -> Steps | None:
    """The table steps of ``rows`` (a column chunk or slice of one; ``kr`` its kinds),
    where ``heads`` are the positions of the pte_set rows the fold visits (each the
    first of a run) and ``head_n`` the entries each run adds. None when a column is
    not what the bulk path reads (then every row is visited)."""
    parts = []       # (positions, ek, pfn, n, code)
    k = kr.k
    at = {kind: kr.at(kind) for kind in
          (v.TABLE_ALLOC, v.PTE_CLEAR, v.TABLE_DETACH, v.TABLE_QUEUE, v.TABLE_FREE)}
    zero = np.zeros(0, np.int64)
    alloc = at[v.TABLE_ALLOC]
    steps = Steps()
    steps.mm, steps.mm_column, steps.level, steps.addr = [], zero, zero, zero
    if len(alloc):
        pfn, level, addr = (_ints(rows, v.TABLE_ALLOC, _ALLOC[j]) for j in (2, 1, 3))
        if pfn is None or level is None:
            return None
        if addr is None:
            col = rows.int_column(v.TABLE_ALLOC, _ALLOC[3])
            if col is None:
                return None
            addr = col.view(np.int64)       # uint64 ≥ 2**63: two's complement, as the log
        mm = rows.int_column(v.TABLE_ALLOC, _ALLOC[0])
        if mm is None:
            return None
        steps.mm, steps.mm_column = mm.tolist(), mm
        steps.level, steps.addr = level, addr
        parts.append((alloc, E_ALLOC, pfn, None, None))
    if len(heads):
        pfn = _ints(rows, v.PTE_SET, _SET_PFN)
        if pfn is None:
            return None
        parts.append((heads, E_SET, pfn[np.searchsorted(kr.at(v.PTE_SET), heads)],
                      head_n, None))
    for kind, ek, (j_pfn, j_other) in ((v.PTE_CLEAR, E_CLEAR, _CLEAR),
                                       (v.TABLE_DETACH, E_DETACH, _DETACH),
                                       (v.TABLE_QUEUE, E_QUEUE, _QUEUE),
                                       (v.TABLE_FREE, E_FREE, _FREE)):
        where = at[kind]
        if not len(where):
            continue
        pfn = _ints(rows, kind, j_pfn)
        if pfn is None:
            return None
        if ek == E_CLEAR:
            n = _ints(rows, kind, j_other)
            if n is None:
                return None
            parts.append((where, ek, pfn, n, None))
        else:
            table, default = {E_DETACH: (DETACH_CODES, _OTHER_CAUSE), E_QUEUE: (VIA_CODES, 0),
                              E_FREE: (FREE_CODES, 0)}[ek]
            parts.append((where, ek, pfn, None, _codes(rows, kind, j_other, table, default)))
    queued = kr.at(v.RCU_QUEUE)
    if len(queued):
        lists = [p or () for p in rows.column(v.RCU_QUEUE, _RCU_PFNS)]
        lens = np.fromiter(map(len, lists), np.int64, len(lists))
        if lens.sum():
            try:
                pfn = np.array(list(chain.from_iterable(lists)), np.int64)
            except (OverflowError, TypeError, ValueError):
                return None
            parts.append((np.repeat(queued, lens), E_RCU, pfn, None, None))
    if not parts:
        steps.pos = zero
        return steps
    pos = np.concatenate([p[0] for p in parts])
    order = np.argsort(pos, kind="stable")       # an rcu_queue's pfns keep their order
    steps.pos = pos[order]
    steps.ek = np.concatenate([np.full(len(p[0]), p[1], np.int64) for p in parts])[order]
    steps.pfn = np.concatenate([p[2] for p in parts])[order]
    steps.n = np.concatenate([p[3] if p[3] is not None else np.zeros(len(p[0]), np.int64)
                              for p in parts])[order]
    steps.code = np.concatenate([p[4] if p[4] is not None else np.zeros(len(p[0]), np.int64)
                                 for p in parts])[order]
    pid_rows = kr.any_of(v.TABLE_ALLOC, v.PTE_CLEAR, v.TABLE_DETACH, v.ZAP_BEGIN, v.ZAP_END)
    pids = _pids(rows, pid_rows)
    if pids is None:
        return None
    pid_of_row = np.full(len(k), NO_PID, np.int64)   # a scatter and a gather: O(rows)
    pid_of_row[pid_rows] = pids
    steps.pid = pid_of_row[steps.pos]
    pid_kinds = k[pid_rows]
    zap_at = np.flatnonzero((pid_kinds == v.ZAP_BEGIN) | (pid_kinds == v.ZAP_END))
    zpos = pid_rows[zap_at]
    begins = k[zpos] == v.ZAP_BEGIN
    zap_mms = np.zeros(len(zpos), object)
    causes = np.full(len(zpos), None, object)
    if begins.any():
        zap_mms[begins] = rows.column(v.ZAP_BEGIN, _ZAP_MM)
        causes[begins] = rows.column(v.ZAP_BEGIN, _ZAP_CAUSE)
    steps.zaps = (zpos, pids[zap_at], begins, zap_mms, causes)
    return steps
