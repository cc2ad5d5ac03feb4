"""state_at(t) equals a straight replay of the events up to t, for any trace and t."""

from hypothesis import given, settings, strategies as st

from replayer.replay import Replay
from replayer.report import build_report
from replayer.traceio import TraceWriter
from tests.conftest import LONG
from tests.story import X86_64
from tests.tracegen import traces


def write(path, events, chunk_events, version=2):
    with TraceWriter(path, {"source": "test", "cpus": 4, "arch": X86_64},
                     chunk_events=chunk_events, force=True, version=version) as w:
        for ts, kind, cpu, pid, fields in events:
            w.add(ts, kind, cpu, pid, fields)


@given(events=traces(), chunk_events=st.integers(1, 9), every=st.integers(1, 30),
       picks=st.lists(st.integers(0, 10**12), min_size=1, max_size=6))
def test_state_at_equals_straight_replay(tmp_path_factory, events, chunk_events, every, picks):
    d = tmp_path_factory.mktemp("seek")
    write(d / "full.msgpack", events, chunk_events)
    full = Replay.load(d / "full.msgpack", checkpoint_events=every)
    stamps = [e[0] for e in events]
    # Times on, between and around events, in a shuffled order (exercises the cache).
    candidates = sorted(set(stamps) | {s - 1 for s in stamps} | {0, 10**13})
    times = [candidates[p % len(candidates)] for p in picks]
    for t in times:
        prefix = [e for e in events if e[0] <= t]
        write(d / "prefix.msgpack", prefix, 4096)
        straight = Replay.load(d / "prefix.msgpack")
        got = full.state_at(t)
        assert got == straight.final, got.differences(straight.final)
        # And so the report at t. Whether a detached table is lost or in flight
        # depends on the rest of the trace, so only their sum must agree.
        at, ref = build_report(full, t), build_report(straight, t)
        for key in ("cpus", "page_tables", "markers"):
            assert at[key] == ref[key], key
        assert comparable(at["tables"]) == comparable(ref["tables"])
        assert [comparable(m["pte_tables"]) for m in at["mms"]] == \
            [comparable(m["pte_tables"]) for m in ref["mms"]]
        for m in at["mms"] + ref["mms"]:
            del m["pte_tables"]
        assert at["mms"] == ref["mms"]


def comparable(classes):
    out = {k: v["count"] for k, v in classes.items() if k not in ("lost", "in_flight")}
    out["detached"] = classes["lost"]["count"] + classes["in_flight"]["count"]
    return out


@given(events=traces(max_events=60))
def test_full_replay_never_raises_and_accounts_bytes(tmp_path_factory, events):
    d = tmp_path_factory.mktemp("inv")
    write(d / "t.msgpack", events, 7)
    r = Replay.load(d / "t.msgpack", checkpoint_events=5)
    s = r.final
    # PageTables counts exactly the allocated, not yet freed tables.
    assert s.pt_bytes == 4096 * len(s.tid_of)
    # VmPTE per mm counts exactly the attached tables of that mm.
    attached = {}
    for pfn, tid in s.tid_of.items():
        if s.stage[pfn] == 0:
            attached[r.log.mm(tid)] = attached.get(r.log.mm(tid), 0) + 4096
    assert {mm: b for mm, b in s.mm_bytes.items() if b} == attached
    # Empty-attached tables are attached PTE tables with no present entry.
    assert set(s.empty_since) == {p for p, tid in s.tid_of.items()
                                  if s.stage[p] == 0 and r.log.level(tid) == 1
                                  and s.present[p] == 0}


@settings(max_examples=400 if LONG else 10)
@given(events=traces(max_events=200), chunk_events=st.integers(1, 40),
       every=st.integers(1, 50), t=st.integers(0, 10**10))
def test_state_at_equals_straight_replay_deep(tmp_path_factory, events, chunk_events, every, t):
    d = tmp_path_factory.mktemp("deep")
    write(d / "full.msgpack", events, chunk_events)
    write(d / "prefix.msgpack", [e for e in events if e[0] <= t], 4096)
    got = Replay.load(d / "full.msgpack", checkpoint_events=every).state_at(t)
    want = Replay.load(d / "prefix.msgpack").final
    assert got == want, got.differences(want)


def _gaps(replay):
    idx = [c.index for c in replay.checkpoints]
    return [b - a for a, b in zip(idx, idx[1:])]


def test_checkpoints_spread_out_where_the_fold_is_bulk_and_stay_close_where_it_is_not(
        tmp_path):
    """Once a group folds almost all in bulk, groups and checkpoints are four times as
    far apart; where rows are visited one by one (steps on tables the trace never saw
    allocated) they stay at the spacing asked for. Seeks answer the same either way."""
    from ptviz.bench.mixes import write_sim_mix
    bulk = tmp_path / "bulk.msgpack"
    write_sim_mix("fork-exit", str(bulk), 120_000)            # 16,384-event chunks
    with Replay.load(bulk, checkpoint_events=16384) as fast, \
            Replay.load(bulk, checkpoint_events=16384, reference=True) as ref:
        gaps = _gaps(fast)
        assert gaps[0] == 16384 and set(gaps[1:]) == {65536}
        for t in range(fast.first_ts, fast.last_ts, (fast.last_ts - fast.first_ts) // 7):
            assert fast.state_at(t) == ref.state_at(t)
    orphans = tmp_path / "orphans.msgpack"
    write(orphans, [(1000 + i, 6, i % 4, 7, (0xA000, 0x1000 + i % 5000, 1, None))
                    for i in range(80_000)], 16384)
    with Replay.load(orphans, checkpoint_events=16384) as replay:
        assert set(_gaps(replay)) == {16384}
