"""One test per inference rule of the ftrace importer, on a few lines in the kernel's format.

The real captures (test_real_cases.py) show the rules together against VmPTE; these pin
each rule alone, with the kernel fact it encodes, so a change that breaks one says which.
"""

import os
import re
import tempfile
from collections import Counter

from hypothesis import HealthCheck, given, settings, strategies as st

from ptviz.ftrace.importer import import_lines
from ptviz.ftrace.infer import Inference
from ptviz.ftrace.infer_notes import import_notes, traced_names
from ptviz.ftrace.textparse import parse_lines
from replayer import vocab as v
from replayer.errors import BadInput
from replayer.replay import Replay
from tests.test_ftrace_robust import HOSTILE_NUMBERS

MS = 1000          # the builders take µs
SPAN = 1 << 21     # a PTE table's span
BASE = 0x7F0000000000
TABLE = "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP"


def line(us, pid, name, payload, cpu=0, comm="work", flags=".....", tgid=None):
    """One ftrace text line; ``name`` with a ``(`` is the syscall tracer's layout."""
    task = f"{comm}-{pid}" + (f" ({tgid:>7})" if tgid is not None else "")
    sep = "" if name.endswith("(") else " " if name.endswith(" ->") else ": "
    return (f"{task:>24} [{cpu:03d}] {flags} {us // 1_000_000}.{us % 1_000_000:06d}: "
            f"{name}{sep}{payload}")


def fault(us, pid, addr, **kw):
    return line(us, pid, "page_fault_user", f"address={addr:#x} ip=0x1 error_code=0x6", **kw)


def alloc(us, pid, pfn, gfp=TABLE, order=0, **kw):
    return line(us, pid, "mm_page_alloc",
                f"page=0 pfn={pfn:#x} order={order} migratetype=0 gfp_flags={gfp}", **kw)


def data(us, pid, pfn, **kw):
    return alloc(us, pid, pfn, gfp="GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP", **kw)


def free(us, pid, pfn, **kw):
    return line(us, pid, "mm_page_free", f"page=0 pfn={pfn:#x} order=0", **kw)


def rcu_free(us, pfn, cpu=0):
    return free(us, 0, pfn, cpu=cpu, comm="<idle>", flags="..s1.")


def syscall(us, pid, name, args, ret, **kw):
    """Enter and exit lines of the syscall tracer: sys_NAME(args) … sys_NAME -> ret."""
    return [line(us, pid, f"sys_{name}(", args + ")", **kw),
            line(us + 5, pid, f"sys_{name} ->", f"{ret:#x}", **kw)]


def infer(lines, pt_reclaim=None):
    """(events, inference) for the lines: events as (ts, kind, cpu, pid, fields)."""
    events = []
    inf = Inference(lambda ts, kind, cpu, pid, f, comm: events.append((ts, kind, cpu, pid, f)),
                    pt_reclaim=pt_reclaim)
    for rec in parse_lines(lines):
        inf.feed(rec)
    inf.finish()
    return events, inf


def of(events, kind):
    return [(ts, cpu, pid, f) for ts, k, cpu, pid, f in events if k == kind]


def allocs_by_pfn(events):
    return {f[2]: {"mm": f[0], "level": f[1], "addr": f[3]} for _, _, _, f in
            of(events, v.TABLE_ALLOC)}


def detach_of(events, pfn):
    (got,) = [(ts, cpu, pid, f[2]) for ts, cpu, pid, f in of(events, v.TABLE_DETACH)
              if f[1] == pfn]
    return got


def test_a_fault_keeps_its_tables_when_the_task_moves_to_another_cpu():
    # A fault can sleep (reclaim) and resume elsewhere: its allocations follow the task.
    events, _ = infer([fault(1000, 10, BASE + 0x5000, cpu=0),
                       alloc(1100, 10, 0x100, cpu=1),
                       data(1200, 10, 0x900, cpu=1)])
    assert allocs_by_pfn(events)[0x100]["level"] == v.LEVEL_PTE
    assert allocs_by_pfn(events)[0x100]["addr"] == BASE


