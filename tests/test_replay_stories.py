"""Hand-written traces for each lifecycle path and each finding, with exact reports."""

import pytest

from replayer.report import build_report
from tests.story import MM, MM2, Story

PTE, PMD = 1, 2
EMPTY = {"count": 0, "bytes": 0}


def tables(**counts):
    """The expected ``tables`` section: the given classes, every other class zero."""
    classes = ("reclaimed", "freed_unmap", "freed_collapse", "empty_attached", "in_flight",
               "lost", "live")
    return {c: {"count": counts.get(c, 0), "bytes": 4096 * counts.get(c, 0)} for c in classes}


def brief(findings):
    return [(f["kind"], f["ts"], f["cpu"], f["pfn"], f["mm"], f["events"]) for f in findings]


@pytest.fixture
def story(tmp_path):
    return Story(tmp_path / "t.msgpack")


def populate(s, pfn=0x100, mm=MM, addr=0x400000, n=512):
    s.mm_new(mm=mm, tgid=100, command="app")
    s.table_alloc(mm=mm, level=PMD, pfn=pfn - 1, addr=addr)
    s.table_alloc(mm=mm, level=PTE, pfn=pfn, addr=addr)
    return s.pte_set(mm=mm, pfn=pfn, n=n)


def test_reclaim_path_rcu_free(story):
    s = story
    populate(s)
    s.zap_begin(mm=MM, start=0x400000, end=0x600000, cause="dontneed")
    s.pte_clear(mm=MM, pfn=0x100, n=512)
    s.table_detach(mm=MM, pfn=0x100, cause="reclaim")
    s.table_queue(pfn=0x100, via="batch")
    s.zap_end(mm=MM, start=0x400000, end=0x600000, cause="dontneed")
    s.rcu_queue(cb=1, func="tlb_remove_table_rcu", pfns=(0x100,))
    s.at(5000).rcu_gp_start(gp=1)
    s.at(9000).rcu_gp_end(gp=1)
    s.rcu_invoke(cb=1)
    s.table_free(pfn=0x100, path="rcu")
    r = s.replay()
    rep = build_report(r)
    assert rep["tables"] == tables(reclaimed=1)
    assert rep["findings"] == []
    (m,) = rep["mms"]
    assert (m["vmpte_bytes"], m["peak_vmpte_bytes"]) == (4096, 8192)  # the PMD table stays
    assert m["tables"] == {"pte": 0, "pmd": 1, "pud": 0, "p4d": 0}
    assert m["pte_tables"]["reclaimed"] == {"count": 1, "bytes": 4096}
    assert rep["page_tables"] == {"bytes": 4096, "peak_bytes": 8192}
    assert [h["step"] for h in r.table_history(0x100)] == ["alloc", "detach", "queue", "rcu",
                                                            "free"]
    assert r.table_history(0x100)[1]["detail"] == "reclaim"
    assert r.table_history(0x100)[-1] == {"step": "free", "ts": 9020, "index": 13,
                                          "detail": "rcu"}
    # Before the grace period ended, the table was in flight and VmPTE already down.
    mid = build_report(r, at=6000)
    assert mid["tables"] == tables(in_flight=1)
    assert mid["mms"][0]["vmpte_bytes"] == 4096
    assert mid["rcu"]["pending"] == 1
    # Before the zap, it was a live table.
    assert build_report(r, at=1035)["tables"] == tables(live=1)


def test_exit_path_direct_free_and_empty_attached_before(story):
    s = story
    populate(s)
    s.pte_clear(mm=MM, pfn=0x100, n=512)               # MADV_DONTNEED without reclaim (6.13)
    t_empty = s.ts
    s.at(50_000).zap_begin(mm=MM, start=0, end=1 << 47, cause="exit")
    s.table_detach(mm=MM, pfn=0x100, cause="exit")
    s.table_detach(mm=MM, pfn=0xFF, cause="exit")
    s.mm_exit(mm=MM)
    s.table_free(pfn=0x100, path="direct")
    s.table_free(pfn=0xFF, path="direct")
    r = s.replay()
    assert build_report(r, at=t_empty + 5)["tables"] == tables(empty_attached=1)
    assert r.state_at(t_empty + 5).empty_since == {0x100: t_empty - 10}
    rep = build_report(r)
    assert rep["tables"] == tables(freed_unmap=1)
    assert rep["mms"][0]["vmpte_bytes"] == 0 and rep["mms"][0]["exited_ts"] is not None
    assert rep["page_tables"]["bytes"] == 0


