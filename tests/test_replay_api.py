"""The public query API the UI uses: buckets, counter, events, event_at, table_history."""

import pytest

from replayer.errors import BadInput, CorruptTrace
from replayer.replay import Replay
from replayer.traceio import TraceWriter
from replayer.vocab import TIMELINE_CLASSES
from tests.story import MM, Story, X86_64

PTE = 1


@pytest.fixture
def replay(tmp_path):
    s = Story(tmp_path / "t.msgpack", chunk_events=3)
    s.at(0).mm_new(mm=MM, tgid=100, command="app")               # 0  t=0
    s.at(100).table_alloc(mm=MM, level=PTE, pfn=0x10, addr=0)    # 1  t=100
    s.at(200).pte_set(mm=MM, pfn=0x10, n=4)                      # 2  t=200
    s.at(300).on(1).tlb_flush(mm=MM, start=0, end=4096, pages=1,
                              reason="remote shootdown")         # 3  t=300 cpu1
    s.at(400).on(0).ipi_send(targets=(1,), reason="tlb_shootdown",
                             callsite="flush_tlb_mm_range")      # 4  t=400
    s.at(450).on(1).ipi_enter(reason="tlb_shootdown")            # 5  t=450 cpu1
    s.at(600).on(0).pte_clear(mm=MM, pfn=0x10, n=4)              # 6  t=600
    s.at(700).table_detach(mm=MM, pfn=0x10, cause="reclaim")     # 7
    s.at(800).rcu_queue(cb=1, func="tlb_remove_table_rcu", pfns=(0x10,))  # 8
    s.at(900).table_free(pfn=0x10, path="rcu")                   # 9  t=900
    return s.replay(checkpoint_events=2)


def cls(name):
    return TIMELINE_CLASSES.index(name)


def test_buckets_count_events_per_cpu_and_class(replay):
    b = replay.buckets([0, 1, 7], 0, 1000, 10)
    assert b[0].shape == (10, len(TIMELINE_CLASSES))
    assert b[0][1, cls("alloc")] == 1 and b[0][2, cls("fault")] == 1
    assert b[0][6, cls("zap")] == 1
    # The table was reclaimed: its detach and free have their own classes.
    assert b[0][7, cls("reclaim")] == 1 and b[0][9, cls("reclaim_free")] == 1
    assert b[0][:, cls("detach")].sum() == 0 and b[0][:, cls("free")].sum() == 0
    assert b[1][3, cls("tlb")] == 1 and b[1][4, cls("ipi_recv")] == 1
    assert b[0].sum() == 8 and b[1].sum() == 2 and b[7].sum() == 0
    # A window that cuts events off counts only those inside [t0, t1).
    assert replay.buckets([0], 100, 300, 2)[0].sum() == 2


def test_counters_are_sampled_per_bucket(replay):
    assert replay.counter("page_table_bytes", 0, 1000, 10) == [0] + [4096] * 8 + [0]  # freed at 900
    assert replay.counter(f"vmpte_bytes:{MM:#x}", 0, 1000, 10) == [0] + [4096] * 6 + [0] * 3
    # Empty when allocated (t=100), non-empty at 200, empty again at 600, detached at 700.
    assert replay.counter("empty_attached", 0, 1000, 10) == [0, 1, 0, 0, 0, 0, 1, 0, 0, 0]
    assert replay.counter("ipis", 0, 1000, 10) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert replay.counter("rcu_pending", 0, 1000, 10)[8] == 1
    with pytest.raises(BadInput):
        replay.counter("nonsense", 0, 1000, 10)


def test_events_with_filters_read_only_the_window(replay):
    replay._chunks.clear()                 # what the load left in the chunk cache
    replay.reader.chunks_read = 0
    got = [(i, e.kind) for i, e in replay.events(550, 850)]
    assert got == [(6, "pte_clear"), (7, "table_detach"), (8, "rcu_queue")]
    assert replay.reader.chunks_read == 1  # chunks of 3 events: only [6, 7, 8] overlaps
    assert [i for i, _ in replay.events(cpus={1})] == [3, 5]
    assert [i for i, _ in replay.events(kinds={"table_free", "table_alloc"})] == [1, 9]
    assert [i for i, _ in replay.events(pfn=0x10)] == [1, 2, 6, 7, 8, 9]  # rcu_queue via pfns
    assert [i for i, _ in replay.events(mm=MM, t1=250)] == [0, 1, 2]
    assert replay.event_at(5).kind == "ipi_enter" and replay.event_at(5).cpu == 1
    with pytest.raises(IndexError):
        replay.event_at(10)


def test_table_history_and_state_over_time(replay):
    assert [(h["step"], h["ts"], h["index"]) for h in replay.table_history(0x10)] == [
        ("alloc", 100, 1), ("detach", 700, 7), ("rcu", 800, 8), ("free", 900, 9)]
    assert replay.state_at(250).present == {0x10: 4}
    assert replay.state_at(650).empty_since == {0x10: 600}
    assert replay.state_at(99).tid_of == {}
    assert replay.state_at(10**9) is replay.final


def test_findings_between(replay):
    assert replay.findings_between(0, 10**9) == []


def test_wrongly_typed_fields_are_bad_input(tmp_path):
    path = tmp_path / "bad.msgpack"
    with TraceWriter(path, {"arch": X86_64}) as w:
        w.add(10, 5, 0, 1, (MM, "one", 0x10, 0, None))   # table_alloc with level "one"
        w.add(20, 12, 0, 1, ([1, 2], "rcu", None))       # table_free of a list
    with pytest.raises(CorruptTrace) as err:
        Replay.load(path)
    assert "chunk 0" in str(err.value) and str(path) in str(err.value)
