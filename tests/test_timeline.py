"""The timeline's per-CPU columns hold each CPU's events in order, whatever the CPU
numbers (few and small, split by comparisons; many or large, split by a sort) and
however the events arrive in chunks."""

from array import array

import numpy as np
from hypothesis import given, settings, strategies as st

from replayer.timeline import Timeline
from replayer.vocab import FIRST_FOREIGN_ID, TIMELINE_CLASS_OF_KIND, TIMELINE_CLASSES
from tests.conftest import LONG

_OTHER = TIMELINE_CLASSES.index("other")


@settings(max_examples=300 if LONG else 40)
@given(events=st.lists(st.tuples(st.integers(0, 200), st.sampled_from((0, 1, 3, 7, 8, 70, 65535)),
                                 st.integers(0, FIRST_FOREIGN_ID + 5)), max_size=80),
       cuts=st.lists(st.integers(0, 80), max_size=4), expected=st.booleans())
def test_each_cpu_column_holds_its_events_in_order(events, cuts, expected):
    events = sorted(events)                  # (time, cpu, kind)
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    per_cpu: dict = {}
    for i, (t, c, k) in enumerate(events):
        per_cpu.setdefault(c, []).append((t, k, TIMELINE_CLASS_OF_KIND.get(k, _OTHER), i))
    timeline = Timeline({c: len(e) for c, e in per_cpu.items()} if expected else None)
    for a, b in zip(bounds, bounds[1:]):
        part = events[a:b]
        timeline.add(array("q", [t for t, _, _ in part]),
                     np.array([k for _, _, k in part], np.uint16),
                     np.array([c for _, c, _ in part], np.uint16), a)
    timeline.finish()
    assert sorted(timeline.cpus) == sorted(per_cpu)
    for c, want in per_cpu.items():
        col = timeline.column(c)
        got = list(zip(col.ts.tolist(), col.kind.tolist(), col.cls.tolist(), col.idx.tolist()))
        assert got == want, c
