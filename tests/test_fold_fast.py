"""The fast fold (rows that change nothing skipped, IPI entries counted in bulk)
gives exactly what the reference fold gives, visiting every row: the state at the
end and at any time, the report, the findings, the counters and the timeline."""

import json
import os
from contextlib import contextmanager

import pytest
from hypothesis import given, settings, strategies as st

from ptviz.sim.run import simulate
from replayer import vocab as v
from replayer.replay import Replay
from replayer.report import build_report
from tests.conftest import LONG, TRACES
from tests.test_replay_seek import write
from tests.tracegen import WALKER_OPS, lives, mixed, traces
import replayer.fold as fold


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
    assert fast.log.data == ref.log.data
    assert fast.log.generations == ref.log.generations and fast.log.mms == ref.log.mms


def _trace(pid: int | None = 7):
    """A trace made by hand: ``add(kind_name, *fields, pid=…, cpu=0)`` appends an
    event 10 ns after the previous one."""
    events = []

    def add(kind, *fields, pid=pid, cpu=0):
        events.append((1000 + 10 * (len(events) + 1), v.KIND_BY_NAME[kind].id, cpu, pid,
                       fields))
    return events, add


def _fast_and_reference(tmp_path, events):
    """``events`` in one chunk, replayed fast (bulk from 16 table rows) and by the
    reference, and how many stretches the fast one applied and handed back."""
    path = tmp_path / "t.msgpack"
    write(path, events, 10_000)
    with bulk_from(16) as counts:
        fast = Replay.load(path)
    return fast, Replay.load(path, reference=True), counts


@contextmanager
def bulk_from(steps: int):
    """The bulk table path taken for stretches of ``steps`` table rows and more; yields
    a count of the stretches it applied and handed back."""
    was, apply = fold.MIN_STEPS, fold.apply_lives
    counts = {"applied": 0, "handed back": 0}

    def counted(*args):
        writes = apply(*args)
        counts["applied" if writes is not None else "handed back"] += 1
        return writes
    fold.MIN_STEPS, fold.apply_lives = steps, counted
    try:
        yield counts
    finally:
        fold.MIN_STEPS, fold.apply_lives = was, apply


@settings(max_examples=300 if LONG else 15)
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


@settings(max_examples=400 if LONG else 15)
@given(events=mixed(), chunk_events=st.sampled_from((1, 2, 3, 5, 8, 13, 40, 100, 10000)),
       every=st.integers(1, 30), version=st.sampled_from((2, 2, 2, 1)))
def test_every_kind_mixed_on_few_pfns_equals_reference(tmp_path_factory, events,
                                                       chunk_events, every, version):
    """Every stretch in bulk where it may be (from one table row), with every kind of
    event around the tables, seeking at every time: what the reference gives."""
    path = tmp_path_factory.mktemp("mixed") / "t.msgpack"
    write(path, events, chunk_events, version=version)
    times = sorted({e[0] for e in events} | {0})
    with bulk_from(1):
        fast = Replay.load(path, checkpoint_events=every)
    with fast, Replay.load(path, checkpoint_events=every, reference=True) as ref:
        with bulk_from(1):
            assert_same(fast, ref, times)


@settings(max_examples=150 if LONG else 12)
@given(events=lives(), chunk_events=st.integers(1, 300), every=st.integers(1, 50),
       picks=st.lists(st.integers(0, 10**12), max_size=5))
def test_bulk_table_steps_equal_reference(tmp_path_factory, events, chunk_events, every,
                                          picks):
    """Tables living as the kernel runs them, applied a stretch at a time
    (:mod:`replayer.fold_lives`), give what the per-row reference gives; so do the
    stretches it hands back (a step out of order)."""
    path = tmp_path_factory.mktemp("bulk") / "t.msgpack"
    write(path, events, chunk_events)
    stamps = sorted({e[0] for e in events} | {0})
    times = [stamps[p % len(stamps)] for p in picks]
    with bulk_from(1):
        fast = Replay.load(path, checkpoint_events=every)
    with fast, Replay.load(path, checkpoint_events=every, reference=True) as ref:
        with bulk_from(1):
            assert_same(fast, ref, times)