def test_the_deposit_comes_whenever_the_huge_page_is_cleared():
    # do_huge_pmd_anonymous_page: the order-9 page first, cleared (ms, preemptible),
    # then pte_alloc_one for the deposit, counted in VmPTE with no entry.
    events, inf = infer([fault(1000, 10, BASE + SPAN + 0x10),
                         alloc(1010, 10, 0x200000, gfp="GFP_TRANSHUGE|__GFP_NORETRY", order=9),
                         alloc(1010 + 6 * MS, 10, 0x101)])
    table = allocs_by_pfn(events)[0x101]
    assert (table["level"], table["addr"]) == (v.LEVEL_PTE, BASE + SPAN)
    assert inf.copies["deposited"] == 1
    assert of(events, v.PTE_SET) == []


def test_more_tables_than_a_fault_can_allocate_are_a_forks_copies():
    # Plain text (no syscalls, no TGID): a fault on a file page allocates nothing and ends
    # unseen; the fork's copies that follow are not its tables. sched_process_fork then
    # gives them to the child, the first being its pgd.
    lines = [fault(1000, 10, BASE + 0x10)]
    lines += [alloc(1010 + k, 10, 0x300 + k) for k in range(6)]
    lines += [line(1100, 10, "sched_process_fork",
                   "comm=work pid=10 child_comm=work child_pid=11")]
    events, inf = infer(lines)
    tables = allocs_by_pfn(events)
    assert set(tables) == {0x301, 0x302, 0x303, 0x304, 0x305}
    assert {t["mm"] & 0xFFFFFFFF for t in tables.values()} == {11}
    assert inf.decided == Counter(pgd=1)


def test_an_order_1_pgd_is_the_new_mm_and_every_table_is_a_copy():
    # x86-64 with PTI: pgd_alloc takes 2 pages; no page table is order 1. The order-0
    # pages of the fork are all copies then.
    lines = [alloc(1000, 10, 0x400, order=1)]
    lines += [alloc(1010 + k, 10, 0x500 + k) for k in range(3)]
    lines += [line(1100, 10, "sched_process_fork", "comm=work pid=10 child_comm=work child_pid=11"),
              # a clone that allocates nothing: a thread of the same process
              line(2000, 10, "sched_process_fork", "comm=work pid=10 child_comm=work child_pid=12"),
              fault(2100, 12, BASE + 8 * SPAN), alloc(2110, 12, 0x600), data(2120, 12, 0x901)]
    events, inf = infer(lines)
    tables = allocs_by_pfn(events)
    assert {pfn for pfn, t in tables.items() if t["mm"] & 0xFFFFFFFF == 11} == {0x500, 0x501, 0x502}
    assert tables[0x600]["mm"] & 0xFFFFFFFF == 10          # the thread faults in mm 10
    assert inf.decided == Counter(pgd=2)


def test_munmap_frees_the_table_of_a_span_it_leaves_without_a_mapping():
    # free_pgtables frees between the neighbouring VMAs (floor, ceiling), not only what
    # the range covers: a 1 MiB mapping's table goes with its munmap. The detach is the
    # munmapping task's, on its CPU, though RCU frees the page on another.
    start = BASE + 4 * SPAN
    lines = []
    for at in (start - 8 * SPAN, start, start + 8 * SPAN):   # known neighbours far off
        lines += syscall(1000, 10, "mmap", "addr: 0, len: 0x100000, prot: 3, flags: 0x22, "
                         "fd: 0xffffffff, off: 0", at)
    lines += [fault(1100, 10, start + 0x10), alloc(1110, 10, 0x700), data(1120, 10, 0x902)]
    lines += syscall(2000, 10, "munmap", f"addr: {start:#x}, len: 0x100000", 0, cpu=1)
    lines += [rcu_free(2000 + 20 * MS, 0x700, cpu=0)]
    events, _ = infer(lines)
    assert detach_of(events, 0x700) == (2000 * 1000 + 1, 1, 10, "munmap")
    # Without the neighbours, a mapping from before the trace may share the span: the
    # munmap is not taken to free it (the free then goes with the nearest zap).
    events, inf = infer(lines[2:4] + lines[6:])
    assert inf.counts["detach_at_zap"] == 0 and inf.counts["detach_near_zap"] == 1


