"""Seeking by time reads only the chunks whose range overlaps the window."""

from hypothesis import given, strategies as st

from replayer.traceio import Event, TraceReader, TraceWriter


def write_sorted(path, n, chunk_events, step=7):
    evs = [Event(5000 + step * i, "marker", i % 4, 1, None, {"text": str(i)}) for i in range(n)]
    with TraceWriter(path, {"source": "test"}, chunk_events=chunk_events) as w:
        for e in evs:
            w.add_event(e)
    return evs


@given(n=st.integers(1, 400), chunk_events=st.integers(1, 50),
       a=st.integers(4000, 9000), width=st.integers(0, 800))
def test_seek_reads_only_needed_chunks(tmp_path_factory, n, chunk_events, a, width):
    path = tmp_path_factory.mktemp("seek") / "t.msgpack"
    evs = write_sorted(path, n, chunk_events)
    t0, t1 = a, a + width
    with TraceReader(path) as r:
        got = list(r.events(t0, t1))
        # Chunks are time-ordered and disjoint here, so exactly the ones that
        # hold an event in [t0, t1], plus at most one on each edge whose range
        # straddles the window without an event inside it.
        holding = {i // chunk_events for i, e in enumerate(evs) if t0 <= e.ts <= t1}
        assert holding <= set(r.chunk_span(t0, t1))
        assert r.chunks_read == len(r.chunk_span(t0, t1)) <= len(holding) + 2
        for i in r.chunk_span(t0, t1):
            c = r.chunks[i]
            assert c.max_ts >= t0 and c.min_ts <= t1
    assert got == [e for e in evs if t0 <= e.ts <= t1]


def test_seek_in_a_large_trace_reads_one_chunk(tmp_path):
    path = tmp_path / "big.msgpack"
    write_sorted(path, 100_000, 4096, step=10)
    with TraceReader(path) as r:
        assert len(r.chunks) == 25
        assert len(list(r.events(5000 + 10 * 50_000, 5000 + 10 * 50_010))) == 11
        assert r.chunks_read == 1


def test_unsorted_chunks_still_seek_correctly(tmp_path):
    path = tmp_path / "u.msgpack"
    stamps = [50, 10, 90, 20, 80, 30, 70, 40, 60]
    with TraceWriter(path, {}, chunk_events=2) as w:
        for t in stamps:
            w.add(t, 24, 0, None, (str(t),))
    with TraceReader(path) as r:
        assert sorted(e.ts for e in r.events(25, 65)) == [30, 40, 50, 60]
