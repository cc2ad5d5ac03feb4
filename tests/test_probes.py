"""Probe-rich traces (fprobe/kprobe hits on the page-table functions) and the other
explicit sources: rcu:* and csd:* events."""

import io

import pytest
from hypothesis import given, strategies as st

from ptviz.ftrace.importer import import_lines
from ptviz.ftrace.probes import PagePointers, definitions, parse_hit
from ptviz.ftrace.textparse import field, fields
from replayer.replay import Replay
from replayer.report import build_report


def test_definitions_are_the_kernel_syntax():
    fp, kp = definitions("fprobe"), definitions("kprobe")
    assert "f:ptviz/pte_free_tlb ___pte_free_tlb tlb=$arg1 pte=$arg2" in fp
    assert "f:ptviz/call_rcu call_rcu head=$arg1 func=$arg2:symbol" in fp
    assert "f:ptviz/pte_alloc_one pte_alloc_one%return ret=$retval" in fp
    assert "p:ptviz/tlb_remove_table tlb_remove_table tlb=%di table=%si" in kp
    assert "r:ptviz/pte_alloc_one pte_alloc_one ret=$retval" in kp
    assert definitions("fprobe", "g")[0].startswith("f:g/pte_free_tlb ")


@pytest.mark.parametrize("name, payload, want", [
    # tracefs, our own event names (7.3.4 under QEMU)
    ("pte_free_tlb", "(___pte_free_tlb+0x4/0x40) tlb=0xff7726d2c0487dc8 pte=0xffdaff12c012f300",
     ("pte_free_tlb", {"tlb": "0xff7726d2c0487dc8", "pte": "0xffdaff12c012f300"})),
    ("pte_alloc_one", "(__pte_alloc+0x27/0xd0 <- pte_alloc_one) ret=0xffdaff12c012f300",
     ("pte_alloc_one", {"ret": "0xffdaff12c012f300"})),
    # somebody else's names: found by the probed symbol
    ("myprobe", "(tlb_remove_table_rcu+0x4/0xa0) head=0xff1fc892c4bb8000",
     ("tlb_remove_table_rcu", {"head": "0xff1fc892c4bb8000"})),
    # trace-cmd report prints the raw IP: found by the auto-generated event names
    ("p____pte_free_tlb_0", "(ffffffff8123abc4) tlb=0x1 pte=0x2",
     ("pte_free_tlb", {"tlb": "0x1", "pte": "0x2"})),
    ("tlb_remove_table__entry", "(ffffffff8123abc4) tlb=0x1 table=0x2",
     ("tlb_remove_table", {"tlb": "0x1", "table": "0x2"})),
    # not a probe this module maps
    ("sys_mmap", "(addr: 0x0, len: 0x1000)", None),
    ("other", "(vfs_read+0x4/0x40) file=0x1", None),
])
def test_parse_hit(name, payload, want):
    assert parse_hit(name, payload) == want


def test_page_pointers_learn_the_vmemmap():
    pages = PagePointers()
    pages.learn("ffdaff12c012f240", 0x4BC9)
    assert pages.pfn("0xffdaff12c012f240") is None          # one pair fixes nothing
    pages.learn("ffdaff12c012f300", 0x4BCC)
    assert (pages.base, pages.stride, pages.state) == (0xFFDAFF12C0000000, 64, "learnt")
    assert pages.pfn("0xffdaff12c043b180") == 0x10EC6
    assert pages.pfn("0xffdaff12c043b188") == 0x10EC6       # an rcu_head inside the page
    assert pages.pfn("0x1") is None


def test_page_pointers_hashed_or_inconsistent():
    hashed = PagePointers()
    hashed.learn("00000000b2d6dee8", 5)
    hashed.learn("000000008f162ca8", 9)
    assert hashed.state == "hashed" and hashed.pfn("0xffdaff12c012f300") is None
    odd = PagePointers()
    odd.learn("ffdaff12c012f240", 0x4BC9)
    odd.learn("ffdaff12c012f300", 0x4BCC)
    odd.learn("ffdaff12c0aaaa00", 0x4BCD)                     # not base + pfn * 64
    assert odd.state == "inconsistent" and odd.pfn("0xffdaff12c012f300") is None


