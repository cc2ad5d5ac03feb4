"""ftrace text import against hostile or damaged input (SPEC §11): bounded lines, linear
patterns, numbers range-checked where they enter, losses placed where they happened;
and a fuzz test of the whole `ptviz convert` on mutated lines. trace-cmd: test_tracecmd.py."""

import contextlib
import io
import multiprocessing
import os
import re
import tempfile
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ptviz.cli import main
from ptviz.ftrace.importer import import_file, import_lines
from ptviz.ftrace.infer_context import cpumask
from ptviz.ftrace.probes import PagePointers
from ptviz.ftrace.textparse import (LINE_LIMIT, Loss, ParseStats, bounded_lines, checked,
                                    number, parse_lines)
from replayer.errors import BadInput
from replayer.replay import Replay
from replayer.report import build_report
from tests.test_ftrace import STORY
from tests.test_probes import CSD_STORY, PROBE_STORY, RCU_STORY

# Real lines of every layout and of events the stories below lack (test_ftrace.py,
# test_probes.py, shared/reference/ftrace-format-variants.md); the stories are added whole.
LAYOUTS = """\
# tracer: nop
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
cpus=2
    stress-ng-2864907 [012] d... 17006.430111: tlb_flush: pages:-1 reason:flush on task switch (0)
     sshd-session-1082    [004] d..4.  5041.239906: switch: (sched.sched_switch) prev=1
   <...>-19161 (-----) [001] ...1 683202.104223: sched_wakeup: comm=a pid=1
           sleep-89142 [001] 162573.215777: sys_exit_write:       0x1
  ptviz:           work-17973 [000]  1119.680634: print:                tracing_mark_write: hello
       tmux: server-1613  [000] .... 12.500000: sched_waking: comm=x
     Binder:2030_3-2053  [000] .... 12.5: sys_dup2(oldfd: a, newfd: 1)
  <idle>-0       0d.h2.    5us!: hrtimer_expire_entry: hrtimer=0
trace-cm-86689   3d.... 11370.816169: sched_switch: prev_comm=a
 [000] 154.892148: ipi_raise: target_mask=00000000,00000002 (Function call interrupts)
           bash-1998  [000] ....   140.733504: mutex_unlock <-tty_write
 3)   0.081 us    |  func();
 3) + 10.182 us   |  }
 ------------------------------------------
 => __do_sys_madvise
CPU:1 [LOST 11745 EVENTS]
CPU:0 [17 EVENTS DROPPED]
##### CPU 3 buffer started ####
 a-1 (1) [001] ..... 4263.777390: sys_enter_munmap: addr: 0x7f8539e00000, len: 0x200000
 a-1 (1) [001] ..... 4263.777391: sys_enter_madvise: start: 0x7f8539e00000, len_in: 0x200000, behavior: 0x4
 a-1 (1) [000] ...1. 5.4: p____pte_free_tlb_0: (ffffffff8123abc4) tlb=0x1 pte=0x2
 a-1 (1) [000] ...1. 5.5: flush_tlb_mm_range: (flush_tlb_mm_range+0x4/0x40) mm=0x1 start=0x7f8539e00000 end=0x7f853a000000 stride_shift=0xc freed_tables=0x1
 rcu_preempt-16 (16) [001] d..1. 5.455000: rcu_grace_period: rcu_preempt -1200 end
 a-1 (1) [001] d.h.. 5.431402: call_function_entry: vector=251
 a-1 (1) [000] ..... 5.5: sched_process_fork: comm=a pid=104 child_comm=a child_pid=105
 a-1 (1) [000] ..... 5.6: sys_exit_group(error_code: 0)
 a-1 (1) [000] ..... 5.7: sched_process_exit: comm=a pid=104 prio=120
"""
STORIES = [story.splitlines() for story in (STORY, PROBE_STORY, RCU_STORY, CSD_STORY)]
REAL = LAYOUTS.splitlines() + [line for story in STORIES for line in story]
LINE = "           a-1 [000] 1.000000: kfree: ptr=0"
HOSTILE_NUMBERS = ["0", "-1", "65535", "65536", str(2**32 - 1), str(2**32), str(2**63 - 2),
                   str(2**63 - 1), str(2**63), str(2**64 - 1), str(2**64), "9" * 40,
                   "9" * 5000, "0x" + "f" * 17, "-" + "9" * 30, "00000000000000000000007"]