def test_a_mapping_left_in_the_span_keeps_its_table():
    # The same, with a second mapping in the span's other half: free_pgtables keeps the
    # table, so a free of it 20 ms later is not the munmap's.
    start = BASE + 4 * SPAN
    lines = syscall(1000, 10, "mmap", "addr: 0, len: 0x100000, prot: 3, flags: 0x22, "
                    "fd: 0xffffffff, off: 0", start)
    lines += syscall(1010, 10, "mmap", "addr: 0, len: 0x100000, prot: 3, flags: 0x22, "
                     "fd: 0xffffffff, off: 0", start + 0x100000)
    lines += syscall(1020, 10, "mprotect", f"start: {start + 0x100000:#x}, len: 0x100000, "
                     "prot: 1", 0)      # a different protection: two VMAs, not one
    lines += [fault(1100, 10, start + 0x10), alloc(1110, 10, 0x700), data(1120, 10, 0x902)]
    lines += syscall(2000, 10, "munmap", f"addr: {start:#x}, len: 0x100000", 0)
    lines += [rcu_free(2000 + 300 * MS, 0x700)]
    events, inf = infer(lines)
    assert detach_of(events, 0x700)[3] == "other"
    assert inf.counts["detach_guessed"] == 1


def test_a_split_withdraws_the_deposit_at_the_head_of_the_pmd_tables_list():
    # pgtable_trans_huge_deposit/withdraw: the newest deposit is withdrawn first, then
    # the oldest (mm/pgtable-generic.c) — not the table of the PMD being split.
    lines = []
    for k in range(3):
        t = 1000 + k * 10 * MS
        lines += [fault(t, 10, BASE + k * SPAN),
                  alloc(t + 10, 10, 0x200000 + k, gfp="GFP_TRANSHUGE", order=9),
                  alloc(t + 20, 10, 0x800 + k)]
    lines += syscall(50 * MS, 10, "mprotect", f"start: {BASE + 0x4000:#x}, len: 0x1000, prot: 1",
                     0)
    lines += syscall(60 * MS, 10, "madvise", f"start: {BASE + SPAN:#x}, len_in: {SPAN:#x}, "
                     "behavior: 4", 0)
    lines += [free(60 * MS + 2, 10, 0x800)]     # zap_deposited_table: freed at once
    events, _ = infer(lines, pt_reclaim=True)
    (split,) = of(events, v.PTE_SET)
    assert split[3][1:3] == (0x802, 512)       # the newest deposit became span 0's table
    assert detach_of(events, 0x800)[3] == "huge_zap"   # the oldest went with span 1's zap


def test_a_free_no_zap_covers_goes_with_a_zap_just_before_it():
    # The mapping moved where the trace cannot show (mremap untraced): the munmap at the
    # new address frees the table ptviz knows at the old one.
    lines = [fault(1000, 10, BASE + 0x10), alloc(1010, 10, 0x700), data(1020, 10, 0x902)]
    lines += syscall(5000, 10, "munmap", f"addr: {BASE + 64 * SPAN:#x}, len: {SPAN:#x}", 0)
    lines += [rcu_free(5000 + 30 * MS, 0x700)]
    events, inf = infer(lines)
    assert detach_of(events, 0x700) == (5000 * 1000 + 1, 0, 10, "other")
    assert inf.counts["detach_near_zap"] == 1
    # Long after any zap: just before the free, cause unknown.
    late = lines[:-1] + [rcu_free(5000 + 900 * MS, 0x700)]
    events, inf = infer(late)
    assert detach_of(events, 0x700)[0] == (5000 + 900 * MS) * 1000 - 1
    assert inf.counts["detach_guessed"] == 1


