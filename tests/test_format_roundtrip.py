"""Writer → reader is exact for every kind, foreign kinds and 64-bit values."""

import io

from hypothesis import given, settings, strategies as st

from replayer.traceio import Event, TraceReader, TraceWriter
from replayer.vocab import KINDS, KindTable
from tests.conftest import LONG
from tests.strategies import EXTENDED_TABLE_ALLOC, events, kind_table


def write(path, evs, table, chunk_events):
    with TraceWriter(path, {"source": "test", "cpus": 4}, kinds=table,
                     chunk_events=chunk_events) as w:
        for e in evs:
            w.add_event(e)


@given(data=st.data(), foreign=st.booleans(), chunk_events=st.integers(1, 17))
def test_round_trip_is_exact(tmp_path_factory, data, foreign, chunk_events):
    table = kind_table(foreign)
    evs = data.draw(events(table))
    path = tmp_path_factory.mktemp("rt") / "t.msgpack"
    write(path, evs, table, chunk_events)
    with TraceReader(path) as r:
        assert r.warnings == []
        assert list(r.events()) == evs
        assert r.event_count == len(evs)
        by_kind, by_cpu = r.counts()
        assert sum(by_kind.values()) == len(evs)
        assert by_kind == {k: sum(e.kind == k for e in evs) for k in {e.kind for e in evs}}
        assert by_cpu == {c: sum(e.cpu == c for e in evs) for c in {e.cpu for e in evs}}


@given(data=st.data())
def test_foreign_kinds_survive_a_second_write(tmp_path_factory, data):
    """A reader's kind table written back out keeps kinds and fields it did not know."""
    table = kind_table(True)
    evs = data.draw(events(table, max_size=30))
    d = tmp_path_factory.mktemp("foreign")
    write(d / "a.msgpack", evs, table, 5)
    with TraceReader(d / "a.msgpack") as r:
        assert r.kinds.get("table_refcount").fields == ("pfn", "refs")
        assert r.kinds.get("table_alloc").fields == EXTENDED_TABLE_ALLOC.fields
        write(d / "b.msgpack", list(r.events()), r.kinds, 7)
    with TraceReader(d / "b.msgpack") as r2:
        assert list(r2.events()) == evs


def test_reordered_and_renumbered_kind_table_maps_by_name(tmp_path):
    """An older or foreign writer may number kinds and order fields differently."""
    from replayer.vocab import KindSpec, KindTable
    specs = (KindSpec(40, "table_free", ("inferred", "path", "pfn")),
             KindSpec(41, "pte_set", ("pfn", "mm", "n")))  # no "inferred" field at all
    table = KindTable(specs)
    with TraceWriter(tmp_path / "t.msgpack", {"source": "x"}, kinds=table) as w:
        w.add(10, 40, 0, 1, (True, "rcu", 0x1234))
        w.add(20, 41, 1, 2, (0x99, 7, 3))
    with TraceReader(tmp_path / "t.msgpack") as r:
        evs = list(r.events())
        chunk = r.read_chunk(0)
    assert evs[0].kind == "table_free"
    assert evs[0].fields == {"pfn": 0x1234, "path": "rcu", "inferred": True}
    assert evs[1].fields == {"mm": 7, "pfn": 0x99, "n": 3, "inferred": None}
    # Rows come out in the vocabulary's ids and field order, ready for the replayer.
    free = next(k for k in KINDS if k.name == "table_free")
    assert chunk.rows[0] == (free.id, 0, 0, 1, 0x1234, "rcu", True)


def test_writer_rejects_wrong_field_count():
    import pytest
    w = TraceWriter(io.BytesIO(), {})
    with pytest.raises(ValueError):
        w.add(0, KINDS[0].id, 0, None, (1,))


def test_comm_change_within_a_pid_is_kept_per_event(tmp_path):
    with TraceWriter(tmp_path / "t.msgpack", {}) as w:
        w.add(1, 24, 0, 5, ("a",), comm="bash")
        w.add(2, 24, 0, 5, ("b",), comm="python3")  # exec
        w.add(3, 24, 0, 5, ("c",), comm=None)
    with TraceReader(tmp_path / "t.msgpack") as r:
        assert [e.comm for e in r.events()] == ["bash", "python3", None]


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "out.msgpack"
    try:
        with TraceWriter(out, {}) as w:
            w.add(1, 24, 0, 5, ("a",))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_rows_too_large_for_one_frame_are_split(tmp_path, monkeypatch):
    """Long text fields (1 MiB ftrace lines) could make a chunk over the frame limit:
    the writer splits it, and every event reads back where it was."""
    from replayer.traceio import framing
    monkeypatch.setitem(framing.MAX_FRAME, framing.CHUNK, 3000)
    evs = [Event(1000 + 7 * i, "marker", i % 2, 5, "w", {"text": "x" * (300 + 50 * i)})
           for i in range(40)]
    write(tmp_path / "t.msgpack", evs, KindTable(), 4096)
    with TraceReader(tmp_path / "t.msgpack") as r:
        assert len(r.chunks) > 5 and list(r.events()) == evs
    one = [Event(1, "marker", 0, 5, "w", {"text": "y" * 4000})]
    import pytest
    with pytest.raises(ValueError, match="over the format's chunk limit"):
        write(tmp_path / "u.msgpack", one, KindTable(), 4096)
    assert not (tmp_path / "u.msgpack").exists()


@settings(max_examples=200 if LONG else 15)
@given(data=st.data(), chunk_events=st.integers(1, 9))
def test_add_many_writes_what_add_writes(tmp_path_factory, data, chunk_events):
    """The bulk path (the simulator's) makes the same bytes as one add per event,
    comm changes and full chunks included."""
    table = kind_table(False)
    evs = data.draw(events(table, max_size=40))
    d = tmp_path_factory.mktemp("many")
    write(d / "one.msgpack", evs, table, chunk_events)
    from replayer.traceio.events import event_fields
    with TraceWriter(d / "many.msgpack", {"source": "test", "cpus": 4}, kinds=table,
                     chunk_events=chunk_events) as w:
        rows = []
        for e in evs:
            kind, fields = event_fields(e, table)
            rows.append((e.ts, kind, e.cpu, e.pid, fields, e.comm))
        w.add_many(rows)
    assert (d / "one.msgpack").read_bytes() == (d / "many.msgpack").read_bytes()