# Real lines from the 7.3.4 QEMU capture (traces/qemu/capture.sh 7.3), trimmed to one PTE
# table: allocated at a fault (pte_alloc_one returns it), reclaimed during MADV_DONTNEED
# (___pte_free_tlb, then tlb_remove_table into the batch), the batch queued with call_rcu,
# the callback run in softirq 21 ms later, the page freed.
PROBE_STORY = """\
 vmpte_steps-104     (    104) [000] ...1.     4.998201: tracing_mark_write: VmPTE: 36 kB start
 vmpte_steps-104     (    104) [000] .....     4.998493: mm_page_alloc: page=ffdaff12c012f240 pfn=0x4bc9 order=0 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC
 vmpte_steps-104     (    104) [000] .....     4.998515: mm_page_alloc: page=ffdaff12c012f280 pfn=0x4bca order=0 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC
 vmpte_steps-104     (    104) [000] d....     4.999234: page_fault_user: address=0x7fe27d200000 ip=0x4015e0 error_code=0x6
 vmpte_steps-104     (    104) [000] .....     4.999287: mm_page_alloc: page=ffdaff12c012f2c0 pfn=0x4bcb order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 vmpte_steps-104     (    104) [000] .....     4.999312: mm_page_alloc: page=ffdaff12c012f300 pfn=0x4bcc order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 vmpte_steps-104     (    104) [000] ...1.     4.999322: pte_alloc_one: (__pte_alloc+0x27/0xd0 <- pte_alloc_one) ret=0xffdaff12c012f300
 vmpte_steps-104     (    104) [000] .....     5.000396: mm_page_alloc: page=ffdaff12c043b180 pfn=0x10ec6 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP
 vmpte_steps-104     (    104) [000] .....     5.426224: sys_madvise(start: 0x7fe27d200000, len_in: 0x2000000, behavior: 4)
 vmpte_steps-104     (    104) [000] ...1.     5.431943: pte_free_tlb: (___pte_free_tlb+0x4/0x40) tlb=0xff7726d2c0487dc8 pte=0xffdaff12c012f300
 vmpte_steps-104     (    104) [000] ...1.     5.431957: tlb_remove_table: (tlb_remove_table+0x4/0x230) tlb=0xff7726d2c0487dc8 table=0xffdaff12c012f300
 vmpte_steps-104     (    104) [000] ...1.     5.434774: call_rcu: (call_rcu+0x4/0x20) head=0xff1fc892c4bb8000 func=tlb_remove_table_rcu+0x0/0xa0
 vmpte_steps-104     (    104) [000] .....     5.450965: sys_madvise -> 0x0
 vmpte_steps-104     (    104) [000] ...1.     5.451754: tracing_mark_write: VmPTE: 104 kB dontneed
 <idle>-0       (-------) [000] ..s2.     5.455697: tlb_remove_table_rcu: (tlb_remove_table_rcu+0x4/0xa0) head=0xff1fc892c4bb8000
 <idle>-0       (-------) [000] ..s1.     5.455728: mm_page_free: page=ffdaff12c012f300 pfn=0x4bcc order=0
"""
PTE, PMD, CB = 0x4BCC, 0x4BCB, 0xFF1FC892C4BB8000


def _replay(tmp_path, text, header=None):
    out = tmp_path / "p.msgpack"
    stats = import_lines(io.StringIO(text), out, header or {}, "story.txt", force=True)
    return stats, Replay.load(out)


def test_probes_show_each_reclaim_step(tmp_path):
    stats, r = _replay(tmp_path, PROBE_STORY)
    assert stats["probe_hits"] == 5 and stats["probe_unmapped"] == 0
    steps = {h["step"]: h for h in r.table_history(PTE)}
    assert steps["detach"]["ts"] == 5_431_943_000 and steps["detach"]["detail"] == "reclaim"
    assert steps["queue"]["ts"] == 5_431_957_000
    assert steps["free"]["ts"] == 5_455_728_000 and steps["free"]["detail"] == "rcu"
    seen = {e.kind: e.fields for _, e in r.events(pfn=PTE) if e.kind != "pte_set"}
    assert seen["table_alloc"]["inferred"] is False          # pte_alloc_one returned it
    assert seen["table_detach"]["inferred"] is False
    assert seen["table_queue"] == {"pfn": PTE, "via": "batch", "inferred": False}
    rcu = [(e.kind, e.ts, e.fields) for _, e in r.events(kinds={"rcu_queue", "rcu_invoke"})]
    assert rcu == [("rcu_queue", 5_434_774_000,
                    {"cb": CB, "func": "tlb_remove_table_rcu", "pfns": (PTE,)}),
                   ("rcu_invoke", 5_455_697_000, {"cb": CB})]
    # The PMD table above it was not named by any probe: still inferred.
    pmd = next(e for _, e in r.events(pfn=PMD, kinds={"table_alloc"}))
    assert pmd.fields["level"] == 2 and pmd.fields["inferred"] is True


