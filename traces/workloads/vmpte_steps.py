"""A workload that writes its VmPTE (from /proc/self/status) to the trace marker at
known points, so a recorded trace can be checked against the kernel's own numbers.

    ptviz record -o out.msgpack -- python3 traces/workloads/vmpte_steps.py [--fork] [--reader]

Steps (VMPTE_MB=64 by default): touch 64 MiB (32 PTE tables on x86_64), MADV_DONTNEED
the first half (with PT_RECLAIM the 16 emptied tables are reclaimed), munmap the rest;
with --reader a second thread keeps refaulting the second half while the first is
dropped; with --fork a child touches a quarter of the size and exits.
"""

import ctypes
import mmap
import os
import sys
import threading

libc = ctypes.CDLL(None, use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
MADV_DONTNEED = 4
MB = 1 << 20
PMD = 2 * MB
SIZE = int(os.environ.get("VMPTE_MB", "64")) * MB   # the mapping; half is dropped by DONTNEED
MARKER = os.environ.get("PTVIZ_TRACE_MARKER", "/sys/kernel/tracing/trace_marker")
marker_fd = os.open(MARKER, os.O_WRONLY)


def vmpte_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmPTE:"):
                return int(line.split()[1])
    return -1


def mark(label: str) -> None:
    os.write(marker_fd, f"VmPTE: {vmpte_kb()} kB {label}\n".encode())


def aligned_anon(size: int) -> int:
    """An anonymous mapping aligned to the PMD span (over-map, then trim)."""
    raw = libc.mmap(None, size + PMD, mmap.PROT_READ | mmap.PROT_WRITE,
                    mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    start = (raw + PMD - 1) & ~(PMD - 1)
    if start > raw:
        libc.munmap(raw, start - raw)
    tail = raw + size + PMD - (start + size)
    if tail:
        libc.munmap(start + size, tail)
    return start


def touch(start: int, size: int) -> None:
    for off in range(0, size, 4096):
        ctypes.c_char.from_address(start + off).value = b"x"


def main() -> None:
    mark("start")
    base = aligned_anon(SIZE)
    touch(base, SIZE)
    mark(f"touched {SIZE // MB}M")
    stop = threading.Event()
    if "--reader" in sys.argv:
        def reader() -> None:
            while not stop.is_set():
                touch(base + SIZE // 2, 2 * MB)
        t = threading.Thread(target=reader)
        t.start()
    libc.madvise(base, SIZE // 2, MADV_DONTNEED)
    mark(f"dontneed {SIZE // 2 // MB}M")
    if "--reader" in sys.argv:
        stop.set()
        t.join()
        mark("reader stopped")
    libc.munmap(base + SIZE // 2, SIZE // 2)
    mark(f"munmap {SIZE // 2 // MB}M")
    if "--fork" in sys.argv:
        pid = os.fork()
        if pid == 0:
            mark("child start")
            child = aligned_anon(SIZE // 4)
            touch(child, SIZE // 4)
            mark(f"child touched {SIZE // 4 // MB}M")
            os._exit(0)
        os.waitpid(pid, 0)
        mark("after fork")
    mark("end")


main()