def test_munmap_single_path_with_sync_ipi(story):
    s = story
    populate(s)
    s.pte_clear(mm=MM, pfn=0x100, n=512)
    s.table_detach(mm=MM, pfn=0x100, cause="munmap")
    s.table_queue(pfn=0x100, via="single")
    s.table_sync_begin(method="ipi_broadcast", targets=(1, 2, 3))
    s.ipi_send(targets=(1, 2, 3), reason="table_sync", callsite="tlb_remove_table_sync_one")
    for cpu in (1, 2, 3):
        s.on(cpu, None).ipi_enter(reason="table_sync")
        s.ipi_exit(reason="table_sync")
    s.on(0).table_sync_end(method="ipi_broadcast")
    s.table_free(pfn=0x100, path="ipi_sync")
    r = s.replay()
    rep = build_report(r)
    assert rep["tables"] == tables(freed_unmap=1)
    assert rep["syncs"] == {"ipi_broadcast": {"count": 1, "targets": 3, "wait_ns": 80,
                                              "max_wait_ns": 80}}
    assert [(c["cpu"], c["ipis_sent"], c["ipis_received"], c["ipis_pending"])
            for c in rep["cpus"]] == [(0, 3, 0, 0), (1, 0, 1, 0), (2, 0, 1, 0), (3, 0, 1, 0)]
    assert r.table_history(0x100)[2]["detail"] == "single"
    assert rep["findings"] == []


def test_collapse_and_pfn_reuse(story):
    s = story
    populate(s)
    s.table_detach(mm=MM, pfn=0x100, cause="collapse")
    s.table_free(pfn=0x100, path="rcu")
    s.table_alloc(mm=MM, level=PTE, pfn=0x100, addr=0x800000)   # same pfn, second life
    s.pte_set(mm=MM, pfn=0x100, n=3)
    r = s.replay()
    rep = build_report(r)
    assert rep["tables"] == tables(freed_collapse=1, live=1)
    assert r.table_history(0x100, 0)[0]["detail"] == "level 1 at 0x400000"
    assert r.table_history(0x100, 1)[0]["detail"] == "level 1 at 0x800000"
    assert len(r.table_history(0x100, 1)) == 1
    assert r.final.present == {0x100: 3}
    with pytest.raises(KeyError):
        r.table_history(0x100, 2)


def test_in_flight_versus_lost(story):
    s = story
    populate(s, pfn=0x100)
    s.table_alloc(mm=MM, level=PTE, pfn=0x200, addr=0x600000)
    s.table_detach(mm=MM, pfn=0x100, cause="reclaim")     # at ~1060: old by the end
    s.table_queue(pfn=0x100, via="batch")
    s.at(1_000_000_000).table_detach(mm=MM, pfn=0x200, cause="reclaim")  # recent at the end
    s.at(1_000_001_000).marker(text="end")
    r = s.replay()
    assert r.gp_tail_ns == 100_000_000  # no grace periods in the trace: the default tail
    rep = build_report(r)
    assert rep["tables"] == tables(lost=1, in_flight=1)
    assert rep["mms"][0]["pte_tables"]["lost"] == {"count": 1, "bytes": 4096}
    assert rep["markers"] == [{"ts": 1_000_001_000, "pid": 100, "text": "end",
                               "mm": hex(MM), "vmpte_bytes": 4096,  # the PMD table
                               "empty_attached": {"count": 0, "bytes": 0},
                               "kernel_vmpte": None}]