def test_bulk_path_hands_back_a_stretch_that_is_not_regular(tmp_path):
    """Two stretches of whole table lives (an mm_new of an mm that exited cuts them: it
    resets the mm's peak): the first is applied in bulk; the second frees a table that
    is still attached, so it goes row by row and the finding is the reference's."""
    events, add = _trace()
    for stretch in range(2):
        for pfn in range(0x100, 0x140):
            add("table_alloc", 0xA000, 1, pfn, pfn << 21, None)
            add("pte_set", 0xA000, pfn, 8, None)
        for pfn in range(0x100, 0x140):
            add("pte_clear", 0xA000, pfn, 8, None)
            if stretch and pfn == 0x120:
                add("table_free", pfn, "direct", None)
                continue
            add("table_detach", 0xA000, pfn, "munmap", None)
            add("table_queue", pfn, "batch", None)
            add("table_free", pfn, "rcu", None)
        add("marker", "end of stretch")
        add("mm_exit", 0xB000)
        add("mm_new", 0xB000, 9, "sh")
    fast, ref, counts = _fast_and_reference(tmp_path, events)
    assert counts == {"applied": 1, "handed back": 1}
    with fast, ref:
        assert [f.kind for f in fast.findings] == ["free_attached"]
        assert_same(fast, ref, [e[0] for e in events[::17]])


@pytest.mark.parametrize("paired", [True, False])
def test_callbacks_grace_periods_and_syncs_in_bulk_equal_reference(tmp_path, monkeypatch,
                                                                   paired):
    """Callbacks, grace periods and syncs paired in bulk (:mod:`replayer.fold_pairs`):
    a callback queued in one stretch and run in a later one, queued twice before it
    runs, run twice, run before a grace period ended (an early callback); a grace
    period ended twice; syncs begun twice, and ended with no begin. Unpaired (ids
    the bulk path cannot sort), the per-row handlers take callbacks and grace periods."""
    if not paired:
        import replayer.fold_pairs as fold_pairs
        monkeypatch.setattr(fold_pairs, "_keys", lambda values: None)
    events, add = _trace(pid=None)
    cb = (1 << 63) + 0x88                  # a kernel address: beyond int64
    add("rcu_queue", cb, "tlb_remove_table_rcu", None)
    add("rcu_gp_start", 1)
    add("table_sync_end", "ipi_broadcast", cpu=1)
    add("table_sync_begin", "ipi_broadcast", (1, 2), cpu=1)
    add("table_sync_begin", "ipi_broadcast", (1, 2, 3), cpu=1)
    add("rcu_invoke", cb, cpu=2)                       # early: no grace period ended
    add("rcu_invoke", cb, cpu=2)                       # nothing pending any more
    add("rcu_queue", cb + 1, "tlb_remove_table_rcu", (0x5000,))
    add("rcu_queue", cb + 1, "tlb_remove_table_rcu", None)
    add("rcu_gp_end", 1)
    add("rcu_gp_end", 1)
    add("table_sync_end", "ipi_broadcast", cpu=1)
    add("table_sync_end", "ipi_broadcast", cpu=1)
    add("rcu_gp_start", 2)
    add("rcu_gp_end", 2)
    add("rcu_invoke", cb + 1, cpu=3)                   # after a grace period: on time
    add("rcu_queue", cb, "tlb_remove_table_rcu", None)
    add("rcu_gp_start", 3)
    add("rcu_gp_end", 3)
    add("rcu_invoke", cb, cpu=0)
    for chunk_events in (1, 3, 7, 100):
        path = tmp_path / f"t{chunk_events}.msgpack"
        write(path, events, chunk_events)
        for every in (1, 2, 5, 50):
            with Replay.load(path, checkpoint_events=every) as fast, \
                    Replay.load(path, checkpoint_events=every, reference=True) as ref:
                assert_same(fast, ref, [e[0] for e in events])
                assert [f.kind for f in fast.findings] == ["rcu_early"]
                assert [(c, m, n) for c, m, _, _, n in fast.syncs] == [(1, "ipi_broadcast", 3)]
                assert fast.final.rcu_invoked == 4 and not fast.final.rcu_pending


def test_zaps_of_several_tasks_in_a_bulk_stretch_equal_reference(tmp_path):
    """Zaps applied with a bulk stretch are recorded per task (each task's latest and
    open zap): a later detach by the second task finds its zap, and a table that
    sat empty before that zap is a leak, as the per-row handlers say."""
    events, add = _trace()
    add("table_alloc", 0xA000, 1, 0x500, 0x500 << 21, None, pid=8)     # never filled
    for pid in (7, 8, 9):
        add("zap_begin", 0xA000, 0, 1 << 21, "munmap", None, pid=pid)
    add("zap_end", 0xA000, 0, 1 << 21, "munmap", None, pid=7)
    for pfn in range(0x100, 0x120):
        add("table_alloc", 0xA000, 1, pfn, pfn << 21, None)
        add("pte_set", 0xA000, pfn, 4, None)
    add("marker", "end of the bulk stretch")
    add("table_detach", 0xA000, 0x500, "munmap", None, pid=8)
    fast, ref, counts = _fast_and_reference(tmp_path, events)
    assert counts["applied"] == 1
    with fast, ref:
        assert fast.folder._last_zap == ref.folder._last_zap == {7: 1, 8: 2, 9: 3}
        assert fast.folder._open_zap == ref.folder._open_zap == {8: 2, 9: 3}
        assert ref.log.record(ref.log.find(0x500, 0))["leaked_since"] is not None
        assert_same(fast, ref, [e[0] for e in events])


