"""The simulator's event buffer: pte_set runs kept as nine ints become the events they
stand for, their fields coded (fieldcodes.Coded) as the tuples they stand for."""

import numpy as np
from hypothesis import given, settings, strategies as st

from ptviz.sim import buffer
from replayer import vocab as v
from replayer.traceio.fieldcodes import Coded
from tests.conftest import LONG

ROW = st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 40), st.integers(0, 9),
                st.tuples(st.integers(0, 3)))
# t0, step, count, cpu, task, mm (above 2**63 as the simulator's), pfn, entries
RUN = st.tuples(st.integers(0, 10**12), st.integers(0, 10**6), st.integers(1, 9),
                st.integers(0, 7), st.integers(0, 9),
                st.sampled_from([0xFFFF888004000000, 0xFFFF888004002000, 5]),
                st.integers(0, 1 << 40), st.integers(0, 512))


def _expanded(steps):
    rows, sets, expanded = [], [], []
    for what, item in steps:
        if what == "row":
            rows.append(item)
            expanded.append(item)
        else:
            t0, step, count, cpu, task, mm, pfn, n = item
            sets += (len(rows), *item)
            expanded += [(t0 + step * j, cpu, v.PTE_SET, task, (mm, pfn, n, None))
                         for j in range(1, count + 1)]
    return rows, sets, expanded


STEPS = st.lists(st.one_of(st.tuples(st.just("row"), ROW), st.tuples(st.just("run"), RUN)),
                 max_size=30)


@settings(max_examples=300 if LONG else 25)
@given(steps=STEPS)
def test_a_part_holds_the_rows_and_runs_in_emission_order(steps):
    rows, sets, expanded = _expanded(steps)
    ts, cpus, kinds, tasks, fields = buffer.close(rows, sets)
    assert all(c.dtype == np.int64 for c in (ts, cpus, kinds, tasks))
    assert type(fields) is Coded
    got = list(zip(ts.tolist(), cpus.tolist(), kinds.tolist(), tasks.tolist(), fields))
    assert got == expanded
    assert fields.lengths().tolist() == [len(e[4]) for e in expanded]
    rows2, sets2, expanded2 = _expanded(steps[:2])
    both = buffer.concat([buffer.close(rows, sets), buffer.close(rows2, sets2)])
    assert list(zip(both[0].tolist(), both[4])) == [(e[0], e[4]) for e in expanded + expanded2]


@settings(max_examples=300 if LONG else 25)
@given(a=STEPS, b=STEPS, data=st.data())
def test_coded_fields_slice_take_compact_and_concat_as_lists_do(a, b, data):
    """What the machine does to a part's fields (a time sort, a cut, the rest kept in a
    table of its own, joined to the next part) gives the tuples a list would."""
    parts = [buffer.close(*_expanded(s)[:2]) for s in (a, b)]
    lists = [p[4].tolist() for p in parts]
    n = len(lists[0])
    order = data.draw(st.permutations(range(n)))
    cut = data.draw(st.integers(0, n))
    taken = parts[0][4].take(np.array(order, np.int64))
    kept = taken[cut:].compact()
    assert taken[:cut].tolist() == [lists[0][i] for i in order[:cut]]
    assert kept.tolist() == [lists[0][i] for i in order[cut:]]
    joined = Coded.concat([kept, parts[1][4]])
    assert joined.tolist() == [lists[0][i] for i in order[cut:]] + lists[1]
    assert joined.lengths().tolist() == [len(f) for f in joined.tolist()]
