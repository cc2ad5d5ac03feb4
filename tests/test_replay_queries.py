"""The engine queries a UI makes: concurrent seeks, rows around a time, the next event
of a class, tables by class, and answers while the load is still running."""

from __future__ import annotations

import random
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st

from replayer import CLASSES, TIMELINE_CLASSES, Cancelled, Replay
from replayer.traceio import TraceWriter
from replayer.vocab import KIND_BY_ID, TIMELINE_CLASS_OF_KIND
from tests.story import X86_64
from tests.tracegen import random_trace, traces


def write(path, events, chunk_events=5):
    with TraceWriter(path, {"source": "test", "cpus": 4, "arch": X86_64},
                     chunk_events=chunk_events, force=True) as w:
        for ts, kind, cpu, pid, fields in events:
            w.add(ts, kind, cpu, pid, fields)


def straight(tmp_path, events, t):
    """The state after the longest prefix with every ts <= t, replayed on its own."""
    prefix = [e for e in events if e[0] <= t]
    write(tmp_path / "prefix.msgpack", prefix)
    with Replay.load(tmp_path / "prefix.msgpack") as r:
        return r.final


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """A loosely coherent random trace of 400 events, and the state at 60 of its times
    computed by straight replays of each prefix."""
    d = tmp_path_factory.mktemp("busy")
    events = random_trace(400, seed=7)
    write(d / "full.msgpack", events, chunk_events=7)
    stamps = sorted({e[0] for e in events})
    times = random.Random(3).sample(stamps, 60)
    want = {t: straight(d, events, t) for t in times}
    return d / "full.msgpack", want


def test_concurrent_seeks_agree_with_straight_replays(busy):
    """Two threads seek in random orders, each with its own cursor, and a third through
    the shared state_at: every answer equals the straight replay."""
    path, want = busy
    replay = Replay.load(path, checkpoint_events=100)   # long folds between checkpoints
    wrong: list = []

    def seek(use_cursor: bool, seed: int) -> None:
        cursor = replay.cursor() if use_cursor else None
        # Sweeps forward from a random start, as a UI cursor steps: each call can
        # continue from the cursor's previous answer, the path that shares most.
        times = sorted(want)
        rng = random.Random(seed)
        for _ in range(12):
            k = rng.randrange(len(times))
            times = times[k:] + times[:k]
        for t in times * 4:
            got = cursor.state_at(t) if cursor else replay.state_at(t)
            if got != want[t]:
                wrong.append((t, got.differences(want[t])))

    threads = [threading.Thread(target=seek, args=(c, s)) for c, s in
               ((True, 1), (True, 2), (False, 3), (False, 4), (False, 5))]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)            # interleave the threads as often as possible
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


def test_queries_while_loading_answer_for_the_loaded_part(busy):
    """A worker loads; meanwhile another thread seeks and buckets. Whatever it gets is
    right for the part loaded, and nothing raises."""
    path, want = busy
    replay = Replay.open(path, checkpoint_events=3)
    errors: list = []
    seen_partial = []

    stop = threading.Event()

    def query() -> None:
        cursor = replay.cursor()
        try:
            while not replay.loaded and not stop.is_set():
                loaded = replay.loaded_events
                replay.buckets([0, 1, 2, 3], 0, 10**12, 50)
                replay.counter("page_table_bytes", 0, 10**12, 50)
                replay.tables(cursor.state_at(10**12))
                if loaded:
                    seen_partial.append(loaded)
                    replay.rows(max(0, loaded - 5), loaded)
                for t, state in want.items():
                    got = cursor.state_at(t)
                    # Either the whole answer, or a prefix of it (the load is behind).
                    if got != state and got.index >= state.index:
                        errors.append((t, got.differences(state)))
        except Exception:                 # noqa: BLE001 - the test reports any
            import traceback
            errors.append(traceback.format_exc())

    th = threading.Thread(target=query)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        th.start()
        replay.run(progress=lambda done, total: threading.Event().wait(0.001))
    finally:
        stop.set()                   # a load that failed must not leave the thread spinning
        th.join()
        sys.setswitchinterval(interval)
    assert errors == []
    for t, state in want.items():
        assert replay.state_at(t) == state


