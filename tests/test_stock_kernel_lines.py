"""Lines from stock Debian kernels (no probes) whose numbers do not fit a field.

The issue: `ptviz convert` of stock-kernel captures died with ``OverflowError: Integer value
out of range`` in the trace writer. These are the line shapes that crashed the importer of
d2856a8, found by bisecting real captures down to single lines: Debian's 7.3.4 and 6.12.117
cloud kernels booted under QEMU as traces/qemu/capture.sh does (PROBES=none: stock
tracepoints only, hash-ptr on), with the event set of ``ptviz record``, the init's, a
minimal one (no syscall events) and every event:

* ``sys_madvise``/``sys_munmap`` whose ``start + len`` reaches 2**64: the call fails with
  EINVAL, but its enter tracepoint fires first, and the importer made a zap_begin whose
  ``end`` (start + len) msgpack cannot pack. Seven shapes: a length of -4096 or ~0 with
  MADV_DONTNEED, MADV_FREE and MADV_DONTNEED_LOCKED, the top page with a small length, and
  munmap alike; the 6.12 syscall tracer prints them without ``0x``.
* A user-mode fault on a kernel address (the vsyscall page, the direct map) followed within
  2 ms by the ``GFP_KERNEL_ACCOUNT|__GFP_ZERO`` order-0 allocations of a fork, in a capture
  without syscall events: the importer took them for page tables of that fault, at a
  kernel-half address (0xffffffffff600000), which the replayer's int64 table log could not
  hold (``OverflowError: int too big to convert`` in ``ptviz replay``).

vmpte_steps alone never crashed it (nor busybox around it, with every event enabled): the
lines below are the kernels' own, from a small static workload run after it that makes those
calls (madvise/munmap with EINVAL ranges, reads of kernel addresses and a vsyscall call with
SIGSEGV caught, a fork after each); only the trace-cmd shape is constructed. Every
test imports with today's ``ptviz convert`` in-process and checks that it exits 0 without a
traceback, that its output replays, and that the offending value is kept as text in a raw
event and not in any event's field.
"""

import pytest

from ptviz.cli import main
from replayer.replay import Replay

U64_END = 1 << 64
KERNEL_HALF = 1 << 63

# -- 7.3.4 cloud kernel (trixie-backports), tracefs text, no record-tgid ----------------------
# The workload maps 8 MiB and touches it: its first fault allocates a PTE table (pfn 0x6efc).
PRELUDE_73 = """\
            edge-105     [001] .....     2.898202: sys_mmap(addr: 0, len: 0x800000, prot: 3, flags: 0x22, fd: 0xffffffff, off: 0)
            edge-105     [001] .....     2.898336: sys_mmap -> 0x7f5d10a00000
            edge-105     [001] d....     2.898358: page_fault_user: address=0x7f5d10a00000 ip=0x401575 error_code=0x6
            edge-105     [001] .....     2.898380: mm_page_alloc: page=00000000539b3bad pfn=0x6efc order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-105     [001] .....     2.898411: mm_page_alloc: page=00000000ee2cae2a pfn=0xb7ba order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP
"""
TABLE_73 = 0x6efc

# (marker, enter, exit): each enter line alone crashed the old importer.
CALLS_73 = [
    ("edge-105     [001] ...1.     2.923105: tracing_mark_write: edge: madvise len -4096 DONTNEED",
     "edge-105     [001] .....     2.923151: sys_madvise(start: 0x7f5d10a00000, len_in: 0xfffffffffffff000, behavior: 4)",
     "edge-105     [001] .....     2.923168: sys_madvise -> 0xffffffffffffffea"),
    ("edge-105     [001] ...1.     2.923190: tracing_mark_write: edge: madvise len ~0 FREE",
     "edge-105     [001] .....     2.923198: sys_madvise(start: 0x7f5d10a00000, len_in: 0xffffffffffffffff, behavior: 8)",
     "edge-105     [001] .....     2.923200: sys_madvise -> 0xffffffffffffffea"),
    ("edge-105     [001] ...1.     2.923206: tracing_mark_write: edge: madvise len ~0 DONTNEED_LOCKED",
     "edge-105     [001] .....     2.923213: sys_madvise(start: 0x7f5d10a00000, len_in: 0xffffffffffffffff, behavior: 0x18)",
     "edge-105     [001] .....     2.923214: sys_madvise -> 0xffffffffffffffea"),
    ("edge-105     [001] ...1.     2.923219: tracing_mark_write: edge: madvise top page DONTNEED",
     "edge-105     [001] .....     2.923225: sys_madvise(start: 0xfffffffffffff000, len_in: 0x1000, behavior: 4)",
     "edge-105     [001] .....     2.923226: sys_madvise -> 0xffffffffffffffea"),
    ("edge-105     [001] ...1.     2.923231: tracing_mark_write: edge: munmap len ~0",
     "edge-105     [001] .....     2.923237: sys_munmap(addr: 0x7f5d10a00000, len: 0xffffffffffffffff)",
     "edge-105     [001] .....     2.923268: sys_munmap -> 0xffffffffffffffea"),
    ("edge-105     [001] ...1.     2.923273: tracing_mark_write: edge: munmap top page",
     "edge-105     [001] .....     2.923278: sys_munmap(addr: 0xfffffffffffff000, len: 0x1000)",
     "edge-105     [001] .....     2.923279: sys_munmap -> 0xffffffffffffffea"),
    ("edge-105     [001] ...1.     2.923284: tracing_mark_write: edge: munmap len -4096 at 0x1000",
     "edge-105     [001] .....     2.923290: sys_munmap(addr: 0x1000, len: 0xfffffffffffff000)",
     "edge-105     [001] .....     2.923292: sys_munmap -> 0xffffffffffffffea"),
]

