"""Format v2 (columns) holds exactly what v1 (a row per event) holds; conversion
between them is exact both ways; damaged columns are one line, never a traceback."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tests.tracefuzz as tracefuzz
from ptviz.cli import main
from replayer.errors import CorruptTrace
from replayer.replay import Replay
from replayer.report import build_report
from replayer.traceio import TraceReader, TraceWriter
from replayer.traceio.rewrite import rewrite
from tests.conftest import LONG
from tests.strategies import events, kind_table
from tests.test_replay_seek import write as write_rows
from tests.tracegen import traces


def write(path, evs, table, chunk_events, version):
    with TraceWriter(path, {"source": "test", "cpus": 4}, kinds=table,
                     chunk_events=chunk_events, version=version) as w:
        for e in evs:
            w.add_event(e)


def chunks_of(path):
    with TraceReader(path) as r:
        return r.version, [(list(c.rows), list(c.timestamps()), c.comms)
                           for c in map(r.read_chunk, range(len(r.chunks)))]


@settings(max_examples=200 if LONG else 15)
@given(data=st.data(), foreign=st.booleans(), chunk_events=st.integers(1, 17))
def test_v1_and_v2_hold_the_same_rows_and_convert_exactly(tmp_path_factory, data, foreign,
                                                          chunk_events):
    table = kind_table(foreign)
    evs = data.draw(events(table))
    d = tmp_path_factory.mktemp("v2")
    write(d / "v1.msgpack", evs, table, chunk_events, 1)
    write(d / "v2.msgpack", evs, table, chunk_events, 2)
    v1, v2 = chunks_of(d / "v1.msgpack"), chunks_of(d / "v2.msgpack")
    assert (v1[0], v2[0]) == (1, 2)
    assert v1[1] == v2[1]
    with TraceReader(d / "v1.msgpack") as r:
        rewrite(r, d / "up.msgpack", 2)
    with TraceReader(d / "up.msgpack") as r:
        rewrite(r, d / "down.msgpack", 1)
    assert (d / "up.msgpack").read_bytes() == (d / "v2.msgpack").read_bytes()
    assert (d / "down.msgpack").read_bytes() == (d / "v1.msgpack").read_bytes()


@settings(max_examples=200 if LONG else 15)
@given(events=traces(max_events=120), chunk_events=st.integers(1, 30))
def test_a_replay_of_v2_equals_a_replay_of_v1(tmp_path_factory, events, chunk_events):
    d = tmp_path_factory.mktemp("rep")
    with TraceWriter(d / "v1.msgpack", {"source": "test", "cpus": 4}, version=1,
                     chunk_events=chunk_events) as w:
        for ts, kind, cpu, pid, fields in events:
            w.add(ts, kind, cpu, pid, fields)
    write_rows(d / "v2.msgpack", events, chunk_events)
    with Replay.load(d / "v1.msgpack") as a, Replay.load(d / "v2.msgpack") as b:
        assert a.final == b.final
        ra, rb = build_report(a), build_report(b)
        for r in (ra, rb):
            del r["trace"]
        assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)


def test_repeated_strings_and_small_numbers_make_v2_smaller(tmp_path):
    """Causes and reasons repeat: a dictionary per chunk; deltas and CPUs fit a byte."""
    evs = [(1000 + 10 * i, 8, i % 4, 7, (0xffff888000000000, 0x1000 + i, "reclaim", None))
           for i in range(5000)]
    sizes = {}
    for version in (1, 2):
        path = tmp_path / f"v{version}.msgpack"
        with TraceWriter(path, {"source": "test"}, version=version, chunk_events=4096) as w:
            for ts, kind, cpu, pid, fields in evs:
                w.add(ts, kind, cpu, pid, fields, "app")
        sizes[version] = path.stat().st_size
    assert chunks_of(tmp_path / "v1.msgpack")[1] == chunks_of(tmp_path / "v2.msgpack")[1]
    assert sizes[2] < 0.7 * sizes[1], sizes


TABLE_LIFE = [(1000 + i, k, 0, 7, f) for i, (k, f) in enumerate(
    [(5, (0xA000, 1, 0x10, 0, None)), (6, (0xA000, 0x10, 3, None)),
     (8, (0xA000, 0x10, "reclaim", None)), (23, ()), (12, (0x10, "rcu", None))] * 4)]


def _damaged(tmp_path, damage, events=TABLE_LIFE):
    """A v2 trace of ``events`` whose first chunk's columns went through ``damage``."""
    original = tracefuzz._columns

    def columns(rows):
        body = original(rows)
        damage(body)
        return body
    plan = tracefuzz.Plan(events, 20, version=2)
    tracefuzz._columns = columns
    try:
        data = plan.encode()
    finally:
        tracefuzz._columns = original
    path = tmp_path / "bad.msgpack"
    path.write_bytes(data)
    return path


