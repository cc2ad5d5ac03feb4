"""Walker rows the fold need not visit, found in numpy before the Python loop runs.

Walkers are about half of a walkers trace, and most of their rows change nothing
the replay keeps: a lockless walk no table free can see leaves no trace once it
ends, and its reads of tables that are alive report nothing. The rules are exact
for any stretch of rows (a chunk, or the slice a seek folds), so the state at the
end of the stretch and everything recorded are the same as when every row is
visited; tests compare the two (``Folder(fast=False)`` is the reference). (IPIs
are applied in bulk instead: ``ContextHandlers._ipis_in_bulk``.)

Cost: a stable sort of the walker rows by CPU, O(m log m) in C.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from . import vocab as v


def idle_walks(kinds: np.ndarray, cpus: np.ndarray, open_cpus: Iterable[int],
               frees: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(begins and ends, walk_tables)``: the walk_begin/walk_end rows of the walks
    no table free can see, and the walk_table rows inside those walks.

    Such a walk is, on its CPU, a begin, then only walk_table rows, then its end;
    no walk was open before it (the CPU's previous begin or end is an end; for its
    first one, ``open_cpus`` — the CPUs with a walk open when the stretch starts —
    does not hold it); and no table_free row (``frees``: positions) lies between
    its begin and its end (``at``: the walk rows' positions, ascending). Visiting the
    begin and end adds the walk and removes it,
    and only a table free looks at what a walk holds: skipping them changes nothing.
    Its walk_table rows still check for a freed table (:func:`idle_walk_tables`).
    """
    none = at[:0]
    if len(at) < 2:
        return none, none
    k, c = kinds[at], cpus[at]
    if c[0] != c.min() or c[0] != c.max():      # else on one CPU: in order already
        order = np.argsort(c, kind="stable")
        at, k, c = at[order], k[order], c[order]
    # The begins and ends in that order (marks), their kinds and CPUs.
    marks = np.flatnonzero(k != v.WALK_TABLE)
    if not len(marks):
        return none, none
    km, cm = k[marks], c[marks]
    same_cpu = cm[1:] == cm[:-1]              # a mark and the next are on one CPU
    is_end = km == v.WALK_END
    # A begin whose next mark is its end on its CPU, after an end on its CPU.
    ok = km == v.WALK_BEGIN
    ok[-1] = False
    ok[:-1] &= is_end[1:] & same_cpu
    ok[1:] &= is_end[:-1] | ~same_cpu
    # A CPU's first mark: a begin there is idle only if no walk was open before it.
    open_cpus = set(open_cpus)
    if open_cpus:
        for j in np.flatnonzero(np.r_[True, ~same_cpu]).tolist():
            if int(cm[j]) in open_cpus:
                ok[j] = False
    begins = np.flatnonzero(ok)
    pos_b, pos_e = at[marks[begins]], at[marks[begins + 1]]
    if len(frees):
        # No table free between the begin and the end (on any CPU): the first free
        # after the begin comes after the end.
        after = np.searchsorted(frees, pos_b, side="right")
        clear = after == len(frees)
        clear[~clear] = frees[after[~clear]] > pos_e[~clear]
        begins, pos_b, pos_e = begins[clear], pos_b[clear], pos_e[clear]
        ok[:] = False
        ok[begins] = True
    tables = none
    reads = np.flatnonzero(k == v.WALK_TABLE) if len(marks) < len(k) else none
    if len(reads) and len(begins):
        # A read lies in the walk of the mark before it (on its CPU: a walk's marks
        # are on one CPU, so all between them in this order is too).
        before = np.searchsorted(marks, reads) - 1
        inside = before >= 0
        inside[inside] = ok[before[inside]]
        tables = np.sort(at[reads[inside]])
    return np.concatenate([pos_b, pos_e]), tables


def idle_walk_tables(tables: np.ndarray, pfns: np.ndarray, live: dict,
                     changes: np.ndarray, change_pfns: np.ndarray,
                     change_alive: np.ndarray) -> np.ndarray:
    """The walk_table rows among ``tables`` (rows inside skipped walks) that find
    their table alive: such a read adds nothing to a walk nobody looks at, and has
    no freed table to report.

    ``pfns`` (int64) are the pfns those rows read. Whether a table is alive (a key of
    ``live`` — tables allocated and not yet freed — when the stretch starts) changes
    only at its table_alloc (alive) and table_free (not) rows: ``changes``
    (positions, ascending), ``change_pfns`` (int64), ``change_alive``. The last
    change of the table before the read decides; with none, ``live`` does.
    O((m + c) log c) in C, plus a set lookup per read whose table did not change.
    """
    if not len(tables):
        return tables
    alive = np.zeros(len(tables), bool)
    found = np.zeros(len(tables), bool)
    if len(changes):
        # Changes and reads keyed by (the pfn's rank among the changed ones, position).
        changed, c_rank = np.unique(change_pfns, return_inverse=True)
        r_rank = np.minimum(np.searchsorted(changed, pfns), len(changed) - 1)
        known = changed[r_rank] == pfns
        n = int(max(tables.max(), changes.max())) + 1
        c_key = c_rank.reshape(-1).astype(np.int64) * n + changes
        order = np.argsort(c_key, kind="stable")
        c_key, c_alive = c_key[order], change_alive[order]
        last = np.searchsorted(c_key, r_rank * n + tables) - 1
        found = known & (last >= 0)
        found[found] = c_key[last[found]] // n == r_rank[found]
        alive[found] = c_alive[last[found]]
    unknown = np.flatnonzero(~found)
    if len(unknown):
        alive[unknown] = np.fromiter((p in live for p in pfns[unknown].tolist()), bool,
                                     len(unknown))
    return tables[alive]