def test_without_pt_reclaim_a_dontneed_is_not_a_nearby_zap():
    # MADV_DONTNEED frees no table on a kernel without PT_RECLAIM: a free after it is
    # someone else's, placed just before the free.
    lines = [fault(1000, 10, BASE + 0x10), alloc(1010, 10, 0x700), data(1020, 10, 0x902)]
    lines += syscall(5000, 10, "madvise", f"start: {BASE:#x}, len_in: {SPAN:#x}, behavior: 4", 0)
    lines += [rcu_free(5000 + 30 * MS, 0x700)]
    for pt_reclaim, cause in ((True, "reclaim"), (False, "other")):
        events, inf = infer(lines, pt_reclaim=pt_reclaim)
        assert detach_of(events, 0x700)[3] == cause
    assert inf.counts["detach_near_zap"] == 0


def test_notes_say_what_was_not_traced_only_when_they_cannot_know():
    lines = [fault(1000, 10, BASE + 0x10), alloc(1010, 10, 0x700), data(1020, 10, 0x902)]
    lines += syscall(5000, 10, "munmap", f"addr: {BASE + 64 * SPAN:#x}, len: {SPAN:#x}", 0)
    lines += [rcu_free(5000 + 30 * MS, 0x700)]
    _, inf = infer(lines)
    # ptviz record says which events it enabled: mremap was, so it just did not happen.
    recorded = traced_names(["syscalls/sys_enter_mremap", "kmem/mm_page_alloc"])
    assert recorded == {"sys_enter_mremap", "mm_page_alloc"}
    assert not any("mremap is not in the trace" in n for n in import_notes(inf, True, recorded))
    # Plain text: only what it holds is known.
    (note,) = [n for n in import_notes(inf, False) if n.startswith("mremap")]
    assert note.startswith("mremap is not in the trace (or it was traced and never happened)")
    assert traced_names("not a list") is None and traced_names([1, 2]) is None


def test_an_exit_is_a_zap_so_a_table_a_dontneed_left_empty_shows_leaked(tmp_path):
    # No PT_RECLAIM: MADV_DONTNEED empties the table and leaves it; exit_group's
    # teardown takes it. The import shows the exit as a zap of the whole mm, so the
    # replay can tell the table sat leaked from the dontneed to the exit.
    lines = [fault(1000, 10, BASE + 0x10), alloc(1010, 10, 0x700), data(1020, 10, 0x902)]
    lines += syscall(2000, 10, "madvise", f"start: {BASE:#x}, len_in: {SPAN:#x}, behavior: 4", 0)
    lines += [line(9000, 10, "sys_exit_group(", "error_code: 0)"),
              free(9100, 10, 0x700),
              line(9200, 10, "sched_process_exit", "comm=work pid=10 prio=120")]
    out = tmp_path / "t.msgpack"
    import_lines(lines, out, {"kernel": {"pt_reclaim": False}}, "t.txt")
    r = Replay.load(out)
    zaps = [(e.fields["cause"], e.pid) for _, e in r.events(kinds={"zap_begin"})]
    assert zaps == [("dontneed", 10), ("exit", 10)]
    record = r.log.record(r.log.find(0x700, 0))
    assert record["detach_cause"] == "exit"
    assert record["leaked_since"] == 2000 * 1000


