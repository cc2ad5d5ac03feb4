"""Random, loosely coherent page-table traces for property tests.

Operations pick pfns from a small pool so that reuse, double frees, frees of
attached tables and walkers holding freed tables all happen; the engine must
stay consistent whatever the order.
"""

from __future__ import annotations

from hypothesis import strategies as st

from replayer import vocab as v

PFNS = (0x10, 0x11, 0x12, 0x13, 0x14)
MMS = (0xA000, 0xB000)

_ops = st.sampled_from([
    "table_alloc", "pte_set", "pte_set", "pte_clear", "table_detach", "table_queue",
    "table_free", "rcu_queue", "rcu_gp_start", "rcu_gp_end", "rcu_invoke", "walk_begin",
    "walk_table", "walk_end", "ipi_send", "ipi_enter", "ipi_exit", "tlb_flush", "mm_new",
    "mm_exit", "marker", "lost", "zap_begin", "table_sync_begin", "table_sync_end", "raw",
])


def _fields(draw, kind: str) -> tuple:
    pfn = draw(st.sampled_from(PFNS))
    mm = draw(st.sampled_from(MMS))
    small = draw(st.integers(0, 3))
    cpus = tuple(draw(st.sets(st.integers(0, 3), max_size=3)))
    f = {
        "table_alloc": (mm, draw(st.sampled_from([1, 1, 2])), pfn, pfn << 21, None),
        "pte_set": (mm, pfn, draw(st.integers(1, 512)), None),
        "pte_clear": (mm, pfn, draw(st.integers(1, 512)), None),
        "table_detach": (mm, pfn, draw(st.sampled_from(["reclaim", "munmap", "exit",
                                                        "collapse"])), None),
        "table_queue": (pfn, draw(st.sampled_from(["batch", "single"])), None),
        "table_free": (pfn, draw(st.sampled_from(["rcu", "ipi_sync", "direct"])), None),
        "rcu_queue": (small, "tlb_remove_table_rcu",
                      tuple(draw(st.sets(st.sampled_from(PFNS), max_size=2)))),
        "rcu_gp_start": (small,), "rcu_gp_end": (small,), "rcu_invoke": (small,),
        "walk_begin": (mm, "gup_fast", "irq_off"), "walk_table": (pfn,), "walk_end": (),
        "ipi_send": (cpus, "tlb_shootdown", "flush_tlb_mm_range"),
        "ipi_enter": ("tlb_shootdown",), "ipi_exit": ("tlb_shootdown",),
        "tlb_flush": (mm, 0, 1 << 21, 512, "remote shootdown"),
        "mm_new": (mm, draw(st.integers(1, 3)), "p"), "mm_exit": (mm,),
        "marker": ("m",), "lost": (small,),
        "zap_begin": (mm, 0, 1 << 21, "dontneed", None),
        "table_sync_begin": ("ipi_broadcast", cpus), "table_sync_end": ("ipi_broadcast",),
        "raw": ("kmem:mm_page_alloc", {"order": 0}),
    }[kind]
    return f


@st.composite
def traces(draw, max_events: int = 120) -> list[tuple[int, int, int, int, tuple]]:
    """``[(ts, kind_id, cpu, pid, fields), ...]`` in time order (equal times happen)."""
    n = draw(st.integers(0, max_events))
    ts = 1000
    out = []
    for _ in range(n):
        kind = draw(_ops)
        ts += draw(st.sampled_from([0, 1, 10, 1000, 50_000_000]))
        out.append((ts, v.KIND_BY_NAME[kind].id, draw(st.integers(0, 3)),
                    draw(st.sampled_from([1, 2, 3, None])), _fields(draw, kind)))
    return out