# -- 1. bounded lines ------------------------------------------------------------------
def test_bounded_lines_cut_an_over_long_line_to_one_bad_line():
    text = "# ok\n" + "x" * 25 + "\n" + "y" * 9 + "\n" + "c\r\n" + "z" * 30
    got = list(bounded_lines(io.StringIO(text, newline=""), limit=10))
    assert got == ["# ok\n", "\0\n" + "x" * 10, "y" * 9 + "\n", "c\r\n", "\0\n" + "z" * 10]
    stats = ParseStats()
    assert list(parse_lines(got, stats)) == [] and stats.headers == 1
    assert stats.bad == [(2, "x" * 10), (3, "y" * 9), (4, "c"), (5, "z" * 10)]


class _HugeLine(io.TextIOBase):
    """Text whose second line has ``pieces`` × LINE_LIMIT characters, made as it is read."""

    def __init__(self, pieces):
        self.parts = iter(["a-1 [000] ..... 1.0: kfree: ptr=0\n"] + ["q" * LINE_LIMIT] * pieces
                          + ["\n", "a-1 [000] ..... 1.1: kfree: ptr=1\n", "junk\n"])

    def readline(self, limit=-1):
        assert limit == LINE_LIMIT, "a read without the bound"
        return next(self.parts, "")


def test_an_over_long_line_is_one_bad_line_read_in_bounded_memory():
    tracemalloc.start()
    try:
        stats = ParseStats()
        out = list(parse_lines(bounded_lines(_HugeLine(40)), stats))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.lineno for r in out] == [1, 3]
    assert stats.bad == [(2, "q" * 120), (4, "junk")] and stats.lines == 4
    assert peak < 4 * LINE_LIMIT           # not the 40 MiB line


def test_over_long_line_in_a_file(tmp_path):
    src = tmp_path / "t.txt"
    with open(src, "w") as f:
        f.write("           a-1 [000] ..... 1.000000: kfree: ptr=0\n")
        f.write("           a-1 [000] ..... 1.000050: kfree: ptr=" + "7" * (3 * LINE_LIMIT)
                + "\n")
        f.write("           a-1 [000] ..... 1.000100: kfree: ptr=1\nnot ftrace\n")
    stats = import_file(str(src), tmp_path / "t.msgpack")
    assert stats["events_read"] == 2 and stats["bad_lines"] == 2
    assert [n for n, _ in stats["first_bad"]] == [2, 4]
    assert stats["first_bad"][0][1].startswith("           a-1 [000] ..... 1.000050: kfree")
    assert len(stats["first_bad"][0][1]) == 120