def _set_field(kind, j, value):
    def damage(body):
        for entry in body[4]:
            if entry[0] == kind:
                entry[1][j] = value
    return damage


DAMAGE = [
    (lambda b: b.__setitem__(2, b"B\x00"), "holds 1 values for 20 rows"),
    (lambda b: b.__setitem__(1, b"Z" + bytes(20)), "unknown type byte"),
    (lambda b: b.__setitem__(0, ["x"] * 20), "kind column is not integers"),
    (lambda b: b.__setitem__(4, b[4][1:]), "has rows but no fields entry"),
    (lambda b: b[4].append([24, [["hi"]]]), "no rows here"),
    (_set_field(8, 2, b"B" + bytes(4)), "is int, not str"),
    (_set_field(8, 2, {"d": ["reclaim"], "c": b"B" + bytes([0, 0, 0, 5])}),
     "outside its dictionary"),
    (_set_field(6, 1, b"q" + (-5).to_bytes(8, "little", signed=True) * 4),
     "value -5 is outside"),
    (_set_field(6, 2, ["3", "3", "3", "3"]), "is str, not count"),
    # The stored type admits values outside the field's range: each end is checked.
    (_set_field(6, 2, b"Q" + (1 << 40).to_bytes(8, "little") * 4),
     "value 1099511627776 is outside 0..4294967295"),
    (_set_field(6, 2, b"b" + bytes([3, 3, 0xFF, 3])), "value -1 is outside 0..4294967295"),
    (lambda b: b.__setitem__(4, "fields"), "not [kinds, dts, cpus, pids, fields]"),
    (lambda b: b.__setitem__(3, [7, None] * 9 + [1 << 33, None]),
     "pid value 8589934592 is outside"),
    (lambda b: b.__setitem__(3, [7, None] * 9 + ["7", None]), "pid is str"),
    # A pid column with nils is a dictionary: its values are checked once each.
    (lambda b: b.__setitem__(3, {"d": [7, None, 1 << 33], "c": b"B" + bytes([0, 1] * 10)}),
     "pid value 8589934592 is outside"),
    (lambda b: b.__setitem__(3, {"d": [7, "x"], "c": b"B" + bytes([0, 1] * 10)}),
     "pid is str"),
]


def test_pids_with_nils_are_stored_once_each_and_read_back(tmp_path):
    """Softirq RCU callbacks have no task: their nil pids beside the tasks' make a
    dictionary column (checked per distinct pid, not per row), read back exactly."""
    evs = [(1000 + i, 20, 0, None if i % 3 else 4242, (i,)) for i in range(300)]
    path = tmp_path / "t.msgpack"
    with TraceWriter(path, {"source": "test"}, version=2) as w:
        for ts, kind, cpu, pid, fields in evs:
            w.add(ts, kind, cpu, pid, fields, "app")
    with TraceReader(path) as r:
        chunk = r.read_chunk(0)
        assert chunk.pids_at(np.arange(len(evs))).codes is not None
        assert [row[3] for row in chunk.rows] == [e[3] for e in evs]