def test_markers_amid_bulk_steps_read_what_was_true_at_their_row(tmp_path):
    """Markers and mm_new rows no longer cut a stretch: a marker reads its task's mm,
    that mm's VmPTE and the empty tables as they were at its row (before allocations
    that follow it, after those before it; an mm made by an mm_new but with no table
    yet reads 0, one never seen nil), as the per-row handlers do."""
    events, add = _trace()
    add("marker", "VmPTE: 0 kB pid=7 (sample)")          # nothing known yet: nil
    add("mm_new", 0xC000, 8, "child")
    add("marker", "VmPTE: 0 kB pid=8 (sample)")          # made by mm_new: 0
    for pfn in range(0x100, 0x120):
        add("table_alloc", 0xA000, 1, pfn, pfn << 21, None)
        if pfn == 0x108:
            add("marker", "VmPTE: 36 kB pid=7 (sample)")     # 9 tables so far
        add("pte_set", 0xA000, pfn, 8, None)
    add("table_alloc", 0xC000, 1, 0x200, 0x200 << 21, None, pid=8)
    add("marker", "mid", pid=8)
    for pfn in range(0x100, 0x120):
        add("pte_clear", 0xA000, pfn, 8, None)
        add("table_detach", 0xA000, pfn, "munmap", None)
        if pfn == 0x110:
            add("marker", "VmPTE: 60 kB pid=7 (sample)")
        add("table_queue", pfn, "batch", None)
        add("table_free", pfn, "rcu", None)
    add("mm_new", 0xD000, 7, "exec")                     # task 7 moves to a new mm
    add("marker", "after exec")
    fast, ref, counts = _fast_and_reference(tmp_path, events)
    assert counts == {"applied": 1, "handed back": 0}
    with fast, ref:
        got = [(m["mm"], m["vmpte_bytes"], m["empty_attached"]) for m in fast.folder.markers]
        assert got == [(m["mm"], m["vmpte_bytes"], m["empty_attached"])
                       for m in ref.folder.markers]
        assert got == [(None, None, 0), (0xC000, 0, 0), (0xA000, 9 * 4096, 1),
                       (0xC000, 4096, 1), (0xA000, 15 * 4096, 1), (0xD000, 0, 1)]
        assert_same(fast, ref, [e[0] for e in events])


SMALL = {"coverletter": {"size": "64M"}, "walkers": {"size": "16M"},
         "munmap": {"size": "32M", "chunk": "4M"}, "fork-exit": {"children": "4"},
         "allocator": {"ops": "300"}, "collapse": {"regions": "16"}}