def test_cancelled_is_not_bad_input(busy):
    path, _ = busy
    with pytest.raises(Cancelled):
        Replay.load(path, cancelled=lambda: True)
    assert not issubclass(Cancelled, OSError)


def test_a_cancelled_load_goes_on_where_it_stopped(busy):
    """Cancelled after some groups, then run again: the same replay as one load (not
    the first groups folded twice)."""
    from replayer.report import build_report
    path, _ = busy
    whole = Replay.load(path, checkpoint_events=64)
    asked = []
    replay = Replay.open(path, checkpoint_events=64)
    with pytest.raises(Cancelled):
        replay.run(cancelled=lambda: asked.append(1) or len(asked) == 3)
    assert 0 < replay.loaded_events < whole.event_count and not replay.loaded
    replay.run()
    assert replay.loaded and replay.event_count == whole.event_count
    assert build_report(replay) == build_report(whole)
    assert [c.index for c in replay.checkpoints] == [c.index for c in whole.checkpoints]
    for t in (whole.first_ts, (whole.first_ts + whole.last_ts) // 2, whole.last_ts):
        assert replay.state_at(t) == whole.state_at(t)


@given(events=traces(max_events=80), t=st.integers(0, 10**10))
def test_index_at_and_rows(tmp_path_factory, events, t):
    d = tmp_path_factory.mktemp("rows")
    write(d / "t.msgpack", events, chunk_events=3)
    with Replay.load(d / "t.msgpack") as r:
        stamps = [e[0] for e in events]
        running = np.maximum.accumulate(stamps) if stamps else []
        assert r.index_at(t) == int(np.searchsorted(running, t, side="left"))
        got = r.rows(2, 9)
        assert [i for i, _ in got] == list(range(2, min(9, len(events))))
        assert [(e.ts, e.kind, e.cpu) for _, e in got] == [
            (ts, KIND_BY_ID[k].name, cpu) for ts, k, cpu, _, _ in events[2:9]]
        assert r.rows(-5, 10**6) == r.rows(0, len(events))


@given(events=traces(max_events=80), t=st.integers(0, 10**10),
       forward=st.booleans(), picks=st.sets(st.sampled_from(TIMELINE_CLASSES), min_size=1))
def test_next_event_is_the_nearest_of_its_class(tmp_path_factory, events, t, forward, picks):
    d = tmp_path_factory.mktemp("next")
    write(d / "t.msgpack", events, chunk_events=4)
    with Replay.load(d / "t.msgpack") as r:
        classes = {TIMELINE_CLASSES.index(c) for c in picks}
        # Each event's class as the timeline has it (a reclaim's detach is "reclaim").
        cls_of = {}
        for cpu, col in r.timeline.cpus.items():
            for i, c in zip(col.idx.tolist(), col.cls.tolist()):
                cls_of[i] = c
        cands = [(ts, i, cpu) for i, (ts, k, cpu, _, _) in enumerate(events)
                 if cls_of[i] in classes and cpu in (0, 2, 3)
                 and (ts > t if forward else ts < t)]
        want = (min(cands) if forward else max(cands)) if cands else None
        assert r.next_event(t, classes, [0, 2, 3], forward) == want
        # Plain kinds keep their kind's class.
        for i, (_, k, *_rest) in enumerate(events):
            if KIND_BY_ID[k].name not in ("table_detach", "table_free"):
                assert cls_of[i] == TIMELINE_CLASS_OF_KIND[k]


@given(events=traces(max_events=120), frac=st.floats(0, 1))
def test_tables_agree_with_the_report_and_the_state(tmp_path_factory, events, frac):
    from replayer.report import build_report
    d = tmp_path_factory.mktemp("tables")
    write(d / "t.msgpack", events, chunk_events=6)
    with Replay.load(d / "t.msgpack") as r:
        t = int((r.last_ts or 0) * frac)
        state = r.state_at(t)
        tables = r.tables(state)
        report = build_report(r, t)
        assert tables.counts() == {c: report["tables"][c]["count"] for c in CLASSES}
        # Per mm: one bincount, as a mask per mm would count them.
        by_mm = tables.counts_by_mm()
        assert by_mm == {int(m): tables.where(tables.mm == m).counts()
                         for m in set(tables.mm.tolist())}
        for row in report["mms"]:
            if int(row["mm"], 16) in by_mm:
                assert {c: v["count"] for c, v in row["pte_tables"].items()} == \
                    by_mm[int(row["mm"], 16)]
        # Each live PTE table of the state is there, in the class its stage says.
        attached = {p for p, tid in state.tid_of.items()
                    if state.stage[p] == 0 and r.log.level(tid) == 1}
        got = {int(p) for p, c in zip(tables.pfn, tables.cls)
               if CLASSES[c] in ("empty_attached", "live")}
        assert got == attached
        assert len(r.tables(state, cls="live")) == tables.counts()["live"]
        with pytest.raises(Exception, match="unknown table class"):
            r.tables(state, cls="nonsense")


def test_buckets_and_counters_over_the_whole_int64_range(tmp_path):
    # A trace whose times span nearly all of int64 (hostile, or a bad clock): the UI's
    # fitted view asks for buckets over it; (ts - t0) * n must not overflow.
    from ptviz.tui.view import View
    from tests.story import MM, Story
    s = Story(tmp_path / "t.msgpack")
    lo, hi = -(1 << 63) + 1, (1 << 63) - 2
    s.at(lo).mm_new(mm=MM, tgid=100, command="app")
    s.at(lo + 5).table_alloc(mm=MM, level=1, pfn=0x100, addr=0)
    s.at(0).tlb_flush(reason="x", pages=1)
    s.at(hi).table_detach(mm=MM, pfn=0x100, cause="munmap")
    r = s.replay()
    view = View.fit(lo, hi, 80)
    counts = r.buckets([0], view.t0, view.t1, 80)[0]
    assert counts.sum() == 4 and counts[0].sum() == 2 and counts[-1].sum() == 1
    assert counts[39:41].sum() == 1                       # t = 0 is mid-screen
    sampled = r.counter("page_table_bytes", view.t0, view.t1, 80)
    assert sampled[0] == 4096 and sampled[-1] == 4096 and max(sampled) == 4096


def test_stepping_goes_through_events_of_the_same_time_one_by_one(tmp_path):
    from tests.story import MM, Story
    s = Story(tmp_path / "t.msgpack")
    s.at(1000).mm_new(mm=MM, tgid=100, command="app")
    firsts = []
    for k in range(3):            # three allocations in the same nanosecond, then one later
        s.at(2000)
        firsts.append(s.table_alloc(mm=MM, level=1, pfn=0x100 + k, addr=k << 21))
    later = s.at(3000).table_alloc(mm=MM, level=1, pfn=0x200, addr=0)
    r = s.replay()
    alloc = TIMELINE_CLASSES.index("alloc")
    seen, hit = [], r.next_event(0, {alloc}, [0])
    while hit is not None:
        seen.append(hit[1])
        hit = r.next_event(hit[0], {alloc}, [0], index=hit[1])
    assert seen == firsts + [later]
    back, hit = [], r.next_event(9999, {alloc}, [0], forward=False)
    while hit is not None:
        back.append(hit[1])
        hit = r.next_event(hit[0], {alloc}, [0], forward=False, index=hit[1])
    assert back == [later] + firsts[::-1]
    # Without an index, "after t" skips the whole nanosecond, as before.
    assert r.next_event(2000, {alloc}, [0])[1] == later


@given(events=traces(max_events=120), fracs=st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_peaks_are_reached_and_never_exceeded(tmp_path_factory, events, fracs):
    # A class's peak is its count in the report at the peak's time, and no report at
    # another time counts more (in flight and lost are one at the peak: a detached
    # table not yet freed, whichever the end of the trace will make it).
    from replayer.report import build_report
    d = tmp_path_factory.mktemp("peaks")
    write(d / "t.msgpack", events, chunk_events=7)
    with Replay.load(d / "t.msgpack") as r:
        peaks = build_report(r)["peaks"]

        def count(report, cls):
            t = report["tables"]
            return t[cls]["count"] + (t["lost"]["count"] if cls == "in_flight" else 0)
        for cls, p in peaks.items():
            if p["ts"] is not None:
                assert count(build_report(r, p["ts"]), cls) == p["count"], cls
        for frac in fracs:
            t = int((r.last_ts or 0) * frac)
            report = build_report(r, t)
            for cls, p in peaks.items():
                assert count(report, cls) <= p["count"], (cls, t)
