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


#: What a table at a pfn may do next, by the stage it has reached (None: no table).
_NEXT = {None: ("table_alloc",), "attached": ("pte_set", "pte_set", "pte_clear", "table_detach",
                                              "table_queue"),
         "detached": ("table_queue", "rcu_queue", "table_free", "pte_clear", "pte_set"),
         "queued": ("rcu_queue", "table_free"), "rcu": ("table_free",)}
#: Rows between table steps: the ones the bulk path stops at, and the ones it runs around.
_AROUND = ("zap_begin", "zap_end", "marker", "mm_new", "rcu_invoke", "tlb_flush", "walk_begin",
           "walk_table", "walk_end", "rcu_gp_start", "rcu_gp_end", "ipi_send", "ipi_enter")


def _life_step(choose, kind: str, pfn: int, pfns: list, mm: int, odd: bool, stage: dict,
               present: dict, sizes: tuple, callbacks, out: list, row: tuple) -> tuple:
    """The fields of step ``kind`` of the table at ``pfn`` (``stage`` and ``present``
    follow it; a free of a table with entries has them cleared first, into ``out`` at
    ``row`` = (ts, cpu, pid), unless ``odd``): returns (kind, fields)."""
    if kind == "table_alloc":
        stage[pfn], present[pfn] = "attached", 0
        return kind, (mm, choose((1, 1, 1, 2)), pfn, pfn << 21, choose((None, True)))
    if kind in ("pte_set", "pte_clear"):
        n = choose(sizes) if kind == "pte_set" else \
            (min(present[pfn], choose(sizes)) if not odd else 600)
        present[pfn] = max(0, present[pfn] + (n if kind == "pte_set" else -n))
        return kind, (mm, pfn, n, None)
    if kind == "table_detach":
        stage[pfn] = "detached"
        return kind, (mm, pfn, choose(("reclaim", "munmap", "exit", "collapse", "other")), None)
    if kind == "table_queue":
        if stage[pfn] == "detached":
            stage[pfn] = "queued"
        return kind, (pfn, choose(("batch", "single")), None)
    if kind == "rcu_queue":
        stage[pfn] = "rcu"
        return kind, (choose(callbacks), "tlb_remove_table_rcu",
                      (pfn,) + choose(((), (choose(pfns),))))
    if present[pfn] and not odd:
        ts, cpu, pid = row
        out.append((ts, v.KIND_BY_NAME["pte_clear"].id, cpu, pid, (mm, pfn, present[pfn], None)))
        present[pfn] = 0
    stage[pfn] = None
    return "table_free", (pfn, choose(("rcu", "ipi_sync", "direct")), None)


@st.composite
def lives(draw, max_events: int = 400) -> list[tuple[int, int, int, int, tuple]]:
    """Traces whose tables mostly live as the kernel runs them (allocated, filled,
    emptied, detached, queued, freed; pfns reused), with zaps, markers and walkers
    around them and now and then a step out of order: what the fast fold's bulk path
    applies, and what makes it hand a stretch back to the per-row handlers."""
    def choose(seq):
        return draw(st.sampled_from(seq))

    pfns = list(range(0x100, 0x100 + draw(st.integers(1, 24))))
    stage: dict[int, str | None] = dict.fromkeys(pfns)
    present = dict.fromkeys(pfns, 0)
    ts, out = 1000, []
    for _ in range(draw(st.integers(0, max_events))):
        ts += choose((0, 1, 7, 1000))
        cpu, pid = choose(range(4)), choose((1, 2, 3, None))
        mm = choose(MMS)
        if draw(st.integers(0, 99)) < 15:
            kind = choose(_AROUND)
            fields = {"zap_begin": (mm, 0, 1 << 21, "munmap", None),
                      "zap_end": (mm, 0, 1 << 21, "munmap", None), "marker": ("m",),
                      "mm_new": (mm, choose(range(1, 4)), "p"), "rcu_invoke": (0,),
                      "tlb_flush": (mm, 0, 1 << 21, 512, "local"),
                      "walk_begin": (mm, "gup_fast", "irq_off"), "walk_table": (choose(pfns),),
                      "walk_end": (), "rcu_gp_start": (0,), "rcu_gp_end": (0,),
                      "ipi_send": ((0, 1), "tlb_shootdown", "flush_tlb_mm_range"),
                      "ipi_enter": ("tlb_shootdown",)}[kind]
            out.append((ts, v.KIND_BY_NAME[kind].id, cpu, pid, fields))
            continue
        pfn = choose(pfns)
        odd = draw(st.integers(0, 99)) < 3          # a step the stage does not allow
        kind = choose(OPS[:7]) if odd else choose(_NEXT[stage[pfn]])
        kind, fields = _life_step(choose, kind, pfn, pfns, mm, odd, stage, present,
                                  (1, 3, 512), range(4), out, (ts, cpu, pid))
        out.append((ts, v.KIND_BY_NAME[kind].id, cpu, pid, fields))
    return out