def test_hashed_pointers_fall_back_to_inference(tmp_path):
    hashed = PROBE_STORY
    for i, ptr in enumerate(("ffdaff12c012f240", "ffdaff12c012f280", "ffdaff12c012f2c0",
                             "ffdaff12c012f300", "ffdaff12c043b180")):
        hashed = hashed.replace(f"page={ptr}", f"page=00000000{i:08x}")
    stats, r = _replay(tmp_path, hashed, {"kernel": {"pt_reclaim": True}})
    assert stats["probe_unmapped"] == 3       # pte_alloc_one, pte_free_tlb, tlb_remove_table
    steps = {h["step"]: h for h in r.table_history(PTE)}
    assert steps["detach"]["ts"] == 5_426_224_001          # at the MADV_DONTNEED, inferred
    assert "queue" not in steps
    detach = next(e for _, e in r.events(pfn=PTE, kinds={"table_detach"}))
    assert detach.fields["inferred"] is True


def test_trace_cmd_report_of_probes(tmp_path):
    """trace-cmd prints the raw probe IP and no TGID column; names find the probes."""
    text = PROBE_STORY.replace("(___pte_free_tlb+0x4/0x40)", "(ffffffff8123abc4)")
    text = text.replace("(tlb_remove_table+0x4/0x230)", "(ffffffff8123ac00)")
    _, r = _replay(tmp_path, text)
    steps = {h["step"]: h for h in r.table_history(PTE)}
    assert steps["detach"]["ts"] == 5_431_943_000 and steps["queue"]["ts"] == 5_431_957_000


# rcu:* exist only with CONFIG_RCU_TRACE (none of the kernels here): lines in the format
# of docs/kernel-facts.md §5.2. The grace period's start and end carry the same number.
RCU_STORY = PROBE_STORY.replace(
    " vmpte_steps-104     (    104) [000] .....     5.450965: sys_madvise -> 0x0\n",
    " vmpte_steps-104     (    104) [000] .....     5.450965: sys_madvise -> 0x0\n"
    " rcu_preempt-16     (     16) [001] d..1.     5.451000: rcu_grace_period: rcu_preempt 4321 start\n"
    " rcu_preempt-16     (     16) [001] d..1.     5.455000: rcu_grace_period: rcu_preempt 4321 end\n"
    " <idle>-0       (-------) [000] ..s2.     5.455690: rcu_invoke_callback: rcu_preempt rhp=ff1fc892c4bb8000 func=tlb_remove_table_rcu\n"
    " <idle>-0       (-------) [000] ..s2.     5.455691: rcu_invoke_callback: rcu_preempt rhp=ff1fc892c4bb9000 func=wakeme_after_rcu\n"
).replace(
    "func=tlb_remove_table_rcu+0x0/0xa0\n",
    "func=tlb_remove_table_rcu+0x0/0xa0\n"
    " vmpte_steps-104     (    104) [000] d..1.     5.434775: rcu_callback: rcu_preempt rhp=ff1fc892c4bb8000 func=tlb_remove_table_rcu 3\n")


def test_rcu_events_give_grace_periods_and_callbacks(tmp_path):
    _, r = _replay(tmp_path, RCU_STORY)
    kinds = [(e.kind, e.ts) for _, e in r.events(kinds={"rcu_queue", "rcu_invoke",
                                                         "rcu_gp_start", "rcu_gp_end"})]
    # One queue and one invoke: the probe and the tracepoint name the same callback.
    assert kinds == [("rcu_queue", 5_434_774_000), ("rcu_gp_start", 5_451_000_000),
                     ("rcu_gp_end", 5_455_000_000), ("rcu_invoke", 5_455_690_000)]
    assert [e.fields["name"] for _, e in r.events(kinds={"raw"})
            if e.fields["name"] == "rcu_invoke_callback"] == ["rcu_invoke_callback"]
    assert r.has_gp_events


def test_rcu_events_without_probes(tmp_path):
    text = "".join(line + "\n" for line in RCU_STORY.splitlines()
                   if "call_rcu:" not in line and "tlb_remove_table_rcu: (" not in line)
    _, r = _replay(tmp_path, text)
    cbs = [(e.kind, e.fields) for _, e in r.events(kinds={"rcu_queue", "rcu_invoke"})]
    assert cbs == [("rcu_queue", {"cb": CB, "func": "tlb_remove_table_rcu", "pfns": ()}),
                   ("rcu_invoke", {"cb": CB})]


