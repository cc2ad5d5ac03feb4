"""The event vocabulary: every event kind, its integer id and its fields.

This module is the one list. The trace format writes it into each file's
header (the *kind table*), readers map a file's table back onto it by name,
and the replayer, the simulator, the importers and the UI import the ids from
here. Add a kind by appending to :data:`KINDS` with a new id; never renumber.

Every event row carries four common columns before its fields:
``kind``, ``ts`` (integer nanoseconds; stored as a delta inside a chunk),
``cpu`` and ``pid`` (``None`` when unknown). A task's ``comm`` travels beside
the row (see the format spec), not in it.

Enumerated fields (causes, paths, reasons) are short strings, so a file stays
readable without this module and a value added by a newer writer is carried
through rather than rejected. Page-table ``level`` is an integer
(:data:`LEVEL_PTE` .. :data:`LEVEL_P4D`) because it is a number in the kernel
too.

Fields named ``inferred`` are ``True`` when the fact was derived by the
ftrace importer rather than observed directly, ``None`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: Number of common columns in an event row before the kind's own fields.
COMMON = ("kind", "ts", "cpu", "pid")
N_COMMON = len(COMMON)


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One event kind: its id, name and field names, in row order."""

    id: int
    name: str
    fields: tuple[str, ...]
    doc: str = ""
    #: One type code per field (see :data:`FIELD_TYPE_CODES`); empty: unchecked.
    types: tuple[str, ...] = ()

    def field_index(self, field: str) -> int:
        """Position of ``field`` within an event row (common columns included)."""
        return N_COMMON + self.fields.index(field)


#: Field value types, which the trace reader checks (``traceio/validate.py``) so
#: that nothing after it guards each use: ``u64``/``i64`` 64-bit ints; ``pfn``
#: 0..2**63-1 (table history is int64); ``count`` 0..2**32-1; ``pid``
#: 0..2**32-1; ``level`` 0..255; ``str``; ``flag`` a boolean; ``cpus``/``pfns``
#: arrays of CPU numbers (0..65535) / pfns; ``any`` anything msgpack holds.
#: A ``?`` suffix also admits nil.
FIELD_TYPE_CODES = ("u64", "i64", "pfn", "count", "pid", "level", "str", "flag", "cpus",
                    "pfns", "any")

# Page-table levels, numbered as the kernel counts them from the leaf up.
LEVEL_PTE, LEVEL_PMD, LEVEL_PUD, LEVEL_P4D = 1, 2, 3, 4
LEVEL_NAMES = {LEVEL_PTE: "pte", LEVEL_PMD: "pmd", LEVEL_PUD: "pud", LEVEL_P4D: "p4d"}
LEVELS_BY_NAME = {v: k for k, v in LEVEL_NAMES.items()}

# Enumerated string values. Readers accept any string; these are the ones
# ptviz itself writes and gives meaning to.
ZAP_CAUSES = ("dontneed", "free", "munmap", "exit", "collapse", "unshare", "other")
#: ``huge_zap``: a PTE table deposited under a huge PMD, freed with it when a zap
#: covers the whole PMD (zap_deposited_table). ``other``: the cause is not known.
DETACH_CAUSES = ("reclaim", "munmap", "exit", "collapse", "huge_zap", "other")
QUEUE_VIA = ("batch", "single")
SYNC_METHODS = ("ipi_broadcast", "ipi_targeted", "synchronize_rcu")
FREE_PATHS = ("rcu", "ipi_sync", "direct")
IPI_REASONS = ("tlb_shootdown", "table_sync", "resched", "call_function", "other")
WALKERS = ("gup_fast", "pte_offset_map", "other")
WALK_PROTECT = ("irq_off", "rcu")
# As the kernel's tlb:tlb_flush tracepoint prints them (TLB_FLUSH_REASON).
TLB_FLUSH_REASONS = (
    "flush on task switch",
    "remote shootdown",
    "local shootdown",
    "local mm shootdown",
    "remote ipi send",
)

