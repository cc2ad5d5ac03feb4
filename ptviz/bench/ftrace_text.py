"""Synthetic tracefs text for the import benchmark: the lines a real capture of the
cover letter's loop has on this kernel (faults, page allocations, madvise, TLB
flushes, RCU frees in softirq, markers), in the TGID + 5-flag layout."""

from __future__ import annotations

HEAD = """# tracer: nop
#
# entries-in-buffer/entries-written: 0/0   #P:2
#
#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION
#              | |           |       |   |||||     |         |
"""


def write_text(path: str, events: int) -> int:
    """Write about ``events`` event lines; returns the number written."""
    n, t = 0, 4263_000_000
    pfn_table, pfn_page = 0x104000, 0x200000
    base = 0x7F8539E00000
    task = "         python3-10837   (  10837) [001]"
    with open(path, "w") as f:
        f.write(HEAD)
        while n < events:
            table = pfn_table
            pfn_table += 1
            for page in range(512):
                t += 2
                addr = base + page * 4096
                f.write(f"{task} d.... {t // 1_000_000}.{t % 1_000_000:06d}: page_fault_user: "
                        f"address={addr:#x} ip=0x7f853a43ab03 error_code=0x6\n")
                if page == 0:
                    f.write(f"{task} ..... {t // 1_000_000}.{t % 1_000_000:06d}: mm_page_alloc: "
                            f"page=0000000021d1f9e0 pfn={table:#x} order=0 migratetype=0 "
                            f"gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP\n")
                    n += 1
                pfn_page += 1
                f.write(f"{task} ..... {t // 1_000_000}.{t % 1_000_000:06d}: mm_page_alloc: "
                        f"page=000000009cd4fc86 pfn={pfn_page:#x} order=0 migratetype=1 "
                        f"gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP\n")
                n += 2
            t += 10
            stamp = f"{t // 1_000_000}.{t % 1_000_000:06d}"
            f.write(f"{task} ..... {stamp}: sys_madvise(start: {base:#x}, len_in: 0x200000, "
                    f"behavior: 4)\n")
            f.write(f"{task} d..1. {stamp}: tlb_flush: pages:-1 reason:local MM shootdown (3)\n")
            f.write(f"{task} ..... {stamp}: sys_madvise -> 0x0\n")
            f.write(f"{task} ...1. {stamp}: tracing_mark_write: VmPTE: 72 kB step\n")
            t += 20_000
            f.write(f"          <idle>-0       (-------) [001] ..s1. {t // 1_000_000}."
                    f"{t % 1_000_000:06d}: mm_page_free: page=0000000021d1f9e0 pfn={table:#x} "
                    f"order=0\n")
            n += 5
            base += 2 << 20
    return n
