"""Each event's task (pid and comm) as the writer's bulk path takes it (bulk.py).

Either one pid and one comm an event (:class:`Lists`), or, from a simulator, a code an
event into a table of (pid, comm) pairs (:class:`Coded`): a simulator has a few tasks
and millions of events, so checking comms and encoding the pid column once per task
instead of once per event saves a tenth of its writing time. Both answer the same
questions with the same answers (tests hold them equal), so the bytes written do not
depend on the form.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter, ne
from typing import Any, Callable, Sequence

import numpy as np

from .columns import _DICT_MIN_ROWS, int_array_column

_MISSING = object()
_INT64 = (-(1 << 63), 1 << 63)


class Lists:
    """A pid and a comm for each event."""

    __slots__ = ("pids", "comms")

    def __init__(self, pids: Sequence, comms: Sequence) -> None:
        self.pids, self.comms = pids, comms

    def __len__(self) -> int:
        return len(self.pids)

    def __getitem__(self, part: slice) -> "Lists":
        return Lists(self.pids[part], self.comms[part])

    def lists(self) -> tuple[Sequence, Sequence]:
        return self.pids, self.comms

    def pairs(self) -> dict | None:
        """pid → comm, pids in first-seen order; None when a pid's comm changes."""
        pairs = dict(zip(self.pids, self.comms))
        if list(map(pairs.__getitem__, self.pids)) != list(self.comms):
            return None
        return pairs

    def first_change(self, had: dict) -> int:
        """The first event whose comm is not its pid's in ``had`` (a chunk's comms) or,
        for a pid not there, at the pid's first event here; where :meth:`add` cuts a
        chunk. Call it only when there is one (:meth:`pairs` is None or conflicts with
        ``had``). O(n) in C."""
        expect = dict(zip(reversed(self.pids), reversed(self.comms)))   # first seen
        expect.update(had)
        return list(map(ne, map(expect.__getitem__, self.pids), self.comms)).index(True)


class Coded:
    """``table[codes[i]]`` is event i's (pid, comm)."""

    __slots__ = ("codes", "table")

    def __init__(self, codes: np.ndarray, table: Sequence[tuple]) -> None:
        self.codes, self.table = codes, table

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, part: slice) -> "Coded":
        return Coded(self.codes[part], self.table)

    def lists(self) -> tuple[list, list]:
        tasks = list(map(self.table.__getitem__, self.codes.tolist()))
        return list(map(itemgetter(0), tasks)), list(map(itemgetter(1), tasks))

    def seen(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct codes in first-seen order, and each event's index into them.
        O(n + table) without a sort of the events (np.unique's costs 30 ns an event):
        codes index the table, so each one's first event is a minimum.at."""
        codes, n = self.codes, len(self.codes)
        first = np.full(len(self.table), n, np.int64)
        np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
        present = np.flatnonzero(first < n)
        distinct = present[np.argsort(first[present])]
        rank = np.zeros(len(first), np.int64)
        rank[distinct] = np.arange(len(distinct))
        return distinct, rank[codes]

    def first_change(self, had: dict) -> int:
        """What :meth:`Lists.first_change` answers for the same events."""
        return Lists(*self.lists()).first_change(had)

    def pairs(self) -> dict | None:
        """What :meth:`Lists.pairs` answers for the same events, from the distinct codes
        (a pid's comm changes iff two of its codes' comms differ)."""
        pairs: dict = {}
        for code in self.seen()[0].tolist():
            pid, comm = self.table[code]
            had = pairs.get(pid, _MISSING)
            if had is not _MISSING and had is not comm and had != comm:
                return None
            pairs[pid] = comm
        return pairs


def pid_column(parts: Sequence[Lists | Coded], encode: Callable[[Sequence], Any]) -> Any:
    """The pid column of a chunk made of ``parts``: ``encode`` (encode_column) of its
    pids, computed from the distinct pids when every part is coded in one table and
    the pids are ints of int64 with or without nil (a simulator's), else by ``encode``
    itself."""
    if not all(type(p) is Coded and p.table is parts[0].table for p in parts):
        return encode(list(chain.from_iterable(p.lists()[0] for p in parts)))
    coded = Coded(np.concatenate([p.codes for p in parts]), parts[0].table)
    codes, index = coded.seen()
    pids = [coded.table[c][0] for c in codes.tolist()]
    n = len(index)
    if not all(p is None or type(p) is int and _INT64[0] <= p < _INT64[1] for p in pids):
        return encode(coded.lists()[0])
    if None not in pids:
        # encode_column: all ints of int64 are an integer column.
        return int_array_column(np.array(pids, np.int64)[index])
    # encode_column: ints with nil (or nil alone) are a dictionary of the distinct values
    # in first-seen order when it halves them, from 8 rows; else an array.
    distinct = dict.fromkeys(pids)
    if n < _DICT_MIN_ROWS or 2 * len(distinct) > n:
        return encode(coded.lists()[0])
    at = {pid: i for i, pid in enumerate(distinct)}
    return {"d": list(distinct),
            "c": int_array_column(np.array([at[p] for p in pids], np.int64)[index])}