def test_use_after_free_by_walker_holding_the_table(story):
    s = story
    populate(s)
    w = s.on(1, 200).walk_begin(mm=MM, walker="pte_offset_map", protect="rcu")
    held = s.walk_table(pfn=0x100)
    s.on(0).pte_clear(mm=MM, pfn=0x100, n=512)
    s.table_detach(mm=MM, pfn=0x100, cause="reclaim")
    s.table_queue(pfn=0x100, via="single")
    freed = s.table_free(pfn=0x100, path="ipi_sync")
    s.on(1, 200).walk_end()
    rep = build_report(s.replay())
    assert brief(rep["findings"]) == [
        ("use_after_free", 1090, 1, "0x100", hex(MM), [w, held, freed])]
    assert "pte_offset_map walker on CPU 1 (rcu)" in rep["findings"][0]["message"]


def test_use_after_free_by_walker_dereferencing_a_freed_table(story):
    s = story
    populate(s)
    s.pte_clear(mm=MM, pfn=0x100, n=512)
    s.table_detach(mm=MM, pfn=0x100, cause="reclaim")
    freed = s.table_free(pfn=0x100, path="direct")
    s.on(2, 300).walk_begin(mm=MM, walker="gup_fast", protect="irq_off")
    late = s.walk_table(pfn=0x100)
    s.walk_end()
    rep = build_report(s.replay())
    assert brief(rep["findings"]) == [("use_after_free", 1080, 2, "0x100", hex(MM),
                                       [freed, late])]


def test_walker_on_the_freeing_cpu_is_not_a_finding(story):
    s = story
    populate(s)
    s.walk_begin(mm=MM, walker="gup_fast", protect="irq_off")
    s.walk_table(pfn=0x100)
    s.pte_clear(mm=MM, pfn=0x100, n=512)
    s.table_detach(mm=MM, pfn=0x100, cause="reclaim")
    s.table_free(pfn=0x100, path="direct")
    assert build_report(s.replay())["findings"] == []


def test_double_free_free_attached_free_nonempty(story):
    s = story
    populate(s)
    bad = s.table_free(pfn=0x100, path="direct")     # attached and 512 entries present
    again = s.table_free(pfn=0x100, path="direct")
    rep = build_report(s.replay())
    alloc = 2
    assert brief(rep["findings"]) == [
        ("free_attached", 1040, 0, "0x100", hex(MM), [alloc, bad]),
        ("free_nonempty", 1040, 0, "0x100", hex(MM), [alloc, bad]),
        ("double_free", 1050, 0, "0x100", hex(MM), [bad, again]),
    ]


def test_rcu_callback_before_its_grace_period(story):
    s = story
    populate(s)
    s.rcu_gp_start(gp=5)                              # started before the queue
    s.pte_clear(mm=MM, pfn=0x100, n=512)
    s.table_detach(mm=MM, pfn=0x100, cause="reclaim")
    q = s.rcu_queue(cb=9, func="tlb_remove_table_rcu", pfns=(0x100,))
    s.rcu_gp_end(gp=5)
    early = s.rcu_invoke(cb=9)
    s.table_free(pfn=0x100, path="rcu")
    rep = build_report(s.replay())
    assert brief(rep["findings"]) == [("rcu_early", 1090, 0, "0x100", None, [q, early])]


def test_rcu_callback_after_a_full_grace_period_is_fine(story):
    s = story
    populate(s)
    s.rcu_queue(cb=9, func="tlb_remove_table_rcu", pfns=())
    s.rcu_gp_start(gp=6)
    s.rcu_gp_end(gp=6)
    s.rcu_invoke(cb=9)
    assert build_report(s.replay())["findings"] == []


def test_unanswered_ipi_and_lost_events(story):
    s = story
    sent = s.ipi_send(targets=(1, 2), reason="tlb_shootdown", callsite="flush_tlb_mm_range")
    s.on(1, None).ipi_enter(reason="tlb_shootdown")
    s.ipi_exit(reason="tlb_shootdown")
    lost = s.on(3, None).lost(count=17)
    s.at(50_000_000).on(0).marker(text="much later")
    rep = build_report(s.replay())
    assert brief(rep["findings"]) == [
        ("ipi_unanswered", 1000, 2, None, None, [sent]),
        ("events_lost", 1030, 3, None, None, [lost]),
    ]
    assert rep["counts_trusted"] is False
    assert [c["ipis_pending"] for c in rep["cpus"]] == [0, 0, 1, 0]