# -- 6.12.117 cloud kernel (trixie): the syscall tracer prints %lx, without 0x ---------------
PRELUDE_612 = """\
            edge-149     [001] ...1.     2.702817: sys_mmap(addr: 0, len: 800000, prot: 3, flags: 22, fd: ffffffff, off: 0)
            edge-149     [001] ...1.     2.702963: sys_mmap -> 0x7f58c5c00000
            edge-149     [001] d....     2.702985: page_fault_user: address=0x7f58c5c00000 ip=0x401575 error_code=0x6
            edge-149     [001] .....     2.703011: mm_page_alloc: page=00000000ed97fce4 pfn=0x25ca order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO
            edge-149     [001] .....     2.703043: mm_page_alloc: page=000000003dff9557 pfn=0xd463 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO
"""
TABLE_612 = 0x25ca

CALLS_612 = [
    ("edge-149     [001] .....     2.724542: tracing_mark_write: edge: madvise len -4096 DONTNEED",
     "edge-149     [001] ...1.     2.724599: sys_madvise(start: 7f58c5c00000, len_in: fffffffffffff000, behavior: 4)",
     "edge-149     [001] ...1.     2.724614: sys_madvise -> 0xffffffffffffffea"),
    ("edge-149     [001] .....     2.724634: tracing_mark_write: edge: madvise len ~0 FREE",
     "edge-149     [001] ...1.     2.724641: sys_madvise(start: 7f58c5c00000, len_in: ffffffffffffffff, behavior: 8)",
     "edge-149     [001] ...1.     2.724642: sys_madvise -> 0xffffffffffffffea"),
    ("edge-149     [001] .....     2.724649: tracing_mark_write: edge: madvise len ~0 DONTNEED_LOCKED",
     "edge-149     [001] ...1.     2.724655: sys_madvise(start: 7f58c5c00000, len_in: ffffffffffffffff, behavior: 18)",
     "edge-149     [001] ...1.     2.724663: sys_madvise -> 0xffffffffffffffea"),
    ("edge-149     [001] .....     2.724669: tracing_mark_write: edge: madvise top page DONTNEED",
     "edge-149     [001] ...1.     2.724676: sys_madvise(start: fffffffffffff000, len_in: 1000, behavior: 4)",
     "edge-149     [001] ...1.     2.724677: sys_madvise -> 0xffffffffffffffea"),
    ("edge-149     [001] .....     2.724687: tracing_mark_write: edge: munmap len ~0",
     "edge-149     [001] ...1.     2.724693: sys_munmap(addr: 7f58c5c00000, len: ffffffffffffffff)",
     "edge-149     [001] ...1.     2.724727: sys_munmap -> 0xffffffffffffffea"),
    ("edge-149     [001] .....     2.724733: tracing_mark_write: edge: munmap top page",
     "edge-149     [001] ...1.     2.724738: sys_munmap(addr: fffffffffffff000, len: 1000)",
     "edge-149     [001] ...1.     2.724740: sys_munmap -> 0xffffffffffffffea"),
    ("edge-149     [001] .....     2.724745: tracing_mark_write: edge: munmap len -4096 at 0x1000",
     "edge-149     [001] ...1.     2.724750: sys_munmap(addr: 1000, len: fffffffffffff000)",
     "edge-149     [001] ...1.     2.724751: sys_munmap -> 0xffffffffffffffea"),
]

