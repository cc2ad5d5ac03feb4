"""Hypothesis strategies for events of every kind, including foreign ones."""

from __future__ import annotations

from hypothesis import strategies as st

from replayer.traceio import Event
from replayer.vocab import KIND_BY_NAME, KINDS, KindSpec, KindTable

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

_U64 = st.one_of(st.integers(0, U64_MAX), st.integers(1 << 63, U64_MAX))
_PFN = st.integers(0, (1 << 63) - 1)
_CPU = st.integers(0, (1 << 16) - 1)
_TYPED = {
    "u64": _U64, "i64": st.integers(I64_MIN, (1 << 63) - 1), "pfn": _PFN,
    "count": st.integers(0, (1 << 32) - 1), "pid": st.integers(0, (1 << 32) - 1),
    "level": st.integers(0, 255), "str": st.text(max_size=12), "flag": st.booleans(),
    "cpus": st.lists(_CPU, max_size=4).map(tuple), "pfns": st.lists(_PFN, max_size=4).map(tuple),
    "any": values,
}


def typed(code: str):
    """Values of a vocabulary type code (``"u64?"``: also nil): what the reader admits."""
    base = _TYPED[code.rstrip("?")]
    return st.one_of(st.none(), base) if code.endswith("?") else base


def field_values(spec: KindSpec):
    """One value per field of ``spec``: typed where the vocabulary says, else anything."""
    codes = spec.types or ("any",) * len(spec.fields)
    return st.tuples(*(typed(c) for c in codes))


# A newer writer's table: one known kind with an extra field, and a kind we do not know.
FOREIGN = (
    KindSpec(1000, "table_refcount", ("pfn", "refs")),
)
EXTENDED_TABLE_ALLOC = KindSpec(5, "table_alloc",
                                ("mm", "level", "pfn", "addr", "inferred", "node"),
                                types=KIND_BY_NAME["table_alloc"].types + ("any",))


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
        fields = dict(zip(spec.fields, draw(field_values(spec))))
        out.append(Event(ts, spec.name, draw(st.integers(0, 511)), pid, comm, fields))
    return out
