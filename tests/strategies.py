"""Hypothesis strategies for events of every kind, including foreign ones."""

from __future__ import annotations

from hypothesis import strategies as st

from replayer.traceio import Event
from replayer.vocab import KINDS, KindSpec, KindTable

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(I64_MIN, U64_MAX),
    st.integers(1 << 63, U64_MAX),  # pfns and addresses at the top of the range
    st.text(max_size=12), st.binary(max_size=8),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(tuple),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)

# A newer writer's table: one known kind with an extra field, and a kind we do not know.
FOREIGN = (
    KindSpec(1000, "table_refcount", ("pfn", "refs")),
)
EXTENDED_TABLE_ALLOC = KindSpec(5, "table_alloc",
                                ("mm", "level", "pfn", "addr", "inferred", "node"))


def kind_table(foreign: bool) -> KindTable:
    if not foreign:
        return KindTable()
    specs = tuple(EXTENDED_TABLE_ALLOC if k.name == "table_alloc" else k for k in KINDS)
    return KindTable(specs + FOREIGN)


@st.composite
def events(draw, table: KindTable, max_size: int = 60) -> list[Event]:
    specs = list(table)
    n = draw(st.integers(0, max_size))
    out = []
    sorted_ts = draw(st.booleans())
    ts = draw(st.integers(0, 1 << 40))
    for _ in range(n):
        spec = draw(st.sampled_from(specs))
        if sorted_ts:
            ts += draw(st.integers(0, 1 << 20))
        else:
            ts = draw(st.integers(0, (1 << 63) - 1))
        pid = draw(st.one_of(st.none(), st.integers(0, 1 << 22)))
        comm = draw(st.one_of(st.none(), st.sampled_from(["bash", "a b", "kworker/0:1"])))
        fields = {f: draw(values) for f in spec.fields}
        out.append(Event(ts, spec.name, draw(st.integers(0, 511)), pid, comm, fields))
    return out