IPIS = [(1000 + i, 14, 0, 7, (targets, "tlb", None)) for i, targets in
        enumerate([(1, 2), (3,), None, (0, 1)] * 3)]
IPI_DAMAGE = [
    (_set_field(14, 0, [(1, 2), (3, 70000), None, (0, 1)] * 3),
     "holds a value that value 70000 is outside 0..65535"),
    (_set_field(14, 0, [(1, 2), (3, "x"), None, (0, 1)] * 3), "holds a value that is str"),
    (_set_field(14, 0, [(1, 2), "3", None, (0, 1)] * 3), "is not an array (str)"),
]


@pytest.mark.parametrize("damage,words", IPI_DAMAGE)
def test_damaged_arrays_of_cpus_are_one_line(tmp_path, damage, words):
    with pytest.raises(CorruptTrace) as exc:
        with TraceReader(_damaged(tmp_path, damage, IPIS)) as r:
            r.read_chunk(0)
    assert words in str(exc.value), str(exc.value)


@pytest.mark.parametrize("damage,words", DAMAGE)
def test_damaged_columns_are_one_line(tmp_path, capsys, damage, words):
    path = _damaged(tmp_path, damage)
    with pytest.raises(CorruptTrace) as exc:
        with TraceReader(path) as r:
            r.read_chunk(0)
    assert words in str(exc.value) and "chunk 0" in str(exc.value)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "malformed event columns" in err and str(path) in err


def test_convert_upgrades_and_downgrades(tmp_path, capsys):
    sample = "traces/real-6.18-x86_64-vmpte-steps.msgpack"   # recorded as v1
    up, down = tmp_path / "up.msgpack", tmp_path / "down.msgpack"
    assert main(["convert", sample, str(up)]) == 0
    assert main(["convert", str(up), str(down), "--format-version", "1"]) == 0
    with open(sample, "rb") as f:
        assert down.read_bytes() == f.read()
    assert up.stat().st_size < down.stat().st_size
    capsys.readouterr()
    assert main(["replay", "--json", sample]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["replay", "--json", str(up)]) == 0
    after = json.loads(capsys.readouterr().out)
    for r in (before, after):
        r["trace"].pop("path", None)
    assert before == after
    assert main(["convert", str(up), str(tmp_path / "again.msgpack")]) == 2
    assert "already a ptviz trace of format version 2" in capsys.readouterr().err
    assert not (tmp_path / "again.msgpack").exists()


def test_raw_payload_texts_are_stored_as_words(tmp_path):
    """An import's raw events keep their ftrace text; v2 stores each distinct word
    once per chunk, and gives every text back exactly (odd spacing included)."""
    texts = [f"page=00000000{i:08x} pfn=0x{0x198000 + i:x} order={i % 2} migratetype=2 "
             f"gfp_flags=__GFP_RECLAIMABLE|__GFP_IO|__GFP_FS|__GFP_NOWARN" for i in range(3000)]
    texts[5] = "  two  spaces, a trailing one "
    texts[6] = ""
    evs = [(1000 + i, 26, i % 2, 7, ("mm_page_alloc" if i % 3 else "kmem_cache_free",
                                    {"text": t})) for i, t in enumerate(texts)]
    sizes = {}
    for version in (1, 2):
        path = tmp_path / f"v{version}.msgpack"
        with TraceWriter(path, {"source": "test"}, version=version) as w:
            w.add_many((ts, k, c, p, f, "cc1") for ts, k, c, p, f in evs)
        sizes[version] = path.stat().st_size
    assert chunks_of(tmp_path / "v1.msgpack")[1] == chunks_of(tmp_path / "v2.msgpack")[1]
    assert sizes[2] < 0.6 * sizes[1], sizes


WORDS = {"w": ["a", "b"], "c": b"B\x00\x01\x00", "n": b"B\x02\x01"}