def test_two_mms_are_reported_apart(story):
    s = story
    populate(s, pfn=0x100, mm=MM)
    s.on(1, 101).mm_new(mm=MM2, tgid=101, command="other")
    s.table_alloc(mm=MM2, level=PTE, pfn=0x300, addr=0x400000)
    rep = build_report(s.replay())
    assert [(m["mm"], m["pids"], m["comm"], m["vmpte_bytes"]) for m in rep["mms"]] == [
        (hex(MM), [100], "app", 8192), (hex(MM2), [101], "other", 4096)]
    assert rep["tables"] == tables(live=1, empty_attached=1)


def test_one_handler_answers_every_ipi_pending_on_its_cpu(story):
    """Call-function IPIs from several senders coalesce: the handler drains the queue."""
    s = story
    s.on(0).ipi_send(targets=(2,), reason="call_function", callsite="a")
    s.on(1).ipi_send(targets=(2,), reason="tlb_shootdown", callsite="b")
    s.on(2, None).ipi_enter(reason="call_function")
    s.ipi_exit(reason="call_function")
    s.at(50_000_000).on(0).marker(text="later")
    rep = build_report(s.replay())
    assert rep["findings"] == []
    assert [c["ipis_pending"] for c in rep["cpus"]] == [0, 0, 0, 0]


# -- leaked: emptied by one zap, taken by another ---------------------------------
def leaked_since(replay, pfn):
    return replay.log.record(replay.log.find(pfn, 0))["leaked_since"]


def test_a_table_a_dontneed_emptied_and_exit_took_sat_leaked(story):
    s = story
    s.mm_new(mm=MM, tgid=100, command="app")
    s.table_alloc(mm=MM, level=PTE, pfn=0x100, addr=0)
    s.pte_set(mm=MM, pfn=0x100, n=4)
    s.at(2000).zap_begin(mm=MM, start=0, end=0x200000, cause="dontneed")
    s.pte_clear(mm=MM, pfn=0x100, n=4)            # no PT_RECLAIM: it stays attached
    emptied = s.ts - 10
    s.zap_end(mm=MM, start=0, end=0x200000, cause="dontneed")
    s.at(9000).zap_begin(mm=MM, start=0, end=(1 << 64) - 1, cause="exit")
    s.table_detach(mm=MM, pfn=0x100, cause="exit")
    r = s.replay()
    assert leaked_since(r, 0x100) == emptied


def test_a_table_its_own_munmap_emptied_is_not_leaked_though_a_thread_zapped_meanwhile(story):
    # Threads zap one mm at once: thread 101's munmap empties and takes its table while
    # thread 102's MADV_DONTNEED runs elsewhere. The detach is the munmap's own: no leak.
    s = story
    s.mm_new(mm=MM, tgid=101, command="app")
    s.on(0, 101).table_alloc(mm=MM, level=PTE, pfn=0x100, addr=0)
    s.pte_set(mm=MM, pfn=0x100, n=4)
    s.at(2000).zap_begin(mm=MM, start=0, end=0x200000, cause="munmap")
    s.pte_clear(mm=MM, pfn=0x100, n=4)
    s.on(1, 102).zap_begin(mm=MM, start=0x40000000, end=0x40200000, cause="dontneed")
    s.on(0, 101).zap_end(mm=MM, start=0, end=0x200000, cause="munmap")
    s.table_detach(mm=MM, pfn=0x100, cause="munmap")   # free_pgtables, after the zap
    s.on(1, 102).zap_end(mm=MM, start=0x40000000, end=0x40200000, cause="dontneed")
    r = s.replay()
    assert leaked_since(r, 0x100) is None


def test_without_zaps_a_leak_cannot_be_told(story):
    s = story
    s.mm_new(mm=MM, tgid=100, command="app")
    s.table_alloc(mm=MM, level=PTE, pfn=0x100, addr=0)
    s.table_detach(mm=MM, pfn=0x100, cause="munmap")
    assert leaked_since(s.replay(), 0x100) is None