# -- fuzz: the calls these rules read, with hostile numbers -----------------------------
# Lines of the real 6.18 captures (traces/raw/cases/), one of each shape the task, VMA and
# huge-page rules read. A number that does not fit where it goes (a range past the user
# address space, a pid past 2^32) must leave the line raw, never reach the writer.
CALLS_STORY = """\
 pt_cases-6512 (   6512) [000] .....  8682.177745: sys_execve(filename: 0x7fcfbada68a0, argv: 0x7fcfb2ea29f0, envp: 0x7fcfb2e6bb90)
 pt_cases-6512 (   6512) [000] d....  8682.177949: page_fault_kernel: address=0x555a3caaa0dc ip=elf_load error_code=0x2
 pt_cases-6512 (   6512) [000] .....  8682.177950: mm_page_alloc: page=0 pfn=0x1214a0 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 pt_cases-6512 (   6512) [000] .....  8682.177989: sched_process_exec: filename=/tmp/pt_cases pid=6512 old_pid=6512
 pt_cases-6512 (   6512) [000] .....  8682.177991: sys_execve -> 0x0
 pt_cases-6512 (   6512) [000] .....  8682.178010: sys_brk(brk: 0)
 pt_cases-6512 (   6512) [000] .....  8682.178011: sys_brk -> 0x55ac2a000000
 pt_cases-6512 (   6512) [000] .....  8682.178477: sys_mmap(addr: 0, len: 0x1000000, prot: 3, flags: 0x22, fd: 0xffffffff, off: 0)
 pt_cases-6512 (   6512) [000] .....  8682.178480: sys_mmap -> 0x7fecdd000000
 pt_cases-6512 (   6512) [000] d....  8682.178500: page_fault_user: address=0x7fecdd000000 ip=0x401575 error_code=0x6
 pt_cases-6512 (   6512) [000] .....  8682.178501: mm_page_alloc: page=0 pfn=0x28d400 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE
 pt_cases-6512 (   6512) [000] .....  8682.182501: mm_page_alloc: page=0 pfn=0x1214a1 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 pt_cases-6512 (   6512) [000] .....  8682.178622: sys_mprotect(start: 0x7fecdd004000, len: 0x4000, prot: 1)
 pt_cases-6512 (   6512) [000] .....  8682.178623: sys_mprotect -> 0x0
 pt_cases-6512 (   6512) [000] .....  8682.244316: sys_mremap(addr: 0x7fecdd000000, old_len: 0x1000000, new_len: 0x1000000, flags: 3, new_addr: 0x7fecdbc00000)
 pt_cases-6512 (   6512) [000] .....  8682.244317: mm_page_alloc: page=0 pfn=0x1214a2 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 pt_cases-6512 (   6512) [000] .....  8682.244320: sys_mremap -> 0x7fecdbc00000
 pt_cases-6512 (   6512) [000] .....  8682.279333: sys_clone(clone_flags: 0x1200011, newsp: 0, parent_tidptr: 0, child_tidptr: 0x7f7dc9c79a10, tls: 0)
 pt_cases-6512 (   6512) [000] .....  8682.279340: mm_page_alloc: page=0 pfn=0x1214a3 order=1 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 pt_cases-6512 (   6512) [000] .....  8682.279341: mm_page_alloc: page=0 pfn=0x1214a5 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
 pt_cases-6512 (   6512) [000] .....  8682.279549: task_newtask: pid=6513 comm=pt_cases clone_flags=1200000 oom_score_adj=0
 pt_cases-6512 (   6512) [000] .....  8682.279560: sched_process_fork: comm=pt_cases pid=6512 child_comm=pt_cases child_pid=6513
 pt_cases-6512 (   6512) [000] .....  8682.279570: sys_clone -> 0x1971
 pt_cases-6512 (   6512) [000] .....  8685.294525: sys_madvise(start: 0x7fecdbc00000, len_in: 0x200000, behavior: 4)
 pt_cases-6512 (   6512) [000] .....  8685.294526: mm_page_free: page=0 pfn=0x1214a2 order=0
 pt_cases-6512 (   6512) [000] .....  8685.294530: sys_madvise -> 0x0
 pt_cases-6512 (   6512) [000] .....  8685.300000: sys_munmap(addr: 0x7fecdbc00000, len: 0x1000000)
 pt_cases-6512 (   6512) [000] .....  8685.300010: sys_munmap -> 0x0
      exe-6513 (   6513) [000] .....  8685.400000: sys_exit_group(error_code: 0)
      exe-6513 (   6513) [000] .....  8685.400010: exit_mmap: mt_mod 0000000091204de0, DESTROY
      exe-6513 (   6513) [000] .....  8685.400020: mm_page_free: page=0 pfn=0x1214a5 order=0
      exe-6513 (   6513) [000] .....  8685.481631: sched_process_exit: comm=exe pid=6513 prio=120 group_dead=true
   <idle>-0    (-------) [001] ..s1.  8685.320000: mm_page_free: page=0 pfn=0x1214a1 order=0
"""


def test_the_calls_story_imports_whole():
    # The story itself is understood: no line of it goes raw for want of a handler.
    events, inf = infer(CALLS_STORY.splitlines())
    assert inf.counts["raw"] == 0
    assert inf.copies["deposited"] == 1 and inf.decided == Counter(task_newtask=1)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutations=st.lists(st.tuples(st.integers(0, CALLS_STORY.count("\n") - 1),
                                    st.sampled_from(HOSTILE_NUMBERS), st.integers(0, 40)),
                          min_size=1, max_size=6))