# -- trace-cmd report of the same calls: CONSTRUCTED from the format files' print fmt
# ("start: 0x%08lx, len_in: 0x%08lx, behavior: 0x%08lx", reference/formats-6.18.44.txt),
# event names sys_enter_*/sys_exit_*, names padded to 20 columns, no flags column.
CALLS_TRACE_CMD = [
    ("edge-105  [001]     2.923105: tracing_mark_write:   edge: madvise len -4096 DONTNEED",
     "edge-105  [001]     2.923151: sys_enter_madvise:    start: 0x7f5d10a00000, len_in: 0xfffffffffffff000, behavior: 0x00000004",
     "edge-105  [001]     2.923168: sys_exit_madvise:     0xffffffffffffffea"),
    ("edge-105  [001]     2.923231: tracing_mark_write:   edge: munmap len ~0",
     "edge-105  [001]     2.923237: sys_enter_munmap:     addr: 0x7f5d10a00000, len: 0xffffffffffffffff",
     "edge-105  [001]     2.923268: sys_exit_munmap:      0xffffffffffffffea"),
]

CASES = ([("7.3", PRELUDE_73, TABLE_73, c) for c in CALLS_73]
         + [("6.12", PRELUDE_612, TABLE_612, c) for c in CALLS_612]
         + [("trace-cmd", "", None, c) for c in CALLS_TRACE_CMD])


