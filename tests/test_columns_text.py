"""The words and struct column encoders (a raw event's payload text and its map) make
what a text at a time made, and the bulk writer cuts a chunk where a pid's comm changes
without going back to an add per event."""

from itertools import chain

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from replayer.traceio import TraceWriter
from replayer.traceio.columns import _ints, encode_column, int_array_column, int_column
from replayer.traceio.columns_text import (_WORDS_WORTH, decode_words, encode_struct,
                                           encode_words)
from replayer.traceio.tasks import Lists
from tests.conftest import LONG

# Spaces alone, doubled, leading and trailing, empty texts, non-ASCII and digits: what
# splitting on single spaces must give back exactly.
TEXTS = st.lists(st.text(alphabet=" ab=0xé\t", max_size=12), max_size=40)


def words_one_text_at_a_time(values):
    """encode_words as it was: each text split on its own."""
    split = [v.split(" ") for v in values]
    words = list(chain.from_iterable(split))
    distinct = dict.fromkeys(words)
    size = sum(map(len, distinct)) + 2 * len(words) + len(values)
    if size > _WORDS_WORTH * sum(map(len, values)):
        return None
    index = {w: i for i, w in enumerate(distinct)}
    return {"w": list(distinct), "c": int_column([index[w] for w in words]),
            "n": int_column([len(s) for s in split])}


@settings(max_examples=400 if LONG else 40)
@given(values=TEXTS, repeat=st.integers(1, 4))
def test_words_are_encoded_as_one_text_at_a_time_and_read_back(values, repeat):
    values = values * repeat            # repeats make words worth it more often
    packed = encode_words(values, int_array_column)
    assert packed == words_one_text_at_a_time(values)
    if packed is not None:
        n = len(values)
        got = decode_words({"w": tuple(packed["w"]), "c": packed["c"], "n": packed["n"]},
                           n, _ints)()
        assert list(got) == values


def test_payload_texts_of_many_events_are_words():
    values = [f"page=0x{i % 7:x} pfn=0x{i:x} order=0 migratetype=2 gfp_flags=GFP_KERNEL"
              for i in range(300)]
    packed = encode_column(values)
    assert set(packed) == {"w", "c", "n"}
    assert packed == words_one_text_at_a_time(values)


@settings(max_examples=200 if LONG else 25)
@given(maps=st.lists(st.dictionaries(st.sampled_from(["text", "a", 1]), st.text(max_size=3),
                                     max_size=2), min_size=1, max_size=12))
def test_struct_columns_are_encoded_as_key_by_key(maps):
    keys = tuple(maps[0])
    expect = None
    if all(type(k) is str for k in keys) and all(tuple(m) == keys for m in maps):
        expect = {"k": list(keys), "f": [encode_column([m[k] for m in maps]) for k in keys]}
    assert encode_struct(maps, encode_column) == expect


def first_change_by_add(pids, comms, had):
    seen = dict(had)
    for i, (pid, comm) in enumerate(zip(pids, comms)):
        if pid in seen and seen[pid] != comm:
            return i
        seen.setdefault(pid, comm)
    return None


@settings(max_examples=300 if LONG else 40)
@given(pairs=st.lists(st.tuples(st.sampled_from([None, 1, 2, 3]),
                                st.sampled_from([None, "a", "b"])), min_size=1, max_size=20),
       had=st.dictionaries(st.sampled_from([None, 1, 2]), st.sampled_from([None, "a", "b"])))
def test_the_first_change_of_comm_is_where_add_cuts_the_chunk(pairs, had):
    pids, comms = map(list, zip(*pairs))
    expect = first_change_by_add(pids, comms, had)
    lists = Lists(pids, comms)
    if expect is not None:
        assert lists.first_change(had) == expect
    else:
        assert lists.pairs() is not None


@pytest.mark.parametrize("chunk_events", [3, 16, 1000])
def test_a_comm_change_inside_a_slice_stays_on_the_bulk_path(tmp_path, monkeypatch,
                                                             chunk_events):
    """Bytes equal to an add per event; no event goes through add one at a time."""
    n = 200
    ts = np.arange(n, dtype=np.int64) * 10 + 1000
    kinds = np.full(n, 24, np.int64)                # markers
    cpus = (np.arange(n) % 2).astype(np.int64)
    pids = [i % 3 for i in range(n)]
    comms = ["old" if i < 77 or i % 3 else "new" for i in range(n)]  # pid 0 execs at 78
    fields = [(f"m{i % 5}",) for i in range(n)]
    with TraceWriter(tmp_path / "add.msgpack", {"source": "t"}, chunk_events=chunk_events) as w:
        for row in zip(ts.tolist(), kinds.tolist(), cpus.tolist(), pids, fields, comms):
            w.add(*row[:4], row[4], row[5])
    monkeypatch.setattr(TraceWriter, "add", lambda *a, **k: pytest.fail("added one by one"))
    with TraceWriter(tmp_path / "bulk.msgpack", {"source": "t"},
                     chunk_events=chunk_events) as w:
        w.add_columns(ts, kinds, cpus, pids, fields, comms)
    assert (tmp_path / "add.msgpack").read_bytes() == (tmp_path / "bulk.msgpack").read_bytes()