# -- 2. linear patterns ----------------------------------------------------------------
# Each input is imported whole (every pattern of the parser and of the handlers that
# its event name reaches) in a forked child, so a regression fails instead of hanging.
N = 1_000_000
E = "a-1 (1) [000] .... 1.0: "          # an event line, for the payload patterns
PATHOLOGICAL = {                        # name: (head, unit, times, tail)
    "graph-spaces": ("0)", " ", 200_000, ""),
    "graph-digits": (" 3) ", "1", N, ""),
    "graph-dur-spaces": (" 3) 1", " ", N, ""),
    "20M-spaces": ("", " ", 20_000_000, ""),
    "comm-then-spaces": ("a-1 ", " ", N, ""),
    "task-cpu-repeated": ("", "x-1 [0] ", N // 8, ""),
    "dashes": ("", "-", N, ""),
    "dash-digits": ("a-1 ", "1", N, ""),
    "colon-then-spaces": ("a-1 [000] .... 1.0:", " ", N, ""),
    "tgid-dashes": ("a-1 (", "-", N, ""),
    "latency-us-spaces": ("  <idle>-0       0d.h2.    5us", " ", N, ""),
    "latency-abs-spaces": ("trace-cm-86689   3d.... 11370.816169", " ", N, ""),
    "latency-mark-spaces": ("  <idle>-0       0d.h2.    5us!", " ", N, ":"),
    "notask-spaces": (" [000] 154.892148:", " ", N, ""),
    "lost-digits": ("CPU:", "1", N, ""),
    "lost-spaces": ("CPU:1", " ", N, ""),
    "tabs-continuation": ("", "\t", N, "="),
    "embedded-newlines": ("", "a-1 [000] .... 1.0: x: y\n", N // 25, ""),
    "fields-run": (E + "sched_process_fork: ", "a", N, ""),
    "fields-dots": (E + "sys_madvise(", "a.", N // 2, ""),
    "probe-args-run": (E + "call_rcu: (call_rcu+0x4/0x20) ", "h", N, ""),
    "probe-site-open": (E + "pte_free_tlb: (", "(", N, ""),
    "probe-auto-name": (E + "p_", "a_1", N // 3, ": (x)"),
    "rcu-flavour": (E + "rcu_callback: ", "r", N, ""),
    "gp-digits": (E + "rcu_grace_period: r ", "1", N, ""),
    "tlb-flush-parens": (E + "tlb_flush: pages:1 reason:", " (1", N // 3, ""),
    "cpumask-huge": (E + "ipi_send_cpumask: cpumask=", "f", N, " callsite=generic_smp_call"),
    "fault-address-digits": (E + "page_fault_user: address=", "1", N, ""),
}


def _import_one(name):
    head, unit, times, tail = PATHOLOGICAL[name]
    line = head + unit * times + tail
    with tempfile.TemporaryDirectory() as tmp:
        try:
            import_lines([line], os.path.join(tmp, "o.msgpack"), {}, "x.txt")
        except BadInput:
            pass


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_line_is_parsed_in_linear_time(name):
    child = multiprocessing.get_context("fork").Process(target=_import_one, args=(name,))
    child.start()
    child.join(30)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"{name}: still parsing after 30 s (a pattern backtracks)")
    assert child.exitcode == 0


# -- 3. numbers range-checked where they enter ------------------------------------------
def _one(line):
    stats = ParseStats()
    out = list(parse_lines([line], stats))
    return (out[0] if out else None), stats.bad_count


@pytest.mark.parametrize("line, ok", [
    ("a-1 [000] .... 9223372036.854775.: x: y", False),
    ("a-1 [000] .... 9223372036.854775: x: y", True),
    ("a-1 [000] .... 9223372036.854776: x: y", False),
    ("a-1 [000] .... 9223372036.854775806: x: y", True),
    ("a-1 [000] .... 9223372036.854775807: x: y", False),     # the 1 ns the inference needs
    ("a-1 [000] .... " + "9" * 5000 + ".000000: x: y", False),
    ("a-1 [65535] .... 1.0: x: y", True),
    ("a-1 [65536] .... 1.0: x: y", False),
    ("a-4294967295 [000] .... 1.0: x: y", True),
    ("a-4294967296 [000] .... 1.0: x: y", False),
    ("a-1 (4294967296) [000] .... 1.0: x: y", False),
    ("a-1 (" + "9" * 5000 + ") [000] .... 1.0: x: y", False),
    ("  <idle>-0       65536d.h2.    5us!: x: y", False),
    ("  <idle>-0       0d.h2.    9223372036854775us!: x: y", True),
    ("  <idle>-0       0d.h2.    9223372036854776us!: x: y", False),
    (" [65536] 154.892148: ipi_raise: x", False),
    (" 65536)   0.081 us    |  func();", False),
    ("CPU:65536 [LOST 1 EVENTS]", False),
    ("CPU:1 [LOST " + "9" * 5000 + " EVENTS]", True),
])
def test_numbers_out_of_range_make_a_bad_line(line, ok):
    rec, bad = _one(line)
    assert (rec is not None, bad) == ((True, 0) if ok else (False, 1))


def test_loss_counts_that_do_not_fit_are_unknown():
    assert _one("CPU:1 [LOST 4294967295 EVENTS]")[0] == Loss(1, 1, 2**32 - 1)
    assert _one("CPU:1 [LOST 4294967296 EVENTS]")[0] == Loss(1, 1, None)


def test_number_helpers():
    assert number("0123") == 123                       # was int("0123", 0): ValueError
    assert number("0x" + "f" * 16) == 2**64 - 1 and number("0x1" + "0" * 16) is None
    assert number("9" * 5000) is None and number("1f", True) == 31
    assert number("0xffff", hi=0x1000) is None
    assert checked("-1") is None and checked("-1", lo=-5) == -1 and checked("zz", 16) is None
    assert checked("1" * 65) is None and checked(None) is None
    assert cpumask("00000000,00000006") == (1, 2) and cpumask("1,00000000") == (32,)
    assert cpumask("8" + "0" * 16383) == (65535,) and cpumask("1" + "0" * 16384) is None
    assert cpumask("zz") is None and cpumask("") is None and cpumask("0") == ()
    pages = PagePointers()
    pages.learn("1" * 100, 5)
    pages.learn("f" * 17, 5)
    assert pages.state == "unknown"


def _convert(tmp_path, lines, name="t"):
    src = tmp_path / f"{name}.txt"
    src.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / f"{name}.msgpack"
    stats = import_file(str(src), out)
    replay = Replay.load(out)
    build_report(replay)
    return stats, replay


def _kinds(replay, *kinds):
    return [(e.kind, e.fields) for _, e in replay.events(kinds=set(kinds))]


T = " a-1 (1) [000] d.... "
FAULT = T + "1.000000: page_fault_user: address={addr} ip=0x1 error_code=0x6"
TABLE = T + ("1.000001: mm_page_alloc: page=0 pfn={pfn} order=0 migratetype=0 "
             "gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP")
DATA = T + ("1.000002: mm_page_alloc: page=0 pfn=0x5 order=0 migratetype=1 "
            "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP")


@pytest.mark.parametrize("addr, pfn, tables", [
    ("0x7f8539e00000", "0x104fdc", 1),
    ("0xffffffffff600000", "0x104fdc", 0),          # not a user address: no user table
    ("0x" + "f" * 17, "0x104fdc", 0),
    ("0x7f8539e00000", "0x8000000000000000", 0),    # a pfn past int64
    ("0x7f8539e00000", "0x" + "1" * 40, 0),
])
def test_fault_and_pfn_ranges(tmp_path, addr, pfn, tables):
    stats, replay = _convert(tmp_path, [FAULT.format(addr=addr), TABLE.format(pfn=pfn), DATA])
    assert stats["tables"] == tables and stats["bad_lines"] == 0


@pytest.mark.parametrize("payload, kind, want", [
    ("tlb_flush: pages:-1 reason:local MM shootdown (3)", "tlb_flush", -1),   # a full flush
    ("tlb_flush: pages:9223372036854775807 reason:x (3)", "tlb_flush", 2**63 - 1),
    ("tlb_flush: pages:9223372036854775808 reason:x (3)", "raw", None),
    ("tlb_flush: pages:-9223372036854775809 reason:x (3)", "raw", None),
    ("rcu_grace_period: rcu_preempt -1200 start", "rcu_gp_start", 2**64 - 1200),
    ("rcu_grace_period: rcu_preempt 9223372036854775808 end", "raw", None),
    ("rcu_callback: rcu_preempt rhp=1x2 func=tlb_remove_table_rcu 3", "raw", None),
    ("rcu_callback: rcu_preempt rhp=" + "f" * 17 + " func=tlb_remove_table_rcu 3", "raw", None),
    ("rcu_callback: rcu_preempt rhp=ffff func=tlb_remove_table_rcu 3", "rcu_queue", 0xFFFF),
    ("call_rcu: (call_rcu+0x4/0x20) head=zz func=tlb_remove_table_rcu+0x0/0xa0", "raw", None),
    ("call_rcu: (call_rcu+0x4/0x20) head=0x1" + "0" * 16 + " func=tlb_remove_table_rcu",
     "raw", None),
    ("tlb_remove_table_rcu: (tlb_remove_table_rcu+0x4/0xa0) head=-0x5", "raw", None),
    ("ipi_send_cpu: cpu=65536 callsite=generic_smp_call_function_single_interrupt", "ipi_send",
     ()),
    ("ipi_send_cpumask: cpumask=1" + "0" * 16384 + " callsite=generic_smp_call_function",
     "ipi_send", ()),
    ("ipi_send_cpumask: cpumask=00000001,00000002 callsite=generic_smp_call_function",
     "ipi_send", (1, 32)),
    ("sys_madvise(start: ffffffffffff0000, len_in: 20000, behavior: 4)", "raw", None),
    ("sys_enter_munmap: addr: 0x" + "1" * 17 + ", len: 0x1000", "raw", None),
    ("sched_process_fork: comm=a pid=1 child_comm=a child_pid=" + "9" * 30, "raw", None),
])
def test_payload_numbers_out_of_range_are_not_parsed(tmp_path, payload, kind, want):
    stats, replay = _convert(tmp_path, [T + "2.000000: " + payload])
    events = _kinds(replay, "tlb_flush", "rcu_gp_start", "rcu_queue", "raw", "ipi_send",
                    "zap_begin")
    assert stats["bad_lines"] == 0 and events[-1][0] == kind
    if kind != "raw":
        value = next(iter(v for k, v in events[-1][1].items()
                          if k in ("pages", "gp", "cb", "targets")))
        assert value == want


def test_probe_flush_range_out_of_range_stays_raw(tmp_path):
    stats, replay = _convert(tmp_path, [
        T + "1.0: flush_tlb_mm_range: (flush_tlb_mm_range+0x4/0x40) mm=0x1 start=0x1"
            + "0" * 16 + " end=0x2 stride_shift=0xc freed_tables=0x1",
        T + "1.1: tlb_flush: pages:1 reason:local MM shootdown (3)"])
    assert stats["probe_unmapped"] == 1
    flush = _kinds(replay, "tlb_flush")[0][1]
    assert flush["start"] is None and flush["pages"] == 1


def test_lines_without_a_task_do_not_break_the_inference(tmp_path):
    stats, replay = _convert(tmp_path, [
        " [000] 1.000000: tracing_mark_write: hi",
        " [000] 1.000001: page_fault_user: address=0x7f0000000000 ip=0x1 error_code=0x6",
        " [000] 1.000002: sys_enter_madvise: start: 0x7f0000000000, len_in: 0x200000, "
        "behavior: 0x4",
        " [000] 1.000003: sys_enter_munmap: addr: 0x7f0000000000, len: 0x1000"])
    assert stats["events_read"] == 4 and _kinds(replay, "marker")[0][1] == {"text": "hi"}


# -- 5. where a loss lands -----------------------------------------------------------
def test_a_loss_is_placed_at_the_next_record_of_its_cpu(tmp_path):
    stats, replay = _convert(tmp_path, [
        "CPU:2 [LOST 7 EVENTS]",                                  # record_text's, at the top
        "           a-1 [000] ..... 1.000000: kfree: ptr=0",
        "CPU:1 [LOST 5 EVENTS]",
        "           a-1 [000] ..... 2.000000: kfree: ptr=0",
        "CPU:1 [3 EVENTS DROPPED]",
        "           b-2 [001] ..... 3.000000: kfree: ptr=0",
        "           c-3 [002] ..... 4.000000: kfree: ptr=0",
        "CPU:3 [LOST 4294967296 EVENTS]",                          # no later record on CPU 3
        "           b-2 [001] ..... 5.000000: kfree: ptr=0"])
    events = [(e.kind, e.ts, e.cpu, e.fields.get("count")) for _, e in replay.events()]
    assert events == [("raw", 1_000_000_000, 0, None), ("raw", 2_000_000_000, 0, None),
                      ("lost", 3_000_000_000, 1, 8), ("raw", 3_000_000_000, 1, None),
                      ("lost", 4_000_000_000, 2, 7), ("raw", 4_000_000_000, 2, None),
                      ("raw", 5_000_000_000, 1, None), ("lost", 5_000_000_000, 3, None)]


def test_record_writes_overruns_before_the_trace(tmp_path, monkeypatch):
    from ptviz.ftrace import record
    (tmp_path / "instances").mkdir()
    inst = tmp_path / "instances" / f"ptviz-{os.getpid()}"
    monkeypatch.setattr(record, "tracefs", lambda: str(tmp_path))
    monkeypatch.setattr(record.os, "rmdir", lambda path: None)
    script = (f"mkdir -p {inst}/per_cpu/cpu0 {inst}/per_cpu/cpu1 && "
              f"printf 'entries: 2\\noverrun: 9\\n' > {inst}/per_cpu/cpu1/stats && "
              f"printf 'overrun: 0\\n' > {inst}/per_cpu/cpu0/stats && "
              f"printf '# tracer: nop\\n{LINE}\\n' > {inst}/trace")
    out = tmp_path / "t.txt"
    record.record_text(["sh", "-c", script], str(out), events=(), tail=0, progress=False,
                       probes=False)
    assert out.read_text().splitlines() == ["CPU:1 [LOST 9 EVENTS]", "# tracer: nop", LINE]


# -- the fuzz test: `ptviz convert` on mutated real lines ----------------------------


_MUTATIONS = st.one_of(     # (what, where, with what)
    st.tuples(st.just("number"), st.integers(0, 40), st.sampled_from(HOSTILE_NUMBERS)),
    st.tuples(st.just("time"), st.just(0), st.sampled_from(
        ["0.000000", "1.000000", "4263.775118", "1.5", "9223372036.854775806",
         "9223372036.854775807"])),
    st.tuples(st.just("insert"), st.integers(0, 200), st.sampled_from(
        [b"\0", b"\xff\xfe", b"\xc3", b"\r", b"\t", b" ", b"-", b":", b"[", b"(", b")",
         b"\xe2\x82", b"\n"])),
    st.tuples(st.just("cut"), st.integers(0, 200), st.binary(max_size=40)),   # and junk
    st.tuples(st.just("pad"), st.sampled_from([1000, 200_000, LINE_LIMIT + 5]),
              st.sampled_from([b" ", b"a", b"1", b"-1 [0] "])),
    st.tuples(st.just("dup"), st.just(0), st.just(b"")))


def _mutate(line: bytes, what: str, at: int, arg) -> list[bytes]:
    spots = list(re.finditer(rb"\d+", line))
    if what == "number" and spots:
        m = spots[at % len(spots)]
        line = line[:m.start()] + arg.encode() + line[m.end():]
    elif what == "time":
        line = re.sub(rb"(?<!\d)\d++\.\d++:", arg.encode() + b":", line, count=1)  # linear
    elif what in ("insert", "cut"):
        line = line[:at] + arg + (line[at:] if what == "insert" else b"")
    elif what == "pad":
        line = line + arg * (at // len(arg))
    return [line, line] if what == "dup" else [line]


_LINES = st.one_of(st.lists(st.sampled_from(REAL), min_size=1, max_size=12),
                   st.sampled_from(STORIES))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
          deadline=None)
@given(case=_LINES.flatmap(lambda lines: st.tuples(
           st.just(lines), st.lists(st.tuples(st.integers(0, len(lines) - 1), _MUTATIONS),
                                    max_size=6))),
       order=st.sampled_from(["as is", "reversed", "crlf"]))
def test_fuzz_convert_never_tracebacks(case, order):
    """Whatever the lines: exit 0 with a readable trace, or exit 2 with one line naming
    the input; never a traceback, never a file left behind."""
    base, mutations = case
    lines = [[line.encode()] for line in base]
    for at, mutation in mutations:
        lines[at] = [m for line in lines[at] for m in _mutate(line, *mutation)]
    lines = [line for group in lines for line in group]
    if order == "reversed":                  # timestamps going backwards
        lines.reverse()
    data = (b"\r\n" if order == "crlf" else b"\n").join(lines) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.txt"), os.path.join(tmp, "out", "t.msgpack")
        os.mkdir(os.path.dirname(dst))
        with open(src, "wb") as f:
            f.write(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(["convert", src, dst])
        said = err.getvalue().splitlines()
        assert rc in (0, 2), said
        if rc == 2:
            assert len(said) == 1 and said[0].startswith(f"ptviz: {src}: "), said
            assert os.listdir(os.path.dirname(dst)) == []
        else:
            assert all(s.startswith((f"ptviz: {src}", f"ptviz: warning: {src}"))
                       for s in said), said
            assert os.listdir(os.path.dirname(dst)) == ["t.msgpack"]
            build_report(Replay.load(dst))