KINDS: tuple[KindSpec, ...] = (
    KindSpec(1, "mm_new", ("mm", "tgid", "command"),
             "an address space appears (fork, exec)", ("u64", "pid?", "str?")),
    KindSpec(2, "mm_exit", ("mm",), "exit_mmap tears the address space down", ("u64",)),
    KindSpec(3, "zap_begin", ("mm", "start", "end", "cause", "inferred"),
             "a range [start, end) starts being zapped",
             ("u64?", "u64?", "u64?", "str?", "flag?")),
    KindSpec(4, "zap_end", ("mm", "start", "end", "cause", "inferred"),
             "the zap of [start, end) is done", ("u64?", "u64?", "u64?", "str?", "flag?")),
    KindSpec(5, "table_alloc", ("mm", "level", "pfn", "addr", "inferred"),
             "a page-table page of `level` is installed to cover `addr`",
             ("u64", "level", "pfn", "u64", "flag?")),
    KindSpec(6, "pte_set", ("mm", "pfn", "n", "inferred"),
             "n entries of PTE table `pfn` become present", ("u64?", "pfn", "count", "flag?")),
    KindSpec(7, "pte_clear", ("mm", "pfn", "n", "inferred"),
             "n entries of PTE table `pfn` become none", ("u64?", "pfn", "count", "flag?")),
    KindSpec(8, "table_detach", ("mm", "pfn", "cause", "inferred"),
             "the upper entry is cleared; the mm stops counting the table",
             ("u64?", "pfn", "str?", "flag?")),
    KindSpec(9, "table_queue", ("pfn", "via", "inferred"),
             "the table is handed to mmu_gather (batch page or single path)",
             ("pfn", "str?", "flag?")),
    KindSpec(10, "table_sync_begin", ("method", "targets"),
             "a writer starts syncing with lockless walkers", ("str?", "cpus?")),
    KindSpec(11, "table_sync_end", ("method",), "the walker sync completed", ("str?",)),
    KindSpec(12, "table_free", ("pfn", "path", "inferred"),
             "the page returns to the page allocator", ("pfn", "str?", "flag?")),
    KindSpec(13, "tlb_flush", ("mm", "start", "end", "pages", "reason"),
             "a TLB flush, reason as the tlb_flush tracepoint prints it",
             ("u64?", "u64?", "u64?", "i64?", "str?")),
    KindSpec(14, "ipi_send", ("targets", "reason", "callsite"),
             "an IPI is sent to the CPUs in `targets`", ("cpus?", "str?", "str?")),
    KindSpec(15, "ipi_enter", ("reason",), "the target CPU starts handling an IPI", ("str?",)),
    KindSpec(16, "ipi_exit", ("reason",), "the target CPU finished handling it", ("str?",)),
    KindSpec(17, "rcu_queue", ("cb", "func", "pfns"),
             "call_rcu of callback `cb` that will free tables `pfns`", ("u64", "str?", "pfns?")),
    KindSpec(18, "rcu_gp_start", ("gp",), "an RCU grace period starts", ("u64",)),
    KindSpec(19, "rcu_gp_end", ("gp",), "an RCU grace period ends", ("u64",)),
    KindSpec(20, "rcu_invoke", ("cb",), "the RCU callback runs", ("u64",)),
    KindSpec(21, "walk_begin", ("mm", "walker", "protect"),
             "a lockless page-table walker enters its critical section", ("u64?", "str?", "str?")),
    KindSpec(22, "walk_table", ("pfn",), "the walker dereferences table `pfn`", ("pfn",)),
    KindSpec(23, "walk_end", (), "the walker leaves its critical section", ()),
    KindSpec(24, "marker", ("text",), "a trace_marker write", ("str",)),
    KindSpec(25, "lost", ("count",), "the ring buffer dropped `count` events on this CPU",
             ("count?",)),
    KindSpec(26, "raw", ("name", "fields"),
             "an ftrace event with no mapping, kept as name + field map", ("str", "any")),
)

KIND_BY_ID: Mapping[int, KindSpec] = {k.id: k for k in KINDS}
KIND_BY_NAME: Mapping[str, KindSpec] = {k.name: k for k in KINDS}

# Integer ids as module constants, for hot paths (`kind == TABLE_ALLOC`).
MM_NEW = KIND_BY_NAME["mm_new"].id
MM_EXIT = KIND_BY_NAME["mm_exit"].id
ZAP_BEGIN = KIND_BY_NAME["zap_begin"].id
ZAP_END = KIND_BY_NAME["zap_end"].id
TABLE_ALLOC = KIND_BY_NAME["table_alloc"].id
PTE_SET = KIND_BY_NAME["pte_set"].id
PTE_CLEAR = KIND_BY_NAME["pte_clear"].id
TABLE_DETACH = KIND_BY_NAME["table_detach"].id
TABLE_QUEUE = KIND_BY_NAME["table_queue"].id
TABLE_SYNC_BEGIN = KIND_BY_NAME["table_sync_begin"].id
TABLE_SYNC_END = KIND_BY_NAME["table_sync_end"].id
TABLE_FREE = KIND_BY_NAME["table_free"].id
TLB_FLUSH = KIND_BY_NAME["tlb_flush"].id
IPI_SEND = KIND_BY_NAME["ipi_send"].id
IPI_ENTER = KIND_BY_NAME["ipi_enter"].id
IPI_EXIT = KIND_BY_NAME["ipi_exit"].id
RCU_QUEUE = KIND_BY_NAME["rcu_queue"].id
RCU_GP_START = KIND_BY_NAME["rcu_gp_start"].id
RCU_GP_END = KIND_BY_NAME["rcu_gp_end"].id
RCU_INVOKE = KIND_BY_NAME["rcu_invoke"].id
WALK_BEGIN = KIND_BY_NAME["walk_begin"].id
WALK_TABLE = KIND_BY_NAME["walk_table"].id
WALK_END = KIND_BY_NAME["walk_end"].id
MARKER = KIND_BY_NAME["marker"].id
LOST = KIND_BY_NAME["lost"].id
RAW = KIND_BY_NAME["raw"].id