def test_hostile_numbers_in_the_calls_never_reach_the_writer(mutations):
    lines = CALLS_STORY.splitlines()
    for at, number, spot in mutations:
        spots = list(re.finditer(r"\d+", lines[at]))
        m = spots[spot % len(spots)]
        lines[at] = lines[at][:m.start()] + number + lines[at][m.end():]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t.msgpack")
        try:
            import_lines(lines, out, {}, "t.txt")
        except BadInput:
            return                      # every line bad: one line to the user, exit 2
        Replay.load(out).run()          # and what was written reads back


def test_the_first_zap_that_surely_freed_a_table_is_its_detach():
    # 7.3: munmap, then the exit, then the RCU frees of the munmap's tables: the munmap
    # took them (a detached table is gone; the exit came while its free waited).
    lines = [fault(1000, 10, BASE + 0x10), alloc(1010, 10, 0x700), data(1020, 10, 0x902)]
    lines += syscall(5000, 10, "munmap", f"addr: {BASE:#x}, len: {SPAN:#x}", 0)
    lines += [line(5100, 10, "sys_exit_group(", "error_code: 0)"),
              rcu_free(5000 + 15 * MS, 0x700)]
    events, _ = infer(lines)
    assert detach_of(events, 0x700)[3] == "munmap"


def test_with_pt_reclaim_unknown_a_later_sure_zap_beats_a_maybe_reclaim():
    # A kernel without PT_RECLAIM (6.12) frees the tables MADV_DONTNEED emptied only at
    # the munmap; one with it, at the MADV_DONTNEED. Unknown: the munmap that surely
    # freed the table before its free is taken, and the notes say so.
    lines = [fault(1000, 10, BASE + 0x10), alloc(1010, 10, 0x700), data(1020, 10, 0x902)]
    lines += syscall(2000, 10, "madvise", f"start: {BASE:#x}, len_in: {SPAN:#x}, behavior: 4", 0)
    lines += syscall(3000, 10, "munmap", f"addr: {BASE:#x}, len: {SPAN:#x}", 0)
    lines += [rcu_free(3000 + 15 * MS, 0x700)]
    events, inf = infer(lines)
    assert detach_of(events, 0x700)[:2] == (3000 * 1000 + 1, 0)
    assert inf.counts["maybe_reclaims_passed"] == 1
    assert any("the kernel may not have it" in n for n in import_notes(inf, False))
    events, _ = infer(lines, pt_reclaim=True)
    assert detach_of(events, 0x700)[0] == 2000 * 1000 + 1


def test_a_clone_taken_for_a_thread_that_then_builds_an_mm_was_a_vfork_child():
    # Plain text: posix_spawn's clone allocates no pgd, as a thread's does not. Its exec
    # then builds a new mm outside any fault (pgd, the stack's tables through GUP)
    # before the child faults at all; a thread's first tables come from faults.
    lines = [line(1000, 10, "sched_process_fork", "comm=gcc pid=10 child_comm=gcc child_pid=11"),
             line(1100, 10, "sched_process_fork", "comm=gcc pid=10 child_comm=gcc child_pid=12")]
    lines += [alloc(2000 + k, 11, 0x500 + k) for k in range(4)]       # pgd + 3 stack tables
    lines += [fault(2100, 11, BASE + 0x10), alloc(2110, 11, 0x600), data(2120, 11, 0x901)]
    lines += [fault(2200, 12, BASE + 9 * SPAN), alloc(2210, 12, 0x700), data(2220, 12, 0x902)]
    events, inf = infer(lines)
    tables = allocs_by_pfn(events)
    assert {t["mm"] & 0xFFFFFFFF for p, t in tables.items() if p != 0x700} == {11}
    assert 0x500 not in tables                                        # the pgd
    assert tables[0x700]["mm"] & 0xFFFFFFFF == 10                      # the real thread
    assert inf.copies["vfork_exec"] == 1
