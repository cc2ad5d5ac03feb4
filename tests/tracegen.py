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

OPS = ("table_alloc", "pte_set", "pte_set", "pte_clear", "table_detach", "table_queue",
       "table_free", "rcu_queue", "rcu_gp_start", "rcu_gp_end", "rcu_invoke", "walk_begin",
       "walk_table", "walk_end", "ipi_send", "ipi_enter", "ipi_exit", "tlb_flush", "mm_new",
       "mm_exit", "marker", "lost", "zap_begin", "table_sync_begin", "table_sync_end", "raw")
STEPS = (0, 1, 10, 1000, 50_000_000)


def _fields(choose, subset, kind: str) -> tuple:
    """``choose(seq)``: one of ``seq``; ``subset(seq, k)``: at most k of them."""
    pfn = choose(PFNS)
    mm = choose(MMS)
    small = choose(range(4))
    cpus = subset(range(4), 3)
    f = {
        "table_alloc": lambda: (mm, choose((1, 1, 2)), pfn, pfn << 21, None),
        "pte_set": lambda: (mm, pfn, choose(range(1, 513)), None),
        "pte_clear": lambda: (mm, pfn, choose(range(1, 513)), None),
        "table_detach": lambda: (mm, pfn, choose(("reclaim", "munmap", "exit", "collapse")),
                                 None),
        "table_queue": lambda: (pfn, choose(("batch", "single")), None),
        "table_free": lambda: (pfn, choose(("rcu", "ipi_sync", "direct")), None),
        "rcu_queue": lambda: (small, "tlb_remove_table_rcu", subset(PFNS, 2)),
        "rcu_gp_start": lambda: (small,), "rcu_gp_end": lambda: (small,),
        "rcu_invoke": lambda: (small,),
        "walk_begin": lambda: (mm, "gup_fast", "irq_off"), "walk_table": lambda: (pfn,),
        "walk_end": lambda: (),
        "ipi_send": lambda: (cpus, "tlb_shootdown", "flush_tlb_mm_range"),
        "ipi_enter": lambda: ("tlb_shootdown",), "ipi_exit": lambda: ("tlb_shootdown",),
        "tlb_flush": lambda: (mm, 0, 1 << 21, 512, "remote shootdown"),
        "mm_new": lambda: (mm, choose(range(1, 4)), "p"), "mm_exit": lambda: (mm,),
        "marker": lambda: ("m",), "lost": lambda: (small,),
        "zap_begin": lambda: (mm, 0, 1 << 21, "dontneed", None),
        "table_sync_begin": lambda: ("ipi_broadcast", cpus),
        "table_sync_end": lambda: ("ipi_broadcast",),
        "raw": lambda: ("kmem:mm_page_alloc", {"order": 0}),
    }[kind]
    return f()


#: Walkers and IPIs, with enough tables for walks to hold and frees to race them.
WALKER_OPS = ("walk_begin", "walk_begin", "walk_table", "walk_end", "walk_end", "ipi_send",
              "ipi_enter", "ipi_enter", "ipi_exit", "table_alloc", "pte_set", "table_detach",
              "table_free", "tlb_flush")


def _event(choose, subset, ts: int, ops: tuple[str, ...] = OPS) -> tuple[int, tuple]:
    kind = choose(ops)
    ts += choose(STEPS)
    return ts, (ts, v.KIND_BY_NAME[kind].id, choose(range(4)), choose((1, 2, 3, None)),
                _fields(choose, subset, kind))


@st.composite
def traces(draw, max_events: int = 120, ops: tuple[str, ...] = OPS
           ) -> list[tuple[int, int, int, int, tuple]]:
    """``[(ts, kind_id, cpu, pid, fields), ...]`` in time order (equal times happen),
    of the kinds in ``ops`` (repeats weigh a kind)."""
    def choose(seq):
        return draw(st.sampled_from(seq))

    def subset(seq, k):
        return tuple(draw(st.sets(st.sampled_from(seq), max_size=k)))
    n = draw(st.integers(0, max_events))
    ts, out = 1000, []
    for _ in range(n):
        ts, event = _event(choose, subset, ts, ops)
        out.append(event)
    return out


def random_trace(n: int, seed: int) -> list[tuple[int, int, int, int, tuple]]:
    """The same kind of trace, of exactly ``n`` events, from a seeded generator (for
    fixtures larger than hypothesis draws at ease)."""
    import random
    rng = random.Random(seed)

    def subset(seq, k):
        return tuple(rng.sample(list(seq), rng.randint(0, k)))
    ts, out = 1000, []
    for _ in range(n):
        ts, event = _event(rng.choice, subset, ts)
        out.append(event)
    return out