@pytest.mark.parametrize("workload", sorted(SMALL))
def test_fast_fold_equals_reference_on_every_workload(tmp_path, workload):
    path = str(tmp_path / "sim.msgpack")
    simulate(path, "x86_64", "6.14", workload, SMALL[workload], {}, cpus=4, seed=3)
    with bulk_from(16) as counts:
        fast = Replay.load(path)
    assert counts["applied"] > 0, counts
    with fast, Replay.load(path, reference=True) as ref:
        span = (ref.last_ts or 0) - (ref.first_ts or 0)
        times = [(ref.first_ts or 0) + span * k // 7 for k in range(8)]
        with bulk_from(16):
            assert_same(fast, ref, times)


def test_seeks_while_the_trace_loads_neither_fail_nor_break_the_load(tmp_path):
    """A UI seeks from its own thread while the load runs: a seek's bulk fold must not
    hold the growing table log (the loader's next append would fail), and every
    answer equals the one after the load."""
    import random
    import threading
    path = str(tmp_path / "fork.msgpack")
    simulate(path, "x86_64", "6.14", "fork-exit", {"children": "300", "size": "8M"}, {},
             cpus=4, seed=3)
    with bulk_from(16):
        replay = Replay.open(path, checkpoint_events=2048)
        failed = []

        def load():
            try:
                replay.run()
            except BaseException as exc:       # noqa: BLE001 - the test reports it
                failed.append(exc)
        loader = threading.Thread(target=load)
        loader.start()
        rng, cursor, seen = random.Random(1), replay.cursor(), []
        first, last = replay.reader.chunks[0].min_ts, replay.reader.chunks[-1].max_ts
        while loader.is_alive():
            t = rng.randrange(first, last)
            loaded = replay.loaded_chunks
            if loaded and t < min((c.min_ts for c in replay.reader.chunks[loaded:]),
                                  default=1 << 62):
                state = cursor.state_at(t)
                seen.append((t, state.index, dict(state.mm_bytes)))
        loader.join()
        assert not failed, failed
        after = replay.cursor()
        assert seen
        for t, index, mm_bytes in seen:
            state = after.state_at(t)
            assert (state.index, dict(state.mm_bytes)) == (index, mm_bytes), t


def test_table_log_tids_of_equals_generations_as_the_log_grows():
    """``tids_of`` (a sorted index, one of the tables appended since, and a scan of the
    last few) answers what ``generations`` does, asked between appends of any size."""
    import random
    from replayer.state import TableLog
    rng = random.Random(5)
    log = TableLog()
    for _ in range(60):
        for _ in range(rng.choice((0, 1, 7, 300, 1500))):
            log.append(rng.randrange(64), 0xA000, 1, 0, 0, 0)
        gens = log.generations
        for pfn in rng.sample(range(70), 5):
            assert log.tids_of(pfn) == gens.get(pfn, [])


def test_walker_reads_of_pfns_the_log_never_held_stay_cheap(monkeypatch):
    """A walker read finding no table looks the pfn up in the log (a use after free?):
    each lookup reads two sorted indexes and at most 1,024 records, and the indexes
    are built as the log grows, not once per lookup."""
    import replayer.state as state
    built = []
    real = state._sorted_pfns
    monkeypatch.setattr(state, "_sorted_pfns",
                        lambda data, lo, hi: built.append(hi - lo) or real(data, lo, hi))
    log = state.TableLog()
    for i in range(30_000):
        log.append(i, 0xA000, 1, 0, 0, 0)
    log.tids_of(0)
    for i in range(3_000):
        log.append(i, 0xA000, 1, 0, 0, 0)
    built.clear()
    for j in range(2000):
        assert log.tids_of(10**9 + j) == []
    assert built == [3_000]          # the appended tables' own index, built once
    assert log.tids_of(5) == [5, 30_005]


def test_the_table_log_keeps_its_records_through_growth_and_old_views():
    """The log's buffer doubles as it fills: every record reads back as appended, and
    a view taken before a growth still reads the records it held (a reader on another
    thread)."""
    from replayer.state import T_PFN, T_WIDTH, TableLog
    log = TableLog()
    early = None
    for i in range(5000):
        log.append(i * 7, 0xA000 + i % 3, 1, i << 21, 1000 + i, i)
        if i == 10:
            early = log.data
    assert len(log) == 5000 and len(early) == 11 * T_WIDTH
    assert [early[t * T_WIDTH + T_PFN] for t in range(11)] == [t * 7 for t in range(11)]
    assert log.nbytes() == len(log.data.tobytes()) == 5000 * T_WIDTH * 8
    assert [log.get(t, T_PFN) for t in (0, 2500, 4999)] == [0, 17500, 34993]
    assert log.mm(4999) == 0xA000 + 4999 % 3


def test_a_trace_with_a_footer_sizes_the_table_log_once(tmp_path):
    """The footer counts the allocations: the log is made that size at once (nothing
    copied as it fills, no spare room kept); a trace cut before its footer still
    loads, the log growing as it goes, to the same records."""
    from replayer.replay import Replay
    from replayer.traceio import TraceReader
    from replayer.traceio.framing import FRAME_HEAD
    path = os.path.join(TRACES, "sim-coverletter-6.14-x86_64.msgpack")
    with TraceReader(path) as reader:
        allocs = reader.counts()[0]["table_alloc"]
    with Replay.load(path) as whole:
        assert len(whole.log) == whole.log.capacity == allocs > 0
        records = bytes(whole.log.data)
    cut = tmp_path / "no-footer.msgpack"
    with open(path, "rb") as src:
        data = src.read()
    with TraceReader(path) as reader:
        last = reader.chunks[-1].offset
        end = last + FRAME_HEAD.size + reader._frame(last)[1]
    cut.write_bytes(data[:end])
    with Replay.load(str(cut)) as grown:
        assert not grown.reader.has_footer
        assert grown.log.capacity > len(grown.log) == allocs
        assert bytes(grown.log.data) == records


def test_a_footer_claiming_more_than_memory_holds_reserves_nothing():
    """A footer may lie about its counts (within the file's size, an event a byte): a
    reservation too large for memory is skipped, and the buffers grow as events come."""
    import numpy as np
    from replayer.state import T_PFN, TableLog
    from replayer.timeline import Timeline
    log = TableLog(1 << 40)
    assert log.capacity == 0
    log.append(0x1234, 0xA000, 1, 0, 5, 0)
    assert len(log) == 1 and log.get(0, T_PFN) == 0x1234
    timeline = Timeline({0: 1 << 40})
    from array import array
    timeline.add(array("q", [1, 2, 3]), np.zeros(3, np.uint16), np.zeros(3, np.uint16), 0)
    timeline.finish()
    assert timeline.cpus[0].ts.tolist() == [1, 2, 3]
