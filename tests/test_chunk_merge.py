"""Consecutive chunks merged into one (what a replay folds at once, and what a seek
folds from a checkpoint) hold exactly the rows, times and columns of their parts."""

import numpy as np
from hypothesis import example, given, settings, strategies as st

from replayer.traceio import TraceReader
from replayer.traceio.chunk import ChunkSlice, merge_chunks
from replayer.traceio.columns import Column, concat_columns
from tests.conftest import LONG
from tests.strategies import events, kind_table
from tests.test_format_v2 import write

_DTYPES = ("<i1", "<u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8")


@st.composite
def columns(draw):
    """A column of one form: integers of any stored type, a dictionary, or values."""
    form = draw(st.sampled_from(("ints", "ints", "dictionary", "values")))
    n = draw(st.integers(0, 6))
    if form == "ints":
        dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
        info = np.iinfo(dtype)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n,
                               max_size=n))
        return Column(ints=np.array(values, dtype))
    if form == "dictionary":
        # Strings, or a pid column's tasks with the kernel's nil among them.
        words = tuple(draw(st.one_of(
            st.lists(st.text(max_size=3), min_size=1, max_size=3),
            st.lists(st.one_of(st.none(), st.integers(0, 1 << 31)), min_size=1, max_size=3))))
        codes = draw(st.lists(st.integers(0, len(words) - 1), min_size=n, max_size=n))
        return Column(values=words, codes=np.array(codes, np.uint8))
    return Column(values=tuple(draw(st.lists(st.one_of(st.none(), st.integers(-5, 5),
                                                       st.text(max_size=2)),
                                             min_size=n, max_size=n))))


@settings(max_examples=400 if LONG else 50)
@given(parts=st.lists(columns(), min_size=1, max_size=5))
@example(parts=[Column(ints=np.array([1 << 63], np.uint64)), Column(ints=np.array([5], np.int8))])
@example(parts=[Column(ints=np.array([1 << 63], np.uint64)), Column(ints=np.array([-1], np.int8))])
@example(parts=[Column(ints=np.array([7], np.uint64)), Column(ints=np.array([-1], np.int64))])
def test_joined_columns_hold_every_value_in_order(parts):
    joined = concat_columns(parts)
    want = [x for p in parts for x in p.tolist()]
    assert joined.tolist() == want
    assert len(joined) == len(want)
    if all(p.ints is not None for p in parts):
        # Integers stay an array unless no 64-bit type holds them all.
        fits = all(-(1 << 63) <= x < 1 << 64 for x in want) and not (
            any(x < 0 for x in want) and any(x >= 1 << 63 for x in want))
        assert (joined.ints is not None) == fits
    if all(p.codes is not None or p.ints is not None for p in parts) and \
            any(p.codes is not None for p in parts):
        assert joined.codes is not None      # integers beside dictionaries join them



def test_joined_dictionaries_keep_values_that_only_compare_equal():
    """Parts whose dictionaries are equal share one; ``1 == True`` and ``0.0 == -0.0``
    are not the same value, so those keep their own."""
    same = concat_columns([Column(values=("a", None), codes=np.array([1, 0], np.uint8)),
                           Column(values=("a", None), codes=np.array([0], np.uint8))])
    assert same.tolist() == [None, "a", "a"]
    for a, b in ((1, True), (0.0, -0.0)):
        joined = concat_columns([Column(values=(a,), codes=np.zeros(2, np.uint8)),
                                 Column(values=(b,), codes=np.zeros(1, np.uint8))])
        assert [repr(x) for x in joined.tolist()] == [repr(a), repr(a), repr(b)]

def _chunks(path):
    with TraceReader(path) as reader:
        return [reader.read_chunk(c) for c in range(len(reader.chunks))]


@settings(max_examples=150 if LONG else 15)
@given(data=st.data(), foreign=st.booleans(), chunk_events=st.integers(1, 9),
       version=st.sampled_from((1, 2)))
def test_merged_chunks_hold_their_parts_rows_times_and_columns(tmp_path_factory, data,
                                                               foreign, chunk_events,
                                                               version):
    table = kind_table(foreign)
    evs = data.draw(events(table))
    path = tmp_path_factory.mktemp("merge") / "t.msgpack"
    write(path, evs, table, chunk_events, version)
    chunks = _chunks(path)
    if not chunks:
        return
    a = data.draw(st.integers(0, len(chunks) - 1))
    b = data.draw(st.integers(a + 1, len(chunks)))
    merged = merge_chunks(chunks[a:b])
    parts = _chunks(path)[a:b]          # fresh: reading rows ends a chunk's columns
    rows = [row for p in parts for row in p.rows]
    assert len(merged) == len(rows) == merged.info.count
    assert list(merged.timestamps()) == [t for p in parts for t in p.timestamps()]
    assert merged.kinds.tolist() == [r[0] for r in rows]
    assert merged.cpus.tolist() == [r[2] for r in rows]
    assert merged.info.min_ts == min(p.info.min_ts for p in parts)
    assert merged.info.max_ts == max(p.info.max_ts for p in parts)
    if merged.has_columns:
        for kind in {r[0] for r in rows}:
            for j in range(len(rows[[r[0] for r in rows].index(kind)]) - 4):
                want = [r[4 + j] for r in rows if r[0] == kind]
                assert merged.column(kind, j) == want
                ints = merged.int_column(kind, j)
                if ints is not None:
                    assert ints.tolist() == want
        at = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1)))), np.int64)
        assert list(merged.rows_at(at)) == [rows[i] for i in at.tolist()]
        lo = data.draw(st.integers(0, len(rows)))
        hi = data.draw(st.integers(lo, len(rows)))
        piece = ChunkSlice(merged, lo, hi)
        for kind in {r[0] for r in rows[lo:hi]}:
            want = [r[4] for r in rows[lo:hi] if r[0] == kind and len(r) > 4]
            if want:
                assert piece.column(kind, 0) == want
    assert list(merged.rows) == rows
