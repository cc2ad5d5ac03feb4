"""PTE table pages by class, as columns: what a table view, a panel of counts and the
report's classification all read.

Classes (SPEC §5): *reclaimed* (freed after a PT_RECLAIM detach), *freed_unmap*
(freed after a munmap/exit detach, or freed attached), *freed_collapse*,
*empty_attached* (attached with no present entry: "leaked"), *in_flight*
(detached, and freed later in the trace or detached within one grace period of
its end), *lost* (detached and never freed), *live* (attached, in use). A table
whose page was reused without a free being seen is in none (it counts as an
orphan event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import vocab as v
from .state import (ATTACHED, CLASSES, DETACH_CODES, T_ADDR, T_ALLOC_IDX, T_ALLOC_TS,
                    T_DETACH_CAUSE, T_DETACH_IDX, T_DETACH_TS, T_FREE_IDX, T_FREE_TS,
                    T_LEAK_TS, T_LEVEL, T_MM, T_PFN, T_WIDTH, ReplayState)

if TYPE_CHECKING:  # pragma: no cover
    from .replay import Replay

_RECLAIMED, _UNMAP, _COLLAPSE, _EMPTY, _IN_FLIGHT, _LOST, _LIVE = range(len(CLASSES))
assert CLASSES[_LIVE] == "live" and CLASSES[_EMPTY] == "empty_attached"
_NONE = 255


@dataclass(frozen=True)
class TableArrays:
    """One row per PTE table page (allocation order), as numpy columns.

    ``tid`` (index in the table log), ``pfn``, ``mm``, ``alloc_ts``,
    ``leaked_since`` (when a table munmap/exit took had become empty; -1),
    ``detach_ts``, ``free_ts`` (-1 when not reached at the state asked about),
    ``alloc_idx``, ``detach_idx``, ``free_idx`` (event indexes, -1 likewise) and
    ``cls`` (an index into :data:`replayer.state.CLASSES`), ``addr`` (the span's
    start), ``cause`` (a detach cause code, 0 when not detached).
    """

    tid: np.ndarray
    pfn: np.ndarray
    mm: np.ndarray
    alloc_ts: np.ndarray
    leaked_since: np.ndarray
    detach_ts: np.ndarray
    free_ts: np.ndarray
    alloc_idx: np.ndarray
    detach_idx: np.ndarray
    free_idx: np.ndarray
    cls: np.ndarray
    addr: np.ndarray
    cause: np.ndarray

    def __len__(self) -> int:
        return len(self.tid)

    def counts(self) -> dict[str, int]:
        """Tables per class name, every class present (0 when none)."""
        n = np.bincount(self.cls, minlength=len(CLASSES))
        return {name: int(n[i]) for i, name in enumerate(CLASSES)}

    def counts_by_mm(self) -> dict[int, dict[str, int]]:
        """:meth:`counts` for each mm: one bincount over (mm, class) pairs, so
        O(tables + mms × classes), however many mms."""
        if not len(self.mm):
            return {}
        mms, which = np.unique(self.mm, return_inverse=True)
        n = np.bincount(which * len(CLASSES) + self.cls,
                        minlength=len(mms) * len(CLASSES)).reshape(len(mms), len(CLASSES))
        return {int(mm): {name: int(n[k, i]) for i, name in enumerate(CLASSES)}
                for k, mm in enumerate(mms.tolist())}

    def where(self, mask: np.ndarray) -> "TableArrays":
        return TableArrays(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def table_arrays(replay: "Replay", state: ReplayState, end_ts: int | None) -> TableArrays:
    """Every PTE table allocated by ``state`` and not lost track of, classified as at
    that state. ``end_ts``: the trace's last time (decides in flight vs lost).

    O(tables) in numpy, plus O(live tables) to read the state's dicts.
    """
    log = replay.log
    n = state.next_tid
    # A copy, taken whole under the GIL (a bytearray of the log's view): the load, in
    # another thread, may be writing the log meanwhile.
    whole = np.frombuffer(bytearray(log.data[:n * T_WIDTH]), np.int64).reshape(n, T_WIDTH)
    data = whole.copy()
    applied = state.index
    for ts_slot, idx_slot in ((T_DETACH_TS, T_DETACH_IDX), (T_FREE_TS, T_FREE_IDX)):
        later = data[:, idx_slot] >= applied            # not reached yet at this state
        data[later, ts_slot] = -1
        data[later, idx_slot] = -1
    not_yet_detached = data[:, T_DETACH_IDX] < 0
    data[not_yet_detached, T_LEAK_TS] = -1
    cls = np.full(n, _NONE, np.uint8)
    freed = data[:, T_FREE_IDX] >= 0
    cause = np.where(not_yet_detached, -1, data[:, T_DETACH_CAUSE])
    cls[freed] = np.where(cause[freed] == DETACH_CODES["reclaim"], _RECLAIMED,
                          np.where(cause[freed] == DETACH_CODES["collapse"], _COLLAPSE, _UNMAP))
    if state.tid_of:
        tids = np.fromiter(state.tid_of.values(), np.int64, len(state.tid_of))
        stage = np.fromiter((state.stage[p] for p in state.tid_of), np.int64, len(tids))
        empty = np.fromiter((p in state.empty_since for p in state.tid_of), bool, len(tids))
        live_cls = np.where(stage == ATTACHED, np.where(empty, _EMPTY, _LIVE), _LOST)
        detached = stage != ATTACHED
        if detached.any():
            tail = replay.gp_tail_ns
            end = end_ts if end_ts is not None else state.ts
            freed_later = whole[tids, T_FREE_IDX] >= 0       # freed after this state
            recent = end - whole[tids, T_DETACH_TS] <= tail
            live_cls = np.where(detached & (freed_later | recent), _IN_FLIGHT, live_cls)
        cls[tids] = live_cls
    keep = (data[:, T_LEVEL] == v.LEVEL_PTE) & (cls != _NONE)
    rows = data[keep]
    mms = np.array(log.mms, dtype=np.uint64) if log.mms else np.zeros(0, np.uint64)
    return TableArrays(
        tid=np.flatnonzero(keep), pfn=rows[:, T_PFN], mm=mms[rows[:, T_MM]],
        alloc_ts=rows[:, T_ALLOC_TS], leaked_since=rows[:, T_LEAK_TS],
        detach_ts=rows[:, T_DETACH_TS], free_ts=rows[:, T_FREE_TS],
        alloc_idx=rows[:, T_ALLOC_IDX], detach_idx=rows[:, T_DETACH_IDX],
        free_idx=rows[:, T_FREE_IDX], cls=cls[keep], addr=rows[:, T_ADDR],
        cause=np.where(rows[:, T_DETACH_IDX] >= 0, rows[:, T_DETACH_CAUSE], 0))