#: Ids at or above this are never used by the vocabulary; readers give them
#: to kinds a file names that this version does not know.
FIRST_FOREIGN_ID = 1000


class KindTable:
    """Id ↔ :class:`KindSpec` for one file: the vocabulary plus foreign kinds.

    A file written by a newer ptviz may name kinds or fields this version does
    not know. Known kinds keep their vocabulary id and field order; fields the
    file adds are appended after ours. Unknown kinds get ids from
    :data:`FIRST_FOREIGN_ID` up. Writing the table back out reproduces every
    kind and field, so conversion carries them through.
    """

    __slots__ = ("by_id", "by_name", "_next_foreign")

    def __init__(self, specs: tuple[KindSpec, ...] = KINDS) -> None:
        self.by_id: dict[int, KindSpec] = {s.id: s for s in specs}
        self.by_name: dict[str, KindSpec] = {s.name: s for s in specs}
        self._next_foreign = max([FIRST_FOREIGN_ID - 1, *self.by_id]) + 1

    def __iter__(self):
        return iter(sorted(self.by_id.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self.by_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KindTable) and self.by_id == other.by_id

    def get(self, name: str) -> KindSpec | None:
        return self.by_name.get(name)

    def merge(self, name: str, fields: tuple[str, ...]) -> KindSpec:
        """Return the spec a file's kind maps to, registering what is new.

        Complexity: O(len(fields)).
        """
        known = self.by_name.get(name)
        if known is None:
            spec = KindSpec(self._next_foreign, name, fields)
            self._next_foreign += 1
        else:
            extra = tuple(f for f in fields if f not in known.fields)
            if not extra:
                return known
            spec = KindSpec(known.id, name, known.fields + extra, known.doc,
                            known.types + ("any",) * len(extra) if known.types else ())
        self.by_id[spec.id] = spec
        self.by_name[name] = spec
        return spec

    def to_header(self) -> list[list]:
        """The header's ``kinds`` entry: ``[[id, name, [field, ...]], ...]``."""
        return [[s.id, s.name, list(s.fields)] for s in self]

    def is_vocabulary(self) -> bool:
        """True when no foreign kind or field was merged in."""
        return all(KIND_BY_ID.get(s.id) == s for s in self.by_id.values())


# -- timeline classes ---------------------------------------------------------
#: What a per-CPU timeline shows for each kind, in the order of the counts
#: ``Replay.buckets`` returns. A foreign kind counts as "other".
TIMELINE_CLASSES = ("alloc", "fault", "zap", "detach", "free", "tlb", "ipi_send",
                    "ipi_recv", "rcu", "walker", "marker", "lost", "other",
                    # Not a kind's class: the replay gives these to the detach and the
                    # free of a PTE table PT_RECLAIM reclaimed, and of one that sat empty
                    # but attached (leaked) until munmap or exit took it.
                    "reclaim", "reclaim_free", "leak", "leak_free")
_CLASS_OF_NAME = {
    "table_alloc": "alloc", "pte_set": "fault", "zap_begin": "zap", "zap_end": "zap",
    "pte_clear": "zap", "table_detach": "detach", "table_queue": "detach",
    "table_free": "free", "tlb_flush": "tlb", "ipi_send": "ipi_send",
    "table_sync_begin": "ipi_send", "table_sync_end": "ipi_send", "ipi_enter": "ipi_recv",
    "ipi_exit": "ipi_recv", "rcu_queue": "rcu", "rcu_gp_start": "rcu", "rcu_gp_end": "rcu",
    "rcu_invoke": "rcu", "walk_begin": "walker", "walk_table": "walker",
    "walk_end": "walker", "marker": "marker", "lost": "lost",
}
TIMELINE_CLASS_OF_KIND: Mapping[int, int] = {
    k.id: TIMELINE_CLASSES.index(_CLASS_OF_NAME.get(k.name, "other")) for k in KINDS}
