"""The fast fold (rows that change nothing skipped, IPI entries counted in bulk)
gives exactly what the reference fold gives, visiting every row: the state at the
end and at any time, the report, the findings, the counters and the timeline."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from ptviz.sim.run import simulate
from replayer.replay import Replay
from replayer.report import build_report
from tests.conftest import LONG
from tests.test_replay_seek import write
from tests.tracegen import WALKER_OPS, traces


def assert_same(fast: Replay, ref: Replay, times) -> None:
    assert fast.final == ref.final, fast.final.differences(ref.final)
    assert json.dumps(build_report(fast), sort_keys=True) == \
        json.dumps(build_report(ref), sort_keys=True)
    assert fast.findings == ref.findings
    t0, t1 = fast.first_ts or 0, (fast.last_ts or 0) + 1
    for name in ref.series.names():
        assert fast.counter(name, t0, t1, 37) == ref.counter(name, t0, t1, 37), name
    for cpu, counts in ref.buckets(ref.cpus, t0, t1, 23).items():
        assert (fast.buckets([cpu], t0, t1, 23)[cpu] == counts).all(), cpu
    for t in times:
        got, want = fast.state_at(t), ref.state_at(t)
        assert got == want, (t, got.differences(want))


@settings(max_examples=300 if LONG else 25)
@given(events=st.one_of(traces(max_events=150), traces(max_events=150, ops=WALKER_OPS)),
       chunk_events=st.integers(1, 40), every=st.integers(1, 30),
       picks=st.lists(st.integers(0, 10**12), max_size=5))
def test_fast_fold_equals_reference(tmp_path_factory, events, chunk_events, every, picks):
    path = tmp_path_factory.mktemp("fast") / "t.msgpack"
    write(path, events, chunk_events)
    stamps = sorted({e[0] for e in events} | {0})
    times = [stamps[p % len(stamps)] for p in picks]
    with Replay.load(path, checkpoint_events=every) as fast, \
            Replay.load(path, checkpoint_events=every, reference=True) as ref:
        assert_same(fast, ref, times)


SMALL = {"coverletter": {"size": "64M"}, "walkers": {"size": "16M"},
         "munmap": {"size": "32M", "chunk": "4M"}, "fork-exit": {"children": "4"},
         "allocator": {"ops": "300"}, "collapse": {"regions": "16"}}


@pytest.mark.parametrize("workload", sorted(SMALL))
def test_fast_fold_equals_reference_on_every_workload(tmp_path, workload):
    path = str(tmp_path / "sim.msgpack")
    simulate(path, "x86_64", "6.14", workload, SMALL[workload], {}, cpus=4, seed=3)
    with Replay.load(path) as fast, Replay.load(path, reference=True) as ref:
        span = (ref.last_ts or 0) - (ref.first_ts or 0)
        times = [(ref.first_ts or 0) + span * k // 7 for k in range(8)]
        assert_same(fast, ref, times)