# csd_queue_cpu names the function an IPI runs; ipi_send_* only names the generic handler.
CSD_STORY = """\
 vmpte_steps-104 (104) [000] d.h1. 5.431242: csd_queue_cpu: cpu=1 callsite=generic_exec_single+0x35/0x130 func=nohz_csd_func csd=ff1fc892feb32620
 vmpte_steps-104 (104) [000] d.h1. 5.431253: ipi_send_cpu: cpu=1 callsite=generic_exec_single+0x35/0x130 callback=generic_smp_call_function_single_interrupt+0x0/0x20
 vmpte_steps-104 (104) [000] d..1. 5.431300: csd_queue_cpu: cpu=1 callsite=smp_call_function_many_cond+0x1a2/0x5d0 func=flush_tlb_func csd=ff1fc892feb32640
 vmpte_steps-104 (104) [000] d..1. 5.431301: ipi_send_cpu: cpu=1 callsite=smp_call_function_many_cond+0x1a2/0x5d0 callback=generic_smp_call_function_single_interrupt+0x0/0x20
 vmpte_steps-104 (104) [000] d..1. 5.431400: csd_queue_cpu: cpu=1 callsite=smp_call_function_many_cond+0x1a2/0x5d0 func=tlb_remove_table_smp_sync csd=ff1fc892feb32660
 vmpte_steps-104 (104) [000] d..1. 5.431401: ipi_send_cpumask: cpumask=2 callsite=smp_call_function_many_cond+0x1a2/0x5d0 callback=generic_smp_call_function_single_interrupt+0x0/0x20
 vmpte_steps-104 (104) [000] d..1. 5.431500: ipi_send_cpu: cpu=1 callsite=generic_exec_single+0x35/0x130 callback=generic_smp_call_function_single_interrupt+0x0/0x20
"""


def test_csd_names_the_ipi_reason(tmp_path):
    _, r = _replay(tmp_path, CSD_STORY)
    sends = [(e.fields["targets"], e.fields["reason"], e.fields["callsite"])
             for _, e in r.events(kinds={"ipi_send"})]
    assert sends == [((1,), "call_function", "nohz_csd_func"),
                     ((1,), "tlb_shootdown", "flush_tlb_func"),
                     ((1,), "table_sync", "tlb_remove_table_smp_sync"),
                     # no csd_queue_cpu before it: only the callsite is known
                     ((1,), "call_function", "generic_exec_single+0x35/0x130")]


def test_the_report_says_what_was_seen_and_what_inferred(tmp_path):
    _, r = _replay(tmp_path, PROBE_STORY)
    rep = build_report(r)
    assert rep["provenance"] == {"table_alloc": {"seen": 1, "inferred": 1},   # PTE / PMD
                                 "table_detach": {"seen": 1, "inferred": 0},
                                 "table_queue": {"seen": 1, "inferred": 0},
                                 "table_free": {"seen": 1, "inferred": 0}}
    assert len(rep["inference_notes"]) == 1 and "1 table allocations" in \
        rep["inference_notes"][0]
    hashed = PROBE_STORY.replace("page=ffdaff12c012f", "page=00000000a012f")
    _, r = _replay(tmp_path, hashed)             # PT_RECLAIM of the kernel not given
    notes = build_report(r)["inference_notes"]
    assert any("1 detaches were inferred" in n for n in notes)
    assert any("CONFIG_PT_RECLAIM is unknown" in n for n in notes)
    assert any("batch or single path) was not seen" in n for n in notes)

_TOKEN = st.text(st.sampled_from("abcdefx0123456789_|"), min_size=1, max_size=12)


@given(st.dictionaries(st.sampled_from(["pfn", "page", "order", "gfp_flags", "address",
                                        "xpfn", "pfn_x"]), _TOKEN, min_size=1))
def test_one_field_lookup_agrees_with_the_full_parse(pairs):
    payload = " ".join(f"{k}={v}" for k, v in pairs.items())
    for key in ("pfn", "page", "order", "gfp_flags", "address"):
        assert field(payload, key + "=") == fields(payload).get(key)


def test_record_appends_probes_and_removes_only_its_own(tmp_path):
    """dynamic_events is global: ptviz appends (never truncates anyone's probes) in a
    group of its own, and removes exactly what it defined."""
    from ptviz.ftrace.record import install_probes, remove_probes
    events = tmp_path / "dynamic_events"
    events.write_text("p:theirs/keep do_sys_open\n")
    done, style = install_probes(str(tmp_path), "ptviz_42")
    assert style == "fprobe" and done[:2] == ["pte_free_tlb", "tlb_remove_table"]
    lines = events.read_text().splitlines()
    assert lines[0] == "p:theirs/keep do_sys_open"
    assert lines[1:] == definitions("fprobe", "ptviz_42")
    remove_probes(str(tmp_path), "ptviz_42", done)
    assert events.read_text().splitlines()[-len(done):] == [f"-:ptviz_42/{e}" for e in done]
    assert install_probes(str(tmp_path / "absent"), "g") == ([], None)
