"""Rows the fold need not visit, found in numpy before the Python loop runs.

Walkers and IPIs are about half of a walkers trace, and most of them change
nothing the replay keeps: a lockless walk that dereferences no table leaves no
trace in the state once it ends, and an IPI handler entered with nothing
pending on its CPU pops nothing. Both rules are exact for any stretch of rows
(a chunk, or the slice a seek folds), so the state at the end of the stretch
and everything recorded are the same as when every row is visited; tests
compare the two (``Folder(fast=False)`` is the reference).

Cost: a stable sort of the walker and IPI rows by CPU, O(m log m) in C.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from . import vocab as v


def idle_walks(kinds: np.ndarray, cpus: np.ndarray, open_cpus: Iterable[int]) -> np.ndarray:
    """Positions of walk_begin/walk_end pairs that hold no table: on the walk's CPU
    the begin is followed directly by its end, and no walk was open before it
    (the CPU's previous walker row is an end; or, for its first one, ``open_cpus``
    — the CPUs with a walk open when the stretch starts — does not hold it).

    Visiting such a pair adds an entry for the CPU and removes it again, and no
    table free between them can find the walk holding anything.
    """
    at = np.flatnonzero((kinds == v.WALK_BEGIN) | (kinds == v.WALK_TABLE)
                        | (kinds == v.WALK_END))
    if len(at) < 2:
        return at[:0]
    order = np.argsort(cpus[at], kind="stable")
    pos, k, c = at[order], kinds[at][order], cpus[at][order]
    same_as_next = np.zeros(len(pos), bool)
    same_as_next[:-1] = c[1:] == c[:-1]
    next_is_end = np.zeros(len(pos), bool)
    next_is_end[:-1] = k[1:] == v.WALK_END
    closed_before = np.empty(len(pos), bool)
    closed_before[1:] = np.where(same_as_next[:-1], k[:-1] == v.WALK_END,
                                 ~np.isin(c[1:], list(open_cpus)))
    closed_before[0] = c[0] not in set(open_cpus)
    begins = np.flatnonzero((k == v.WALK_BEGIN) & same_as_next & next_is_end & closed_before)
    return np.concatenate([pos[begins], pos[begins + 1]])


def idle_ipi_enters(kinds: np.ndarray, cpus: np.ndarray, send_positions: list[int],
                    send_targets: list[tuple], pending_cpus: Iterable[int]) -> np.ndarray:
    """Positions of ipi_enter rows with nothing to answer: no IPI was sent to their
    CPU since that CPU's previous ipi_enter (for its first one, and none pending
    there when the stretch starts: ``pending_cpus``). ``send_targets[i]`` are the
    targets of the ipi_send at ``send_positions[i]``.

    The received count of every ipi_enter is the caller's to add (in bulk).
    """
    enters = np.flatnonzero(kinds == v.IPI_ENTER)
    if not len(enters):
        return enters
    n = len(kinds) + 1
    ec = cpus[enters].astype(np.int64)
    order = np.lexsort((enters, ec))
    enters, ec = enters[order], ec[order]
    first = np.ones(len(enters), bool)
    first[1:] = ec[1:] != ec[:-1]
    previous = np.where(first, -1, np.concatenate([[-1], enters[:-1]]))
    sends = [(int(t), p) for p, targets in zip(send_positions, send_targets)
             for t in targets or ()]
    keys = np.sort(np.fromiter((t * n + p for t, p in sends), np.int64, len(sends)))
    answered = (np.searchsorted(keys, ec * n + enters)
                - np.searchsorted(keys, ec * n + previous)) > 0
    if first.any():
        pending = np.isin(ec, list(pending_cpus))
        answered |= first & pending
    return enters[~answered]
