"""Structure-aware fuzzing of ptviz traces: CRC-valid files whose contents are wrong.

A checksum proves the bytes are the ones written, not that the writer wrote the
right thing. These strategies build a coherent trace (the state-machine stories
of :mod:`tests.tracegen`), then damage its *meaning* before framing it, so
every frame still passes its CRC: wrong types and out-of-range values in the
header, rows, comms and chunk heads; footers that disagree with the chunks;
kind tables that lie; and, on top, a cut at any byte.
"""

from __future__ import annotations

import copy
import math
from collections import Counter

import msgpack
from hypothesis import strategies as st

from replayer.traceio import framing
from replayer.traceio.columns import encode_column
from replayer.vocab import N_COMMON, KindTable
from tests.story import X86_64
from tests.tracegen import traces

#: Values a careless or hostile writer puts where something else belongs.
weird = st.one_of(
    st.sampled_from([-1, -(1 << 63), (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 32, 65536,
                     0, 1.5, math.nan, math.inf, -math.inf, True, None, "", "0x10",
                     b"\x00\xff", (), (1, 2), ("a",), {}, {"a": 1}, ((1 << 64) - 1,)]),
    st.integers(-(1 << 63), (1 << 64) - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.binary(max_size=6),
    st.lists(st.integers(-3, 70000), max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=3), st.integers(-1, 3), max_size=2),
)

HEADER = {"format": framing.FORMAT_NAME, "version": 1, "source": "fuzz",
          "clock": "ns", "cpus": 4, "arch": dict(X86_64),
          "kernel": {"version": "6.14", "pt_reclaim": True}, "workload": {"name": "fuzz"},
          "kinds": KindTable().to_header()}
HEADER_KEYS = ("format", "version", "source", "clock", "cpus", "arch", "kernel", "workload",
               "kinds", "extra")
ARCH_KEYS = ("name", "page_size", "pte_size", "ptrs_per_pte", "pte_table_bytes",
             "pmd_table_bytes", "levels")
FOOTER_KEYS = ("chunks", "events", "first_ts", "last_ts", "kind_counts", "cpu_counts")


class Plan:
    """A trace before framing: header, chunks ``[base, lo, hi, count, comms, rows]``
    and footer, all plain mutable data. ``version`` 2 turns each chunk's rows into
    columns when framing (after the damage, so damaged values reach the columns)."""

    def __init__(self, events: list, chunk_events: int, version: int = 1) -> None:
        self.version = version
        self.header = copy.deepcopy(HEADER)
        self.header["version"] = version
        self.chunks: list[list] = []
        for start in range(0, len(events), chunk_events):
            part = events[start:start + chunk_events]
            rows, last = [], part[0][0]
            comms: dict = {}
            for ts, kind, cpu, pid, fields in part:
                rows.append([kind, ts - last, cpu, pid, *fields])
                last = ts
                if pid is not None:
                    comms[pid] = f"task-{pid}"
            stamps = [e[0] for e in part]
            self.chunks.append([part[0][0], min(stamps), max(stamps), len(rows),
                                [x for kv in comms.items() for x in kv], rows])
        kinds = Counter(e[1] for e in events)
        cpus = Counter(e[2] for e in events)
        self.footer = {"chunks": [], "events": len(events),
                       "first_ts": min((e[0] for e in events), default=None),
                       "last_ts": max((e[0] for e in events), default=None),
                       "kind_counts": sorted(map(list, kinds.items())),
                       "cpu_counts": sorted(map(list, cpus.items()))}
        self.cut: int | None = None
        self.fix_footer_index = True

    def encode(self) -> bytes:
        out = bytearray(framing.PREAMBLE.pack(framing.MAGIC, self.version))
        out += framing.encode_frame(framing.HEADER, _pack(self.header))
        index = []
        for chunk in self.chunks:
            index.append([len(out), chunk[1], chunk[2], chunk[3]])
            if self.version >= 2 and isinstance(chunk, list) and len(chunk) == 6 and \
                    isinstance(chunk[5], list):
                chunk = chunk[:5] + [_columns(chunk[5])]
            out += framing.encode_frame(framing.CHUNK, _pack(chunk))
        if self.fix_footer_index:
            self.footer["chunks"] = index
        footer_at = len(out)
        out += framing.encode_frame(framing.FOOTER, _pack(self.footer))
        out += framing.TRAILER.pack(footer_at, framing.END_MAGIC)
        return bytes(out if self.cut is None else out[:self.cut % (len(out) + 1)])


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _columns(rows: list) -> list:
    """Damaged rows as v2 columns, the way the writer lays them out, keeping the
    damage: a row too short leaves its columns short, one too long adds a column,
    a row that is not an array lands in the kinds column as it is."""
    def column(values):
        return encode_column(values)
    arrays = [r for r in rows if isinstance(r, (list, tuple))]
    kinds = [r[0] if isinstance(r, (list, tuple)) and r else r for r in rows]
    common = [column([r[j] for r in arrays if len(r) > j]) for j in (1, 2, 3)]
    by_kind: dict = {}
    for r in arrays:
        if len(r) > N_COMMON and isinstance(r[0], int):
            by_kind.setdefault(r[0], []).append(r[N_COMMON:])
    fields = []
    for kind, group in sorted(by_kind.items()):
        width = max(map(len, group))
        fields.append([kind, [column([g[j] for g in group if len(g) > j])
                              for j in range(width)]])
    # Kinds with rows but no fields (walk_end) need an entry with no columns.
    for kind in sorted({k for k in kinds if isinstance(k, int)} - set(by_kind)):
        fields.append([kind, []])
    return [column(kinds), *common, sorted(fields, key=lambda e: e[0])]


@st.composite
def damaged_traces(draw, max_events: int = 40) -> bytes:
    """A CRC-valid trace with 1 to 3 kinds of damage to its contents."""
    events = draw(traces(max_events=max_events))
    plan = Plan(events, draw(st.integers(1, 9)), version=draw(st.sampled_from((1, 2))))
    for _ in range(draw(st.integers(1, 3))):
        draw(st.sampled_from(MUTATIONS))(draw, plan)
    return plan.encode()


def _header_value(draw, plan: Plan) -> None:
    plan.header[draw(st.sampled_from(HEADER_KEYS))] = draw(weird)


def _arch_value(draw, plan: Plan) -> None:
    arch = plan.header.get("arch")
    if isinstance(arch, dict):
        arch[draw(st.sampled_from(ARCH_KEYS))] = draw(weird)


def _kind_table(draw, plan: Plan) -> None:
    kinds = plan.header["kinds"]
    if not isinstance(kinds, list) or not kinds:
        return
    i = draw(st.integers(0, len(kinds) - 1))
    how = draw(st.sampled_from(["id", "name", "fields", "entry", "duplicate", "reorder"]))
    if how != "entry" and not (isinstance(kinds[i], list) and len(kinds[i]) == 3):
        how = "entry"      # an earlier mutation already replaced this entry
    if how == "duplicate":
        kinds.append(list(kinds[i]))
    elif how == "reorder":
        entry = kinds[i]
        if isinstance(entry[2], (list, tuple)):  # an earlier mutation may have replaced it
            entry[2] = list(reversed(entry[2]))  # legal: rows then mean other fields
    elif how == "entry":
        kinds[i] = draw(weird)
    else:
        kinds[i][{"id": 0, "name": 1, "fields": 2}[how]] = draw(weird)


def _row_value(draw, plan: Plan) -> None:
    rows = _some_rows(draw, plan)
    if rows:
        row = rows[draw(st.integers(0, len(rows) - 1))]
        row[draw(st.integers(0, len(row) - 1))] = draw(weird)


def _row_field_range(draw, plan: Plan) -> None:
    """The common case of a buggy writer: an integer, but out of its field's range."""
    rows = _some_rows(draw, plan)
    if rows:
        row = rows[draw(st.integers(0, len(rows) - 1))]
        row[draw(st.integers(0, len(row) - 1))] = draw(st.sampled_from(
            [-1, -(1 << 40), 1 << 63, (1 << 64) - 1, 1 << 32, 70000, 256]))


#: Values at the edges of each type the reader admits: the engine must take them all.
EDGES = {
    "u64": [0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1], "i64": [-(1 << 63), -1, (1 << 63) - 1],
    "pfn": [0, (1 << 63) - 1], "count": [0, (1 << 32) - 1], "pid": [0, (1 << 32) - 1],
    "level": [0, 5, 255], "str": ["", "\x1b]0;title\x07", "a\nb"], "flag": [True, False],
    "cpus": [(), (0, 65535), tuple(range(64))], "pfns": [(), ((1 << 63) - 1, 0, 0)],
    "any": [None, b"\x00", {"k": (1, 2)}],
}
COMMON_EDGES = {1: [-(1 << 63), (1 << 63) - 1, 0], 2: [0, 65535], 3: [None, 0, (1 << 32) - 1]}


def _row_edge(draw, plan: Plan) -> None:
    """Legal but extreme: what an honest writer may produce on a strange machine."""
    from replayer.vocab import KIND_BY_ID
    rows = [r for r in _some_rows(draw, plan) if type(r[0]) is int and r[0] in KIND_BY_ID
            and len(r) == N_COMMON + len(KIND_BY_ID[r[0]].fields)]
    if not rows:
        return
    row = rows[draw(st.integers(0, len(rows) - 1))]
    j = draw(st.integers(1, len(row) - 1))
    if j < N_COMMON:
        row[j] = draw(st.sampled_from(COMMON_EDGES[j]))
    else:
        code = KIND_BY_ID[row[0]].types[j - N_COMMON]
        choices = EDGES[code.rstrip("?")] + ([None] if code.endswith("?") else [])
        row[j] = draw(st.sampled_from(choices))


def _row_shape(draw, plan: Plan) -> None:
    rows = _some_rows(draw, plan)
    if rows:
        i = draw(st.integers(0, len(rows) - 1))
        rows[i] = draw(st.one_of(
            st.just({"kind": rows[i][0]}), weird, st.just(rows[i][:N_COMMON - 1]),
            st.just(rows[i] + [0])))


def _comms(draw, plan: Plan) -> None:
    if plan.chunks and isinstance(plan.chunks[0], list):
        chunk = plan.chunks[draw(st.integers(0, len(plan.chunks) - 1))]
        chunk[4] = draw(st.one_of(weird, st.lists(weird, max_size=4)))


def _chunk_head(draw, plan: Plan) -> None:
    if plan.chunks:
        chunk = plan.chunks[draw(st.integers(0, len(plan.chunks) - 1))]
        chunk[draw(st.integers(0, 3))] = draw(weird)


def _footer(draw, plan: Plan) -> None:
    key = draw(st.sampled_from(FOOTER_KEYS))
    how = draw(st.sampled_from(["value", "entry", "count"]))
    if key == "chunks" and how != "value":
        plan.fix_footer_index = False
        index, at = [], 10
        for chunk in plan.chunks:          # a plausible index, then one value wrong
            index.append([at, chunk[1], chunk[2], chunk[3]])
            at += 1000
        if index:
            index[draw(st.integers(0, len(index) - 1))][draw(st.integers(0, 3))] = draw(weird)
        plan.footer["chunks"] = index
    elif key in ("kind_counts", "cpu_counts") and how == "count" and plan.footer[key] \
            and isinstance(plan.footer[key], list) \
            and all(isinstance(p, list) and len(p) == 2 for p in plan.footer[key]):
        pairs = plan.footer[key]
        pairs[draw(st.integers(0, len(pairs) - 1))][draw(st.integers(0, 1))] = draw(
            st.integers(-2, 70000))
    else:
        plan.footer[key] = draw(weird)


def _cut(draw, plan: Plan) -> None:
    plan.cut = draw(st.integers(0, 1 << 16))


def _some_rows(draw, plan: Plan) -> list:
    """The list-shaped rows of one chunk (earlier damage may have replaced some)."""
    chunks = [c for c in plan.chunks if isinstance(c, list) and len(c) == 6
              and isinstance(c[5], list) and any(isinstance(r, list) and r for r in c[5])]
    if not chunks:
        return []
    return [r for r in draw(st.sampled_from(chunks))[5] if isinstance(r, list) and r]


MUTATIONS = (_header_value, _arch_value, _kind_table, _row_value, _row_value, _row_field_range,
             _row_edge, _row_edge, _row_edge, _row_shape, _comms, _chunk_head, _footer,
             _footer, _cut)
