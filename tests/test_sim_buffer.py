"""The simulator's event buffer: runs kept as one entry become the events they stand for."""

import numpy as np
from hypothesis import given, settings, strategies as st

from ptviz.sim import buffer
from tests.conftest import LONG

ROW = st.tuples(st.integers(0, 10**12), st.integers(0, 7), st.integers(0, 40), st.integers(0, 9),
                st.tuples(st.integers(0, 3)))
RUN = st.tuples(st.integers(0, 10**12), st.integers(0, 10**6), st.integers(1, 9),
                st.integers(0, 7), st.integers(0, 40), st.integers(0, 9),
                st.tuples(st.integers(0, 3)))


@settings(max_examples=300 if LONG else 80)
@given(steps=st.lists(st.one_of(st.tuples(st.just("row"), ROW), st.tuples(st.just("run"), RUN)),
                      max_size=30))
def test_a_part_holds_the_rows_and_runs_in_emission_order(steps):
    rows, runs, expanded = [], [], []
    for what, item in steps:
        if what == "row":
            rows.append(item)
            expanded.append(item)
        else:
            t0, step, count, cpu, kind, task, fields = item
            runs.append((len(rows), *item))
            expanded += [(t0 + step * j, cpu, kind, task, fields) for j in range(1, count + 1)]
    ts, cpus, kinds, tasks, fields = buffer.close(rows, runs)
    assert all(c.dtype == np.int64 for c in (ts, cpus, kinds, tasks))
    got = list(zip(ts.tolist(), cpus.tolist(), kinds.tolist(), tasks.tolist(), fields))
    assert got == expanded
    assert all(a is b for a, b in zip(fields, (e[4] for e in expanded)))
    both = buffer.concat([buffer.close(rows, runs), buffer.close(rows[:1], [])])
    assert list(zip(both[0].tolist(), both[4])) == [(e[0], e[4]) for e in expanded + rows[:1]]