@pytest.mark.parametrize("column,words", [
    ({**WORDS, "c": b"B\x00\x05\x00"}, "outside its words"),
    ({**WORDS, "n": b"B\x02\x00"}, "a text of no words"),
    ({**WORDS, "w": ["a", 1]}, "not [words], codes, counts"),
    ({"k": ["text", "text"], "f": [["x", "y"], ["x", "y"]]}, "not distinct strings"),
    ({"k": ["text"], "f": [["x"]]}, "holds 1 values for 2 rows"),
])
def test_damaged_words_and_struct_columns_are_one_line(tmp_path, capsys, column, words):
    """Two raw events whose fields column is the damaged one."""
    def damage(body):
        body[4] = [e for e in body[4] if e[0] != 26] + [[26, [["mm_page_alloc", "x"], column]]]
    events = [(1000, 5, 0, 7, (0xA000, 1, 0x10, 0, None)), (1001, 23, 0, 7, ())]
    events += [(1002 + i, 26, 0, 7, ("mm_page_alloc", {"text": "a b"})) for i in range(2)]
    path = _damaged(tmp_path, damage, events)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and str(path) in err


# -- found in review ---------------------------------------------------------------
def test_convert_keeps_chunks_larger_than_the_default(tmp_path):
    with TraceWriter(tmp_path / "v1.msgpack", {"source": "t"}, chunk_events=5000,
                     version=1) as w:
        w.add_many((1000 + i, 24, 0, 1, (f"m{i}",), None) for i in range(5000))
    with TraceReader(tmp_path / "v1.msgpack") as r:
        rewrite(r, tmp_path / "v2.msgpack", 2)
    with TraceReader(tmp_path / "v2.msgpack") as r:
        assert [c.count for c in r.chunks] == [5000]
        rewrite(r, tmp_path / "back.msgpack", 1)
    assert (tmp_path / "back.msgpack").read_bytes() == (tmp_path / "v1.msgpack").read_bytes()


def test_maps_nested_deeper_than_structs_may_go_are_still_written_readably(tmp_path):
    def nest(depth, leaf):
        return {"x": nest(depth - 1, leaf)} if depth else leaf
    evs = [(1000 + i, 26, 0, 1, ("deep", nest(12, i)), None) for i in range(10)]
    with TraceWriter(tmp_path / "t.msgpack", {"source": "t"}) as w:
        w.add_many(evs)
    with TraceReader(tmp_path / "t.msgpack") as r:
        assert [row[4:] for row in r.read_chunk(0).rows] == [e[4] for e in evs]


def test_word_counts_that_wrap_a_64_bit_sum_are_refused():
    from replayer.traceio.columns import decode_column
    counts = np.array([2**63, 2**63, 1], "<u8").tobytes()
    with pytest.raises(ValueError):
        decode_column({"w": ("hello",), "c": b"B\x00", "n": b"Q" + counts}, 3)


def test_add_many_keeps_times_right_when_its_events_raise(tmp_path):
    def events():
        yield (1000, 24, 0, 1, ("a",), None)
        yield (5000, 24, 0, 1, ("b",), None)
        raise RuntimeError("producer failed")
    with TraceWriter(tmp_path / "t.msgpack", {"source": "t"}) as w:
        with pytest.raises(RuntimeError):
            w.add_many(events())
        w.add(7000, 24, 0, 1, ("c",))
    with TraceReader(tmp_path / "t.msgpack") as r:
        assert list(r.read_chunk(0).timestamps()) == [1000, 5000, 7000]


def test_boolean_ipi_targets_give_the_same_report_fast_and_reference(tmp_path):
    """v1 admits booleans where CPUs go (bool is an int); both folds keep them as is."""
    with TraceWriter(tmp_path / "t.msgpack", {"source": "t", "cpus": 1}, version=1) as w:
        w.add(1000, 14, 0, 1, ((True,), "tlb_shootdown", "x"))
        w.add(50_000_000, 24, 0, 1, ("end",))
    with Replay.load(tmp_path / "t.msgpack") as a, \
            Replay.load(tmp_path / "t.msgpack", reference=True) as b:
        assert json.dumps(build_report(a), sort_keys=True) == \
            json.dumps(build_report(b), sort_keys=True)
