"""The walks the fast fold skips (:func:`replayer.fold_skip.idle_walks`) are exactly
those its rule names, found here by walking each CPU's rows one by one: walks on one
CPU or several, walks open when the stretch starts, table frees amid walks, and
walker rows with no begin or end among them."""

import numpy as np
from hypothesis import given, settings, strategies as st

from replayer import vocab as v
from replayer.fold_skip import idle_walk_tables, idle_walks
from tests.conftest import LONG

_KINDS = (v.WALK_BEGIN, v.WALK_TABLE, v.WALK_END, v.TABLE_FREE, v.PTE_SET)


def _by_hand(kinds, cpus, open_cpus):
    """(begin and end positions, walk_table positions) of the idle walks: on its CPU a
    begin whose next begin-or-end is an end, after an end (or first, its CPU not
    open), with no table_free anywhere between the two."""
    walks, tables = [], []
    marks_of: dict = {}
    for p, (k, c) in enumerate(zip(kinds, cpus)):
        if k in (v.WALK_BEGIN, v.WALK_END):
            marks_of.setdefault(c, []).append(p)
    for c, marks in marks_of.items():
        for j, b in enumerate(marks):
            if kinds[b] != v.WALK_BEGIN or j + 1 == len(marks):
                continue
            e = marks[j + 1]
            if kinds[e] != v.WALK_END:
                continue
            if (kinds[marks[j - 1]] != v.WALK_END) if j else (c in open_cpus):
                continue
            if v.TABLE_FREE in kinds[b + 1:e]:
                continue
            walks += [b, e]
            tables += [p for p in range(b + 1, e)
                       if kinds[p] == v.WALK_TABLE and cpus[p] == c]
    return sorted(walks), sorted(tables)


@settings(max_examples=500 if LONG else 100)
@given(rows=st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(0, 3)), max_size=60),
       one_cpu=st.booleans(), open_cpus=st.sets(st.integers(0, 3)))
def test_idle_walks_are_those_the_rule_names(rows, one_cpu, open_cpus):
    kinds = np.array([k for k, _ in rows], np.uint16)
    cpus = np.array([0 if one_cpu else c for _, c in rows], np.uint16)
    at = np.flatnonzero(np.isin(kinds, (v.WALK_BEGIN, v.WALK_TABLE, v.WALK_END)))
    frees = np.flatnonzero(kinds == v.TABLE_FREE)
    walks, tables = idle_walks(kinds, cpus, open_cpus, frees, at)
    want = _by_hand(kinds.tolist(), cpus.tolist(), open_cpus)
    assert (sorted(walks.tolist()), tables.tolist()) == want


@settings(max_examples=500 if LONG else 100)
@given(rows=st.lists(st.tuples(st.sampled_from(("read", "alloc", "free")),
                               st.sampled_from((1, 2, 3, 1 << 40, (1 << 63) - 1))),
                     max_size=50),
       live=st.sets(st.sampled_from((1, 2, 3, 1 << 40, (1 << 63) - 1))))
def test_walk_reads_skipped_are_those_that_find_their_table_alive(rows, live):
    """A read finds its table alive when the table's last alloc or free before it is an
    alloc, or, with none, when the table was alive as the stretch began."""
    reads = [p for p, (what, _) in enumerate(rows) if what == "read"]
    changes = [p for p, (what, _) in enumerate(rows) if what != "read"]
    got = idle_walk_tables(np.array(reads, np.int64),
                           np.array([rows[p][1] for p in reads], np.int64),
                           dict.fromkeys(live), np.array(changes, np.int64),
                           np.array([rows[p][1] for p in changes], np.int64),
                           np.array([rows[p][0] == "alloc" for p in changes], bool))
    want = []
    for p in reads:
        pfn = rows[p][1]
        last = [what for what, q in rows[:p] if what != "read" and q == pfn]
        if (last[-1] == "alloc") if last else (pfn in live):
            want.append(p)
    assert got.tolist() == want