@st.composite
def mixed(draw, max_events=250):
    """Every kind at once on one to four pfns and four CPUs, in random proportions:
    table lives (now and then a step out of order), walks, RCU callbacks and grace
    periods on repeated keys (one beyond int64), syncs, zaps by several tasks (and
    nil), markers, mm_new, losses, TLB flushes and IPIs: the traces that find where
    the fast fold's bulk paths and the per-row handlers part."""
    def choose(seq):
        return draw(st.sampled_from(seq))
    pfns = list(range(0x100, 0x100 + draw(st.integers(1, 4))))
    stage = dict.fromkeys(pfns)
    present = dict.fromkeys(pfns, 0)
    ts, out = 1000, []
    weights = draw(st.lists(st.integers(0, 5), min_size=7, max_size=7))
    cats = [c for c, w in zip(("table", "walk", "rcu", "sync", "zap", "bar", "misc"), weights)
            for _ in range(w)] or ["table"]
    for _ in range(draw(st.integers(0, max_events))):
        ts += choose((0, 0, 1, 7, 1000))
        cpu, pid = choose(range(4)), choose((1, 2, 3, None))
        mm = choose(MMS)
        cat = choose(cats)
        if cat == "walk":
            kind = choose(("walk_begin", "walk_table", "walk_table", "walk_end"))
            fields = {"walk_begin": (mm, "gup_fast", "irq_off"), "walk_table": (choose(pfns),),
                      "walk_end": ()}[kind]
        elif cat == "rcu":
            kind = choose(("rcu_queue", "rcu_invoke", "rcu_gp_start", "rcu_gp_end"))
            key = choose((0, 1, 2, (1 << 63) + 5))
            if kind == "rcu_queue":
                fields = (key, choose(("f", None)), choose((None, (), (choose(pfns),),
                                                            (choose(pfns), choose(pfns)))))
            else:
                fields = (key,)
        elif cat == "sync":
            kind = choose(("table_sync_begin", "table_sync_end"))
            fields = ("ipi_broadcast", (1, 2)) if kind == "table_sync_begin" else (
                choose(("ipi_broadcast", None)),)
        elif cat == "zap":
            kind = choose(("zap_begin", "zap_end"))
            fields = (mm, 0, 1 << 21, choose(("munmap", "exit")), None)
        elif cat == "bar":
            kind = choose(("marker", "mm_new"))
            fields = ("m",) if kind == "marker" else (mm, choose(range(1, 4)), "p")
        elif cat == "misc":
            kind = choose(("lost", "mm_exit", "tlb_flush", "ipi_send", "ipi_enter"))
            fields = {"lost": (choose((1, None)),), "mm_exit": (mm,),
                      "tlb_flush": (mm, 0, 1 << 21, 512, "local"),
                      "ipi_send": ((0, 1), "tlb_shootdown", "x"),
                      "ipi_enter": ("tlb_shootdown",)}[kind]
        else:
            pfn = choose(pfns)
            odd = draw(st.integers(0, 99)) < 4
            kind = choose(OPS[:7]) if odd else choose(_NEXT[stage[pfn]])
            kind, fields = _life_step(choose, kind, pfn, pfns, mm, odd, stage, present,
                                      (1, 3), range(3), out, (ts, cpu, pid))
        out.append((ts, v.KIND_BY_NAME[kind].id, cpu, pid, fields))
    return out