def _text(*lines: str) -> str:
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _convert(tmp_path, capsys, text: str) -> Replay:
    """``ptviz convert`` in-process: exit 0, one summary line on stderr, no traceback; then
    the output is replayed (the reader checks every field's type and range)."""
    src, out = tmp_path / "trace.txt", tmp_path / "trace.msgpack"
    src.write_text(text)
    rc = main(["convert", str(src), str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Traceback" not in err and "Error" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"ptviz: {src} → {out}: "), err
    return Replay.load(out)


def _ts(line: str) -> int:
    """The line's timestamp in ns (six decimals in these captures)."""
    stamp = line.split(": ", 1)[0].split()[-1]
    secs, micros = stamp.split(".")
    return int(secs) * 1_000_000_000 + int(micros) * 1000


def _ints(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _ints(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _ints(v)


def _case_id(case) -> str:
    kernel, _, _, (marker, _, _) = case
    return f"{kernel}: {marker.split('edge: ', 1)[1]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_a_range_past_the_address_space_is_kept_as_text(tmp_path, capsys, case):
    _, prelude, table, (marker, enter, exit_) = case
    r = _convert(tmp_path, capsys, prelude + _text(marker, enter, exit_))
    at = _ts(enter)
    # The call failed (EINVAL): it zapped nothing. Its enter line is a raw event that
    # keeps the numbers as the kernel printed them...
    raws = [e for _, e in r.events(kinds={"raw"}) if e.ts == at]
    assert len(raws) == 1, raws
    text = raws[0].fields["fields"]["text"]
    assert text.strip("()") in enter and ("len: " in text or "len_in: " in text), text
    assert raws[0].fields["name"] in ("sys_madvise", "sys_munmap", "sys_enter_madvise",
                                      "sys_enter_munmap")
    # ...and no event carries the range: no zap at that instant, every number in range.
    assert not [e for _, e in r.events(kinds={"zap_begin", "zap_end"}) if e.ts >= at], \
        "an EINVAL call made a zap"
    for _, e in r.events():
        assert all(-KERNEL_HALF <= n < U64_END for n in _ints(e.fields)), e
    if table is not None:
        # The PTE table the prelude's fault allocated is untouched (still live, one entry).
        steps = [e.kind for _, e in r.events(pfn=table)]
        assert steps[:2] == ["table_alloc", "pte_set"], steps
        assert not {"pte_clear", "table_detach", "table_free"} & set(steps), steps


# -- a user fault on a kernel address, then a fork (7.3.4, events: kmem page alloc/free,
# page_fault_user, tlb_flush, sched_process_fork/exit; no syscall events) -----------------
# The vsyscall page: a static binary calling time() through it (vsyscall=none on this
# kernel: SIGSEGV, caught), then fork() copying the page tables for the child.
VSYSCALL_THEN_FORK = """\
            edge-106     [001] ...1.     2.967451: tracing_mark_write: edge: vsyscall fault then fork
            edge-106     [001] d....     2.967474: page_fault_user: address=0xffffffffff600400 ip=0xffffffffff600400 error_code=0x14
            edge-106     [001] .....     2.967832: mm_page_alloc: page=000000004ef35165 pfn=0x6c94 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968201: mm_page_alloc: page=000000002853f130 pfn=0x2aae order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968216: mm_page_alloc: page=0000000071ffea58 pfn=0x2494 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968228: mm_page_alloc: page=00000000d27708da pfn=0x248f order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968240: mm_page_alloc: page=00000000a1ed033e pfn=0x2ab0 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968299: mm_page_alloc: page=00000000e95ea7f5 pfn=0x6c99 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968316: mm_page_alloc: page=0000000034e7f4c4 pfn=0x6c9c order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968322: mm_page_alloc: page=000000001b8671f3 pfn=0x6c9d order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968352: mm_page_alloc: page=00000000c7bf35de pfn=0x6c9a order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968367: mm_page_alloc: page=000000004e5f6b77 pfn=0x6c9b order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968373: mm_page_alloc: page=00000000f442a788 pfn=0x6c95 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.968379: mm_page_alloc: page=000000000eae9d6f pfn=0x6c96 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] d..1.     2.968403: tlb_flush: pages:-1 reason:local MM shootdown (3)
            edge-106     [001] .....     2.968581: sched_process_fork: comm=edge pid=106 child_comm=edge child_pid=107
"""

# A read of the kernel's direct map (SIGSEGV, caught), then the same fork.
KERNEL_READ_THEN_FORK = """\
            edge-106     [001] ...1.     2.971010: tracing_mark_write: edge: kernel fault then fork
            edge-106     [001] d....     2.971032: page_fault_user: address=0x4a9300 ip=0x408a10 error_code=0x7
            edge-106     [001] d....     2.971076: page_fault_user: address=0xffff888000000000 ip=0x401813 error_code=0x4
            edge-106     [001] .....     2.971395: mm_page_alloc: page=00000000b3b13422 pfn=0x6c98 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971508: mm_page_alloc: page=00000000ed14680d pfn=0x6c97 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971520: mm_page_alloc: page=00000000457a6521 pfn=0x6c82 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971529: mm_page_alloc: page=00000000b8b1f058 pfn=0x6c87 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971539: mm_page_alloc: page=00000000fdbda1e7 pfn=0x6c84 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971589: mm_page_alloc: page=0000000082b81e96 pfn=0x6c7f order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971604: mm_page_alloc: page=00000000f8ddf66a pfn=0x6c85 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971612: mm_page_alloc: page=00000000cb9e83e2 pfn=0x2b3d order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971623: mm_page_alloc: page=00000000f472e10f pfn=0x2b3c order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971637: mm_page_alloc: page=0000000038c1400f pfn=0x2b39 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971645: mm_page_alloc: page=000000001d4d5d0c pfn=0x6c8c order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] .....     2.971653: mm_page_alloc: page=00000000f493e2a1 pfn=0x2b34 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP
            edge-106     [001] d..1.     2.971674: tlb_flush: pages:-1 reason:local MM shootdown (3)
            edge-106     [001] .....     2.971837: sched_process_fork: comm=edge pid=106 child_comm=edge child_pid=108
"""


@pytest.mark.parametrize("text, address", [
    (VSYSCALL_THEN_FORK, "0xffffffffff600400"),
    (KERNEL_READ_THEN_FORK, "0xffff888000000000"),
], ids=["vsyscall", "direct map"])
def test_a_user_fault_on_a_kernel_address_gives_no_table(tmp_path, capsys, text, address):
    r = _convert(tmp_path, capsys, text)
    # The fault is kept whole, address and all, as the kernel printed it...
    faults = [e.fields["fields"]["text"] for _, e in r.events(kinds={"raw"})
              if e.fields["name"] == "page_fault_user"]
    assert any(f"address={address} " in f for f in faults), faults
    # ...and no table is placed in the kernel's half of the address space (the old
    # importer put the fork's tables at 0xffffffffff600000, and replay overflowed).
    addrs = [e.fields["addr"] for _, e in r.events(kinds={"table_alloc"})]
    assert all(a < KERNEL_HALF for a in addrs), [hex(a) for a in addrs]
    # `ptviz replay` of the text itself (import, then replay) exits 0 too.
    assert main(["replay", str(tmp_path / "trace.txt")]) == 0
    assert "Traceback" not in capsys.readouterr().err
