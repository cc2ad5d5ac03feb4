"""The column writers write the bytes the row and event writers wrote: JSON Lines
(ptviz/convert/jsonl_columns.py against the per-event writer) and ftrace text (against
tests/ftrace_text_reference.py), for any trace: every kind, foreign kinds and fields,
raw events, nil and odd values, non-ASCII and awkward comms, v1 and v2 chunks, whole
chunks and filtered batches, and JSON Lines input."""

import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ptviz.convert import chrome_columns, ftrace_text, jsonl_columns
from ptviz.convert.chrome import write_chrome
from ptviz.convert.jsonl import event_lines, lines_plan, read_jsonl, write_jsonl
from ptviz.convert.stream import Batch, Selection, from_reader
from replayer import vocab as v
from replayer.errors import UsageError
from replayer.traceio import Event, TraceReader, TraceWriter
from replayer.vocab import KindTable
from tests.conftest import LONG
from tests.ftrace_text_reference import reference_text
from tests.strategies import events, kind_table, values

COMMS = ("gcc", "naïve", "日本語", 'q"uo\\te', "100%d", "%s%%", "tab\there", "\x00\x1f",
         "", None, " lead", "<...>", "x-12 y", "two\nlines", "a:  b")


def reference(stream, batches) -> bytes:
    """What write_jsonl wrote before the column writer: every batch event by event."""
    out = io.BytesIO()
    real = jsonl_columns.batch_lines
    jsonl_columns.batch_lines = lambda batch, plan: None
    try:
        write_jsonl(stream, batches, out)
    finally:
        jsonl_columns.batch_lines = real
    return out.getvalue()


def written(stream, batches) -> bytes:
    out = io.BytesIO()
    write_jsonl(stream, batches, out)
    return out.getvalue()


@st.composite
def odd_traces(draw, table: KindTable):
    """strategies.events with awkward comms (a pid keeps one comm), and raw events
    whose maps hold anything; or on four CPUs, so that IPIs meet their handlers
    (Chrome JSON's arrows)."""
    out = []
    comm_of = {}
    few_cpus = draw(st.booleans())
    for e in draw(events(table, max_size=80)):
        comm = comm_of.setdefault(e.pid, draw(st.sampled_from(COMMS)))
        fields = e.fields
        if e.kind == "raw" and draw(st.booleans()):
            fields = {"name": draw(st.text(max_size=6)),
                      "fields": draw(st.dictionaries(st.text(max_size=4), values, max_size=3))}
        cpu = e.cpu % 4 if few_cpus else e.cpu
        if few_cpus:
            fields = {k: _few(k, x) for k, x in fields.items()}
        out.append(Event(e.ts, e.kind, cpu, e.pid, comm, fields))
    return out


def _few(key, x):
    """A field's value among a few (CPUs 0-3, pfns 0-7), so that events meet."""
    if key in ("targets", "pfns") and type(x) is tuple:
        return tuple(p % (4 if key == "targets" else 8) if type(p) is int else p for p in x)
    return x % 8 if key == "pfn" and type(x) is int else x


#: Kinds that draw Chrome JSON's arrows and lives, for traces of them only.
ARROWS = KindTable(tuple(k for k in v.KINDS if k.name in (
    "ipi_send", "ipi_enter", "ipi_exit", "table_alloc", "table_detach", "table_queue",
    "table_free", "pte_set", "pte_clear", "mm_new", "marker", "walk_begin")))


def write(path, evs, table, chunk_events, version):
    with TraceWriter(path, {"source": "test", "cpus": 4}, kinds=table,
                     chunk_events=chunk_events, version=version, force=True) as w:
        for e in evs:
            w.add_event(e)


#: Whole chunks (column batches); and cut ones: rows of a chunk (``rows_at``), and a
#: chunk's rows filtered (``Batch.only``).
TERMS = ("", "cpu=0-255", "kind=pte_set,raw,table_alloc,mm_new", "pid=")


@settings(max_examples=300 if LONG else 25)
@given(data=st.data(), foreign=st.booleans(), chunk_events=st.integers(1, 40),
       version=st.sampled_from((1, 2)), terms=st.sampled_from(TERMS))
def test_columns_write_the_bytes_events_do(tmp_path_factory, data, foreign, chunk_events,
                                           version, terms):
    table = kind_table(foreign)
    evs = data.draw(odd_traces(table))
    if terms == "pid=":
        pids = sorted({e.pid for e in evs if e.pid is not None})
        terms = f"pid={','.join(map(str, pids[::2]))}" if pids else ""
    selection = Selection(terms=terms)
    d = tmp_path_factory.mktemp("cols")
    write(d / "a.msgpack", evs, table, chunk_events, version)
    with TraceReader(d / "a.msgpack") as r:
        stream = from_reader(r)
        fast = written(stream, stream.rows(selection))
        assert fast == reference(stream, stream.rows(selection))
    # JSON Lines in (batches of rows, no chunk) and out again.
    (d / "a.jsonl").write_bytes(fast)
    with read_jsonl(str(d / "a.jsonl")) as stream:
        again = written(stream, stream.rows(Selection()))
        assert again == reference(stream, stream.rows(Selection()))
    if selection.everything:
        assert again == fast


@settings(max_examples=100 if LONG else 10)
@given(data=st.data(), chunk_events=st.integers(1, 40))
def test_vocabulary_traces_take_the_column_path(tmp_path_factory, data, chunk_events):
    """Values the reader checks never send a batch to the per-event writer."""
    table = KindTable(tuple(k for k in v.KINDS if k.name != "raw"))
    evs = data.draw(odd_traces(table))
    path = tmp_path_factory.mktemp("plain") / "a.msgpack"
    write(path, evs, table, chunk_events, 2)
    with TraceReader(path) as r:
        stream = from_reader(r)
        plan = lines_plan(stream.kinds)
        for batch in stream.rows(Selection()):
            lines = jsonl_columns.batch_lines(batch, plan)
            assert lines is not None
            assert lines == event_lines(batch, plan)


def _batch(rows, comms):
    return Batch(rows, [1000 + i for i in range(len(rows))], comms, range(len(rows)))


PTE_SET, RAW = v.KIND_BY_NAME["pte_set"].id, v.KIND_BY_NAME["raw"].id


@pytest.mark.parametrize("rows, comms", [
    # values a plain kind should not hold, which the per-event writer still writes
    ([(PTE_SET, 0, 1, 7, 1.5, 2, 3, None), (PTE_SET, 0, 1, 7, 1, 2, 3, True)], {7: "a"}),
    ([(PTE_SET, 0, 1, 7, float("nan"), 2, 3, None)], {7: "a"}),
    ([(PTE_SET, 0, True, 7, 1, 2, 3, None), (PTE_SET, 0, 1, 7, 1, 2, 3, None)], {7: "a"}),
    ([(PTE_SET, 0, 1, True, 1, 2, 3, None), (PTE_SET, 0, 1, 1, 1, 2, 3, None)],
     {1: "one", True: "one"}),
    ([(PTE_SET, 0, 1, 7, b"\x00", 2, 3, None)], {7: "a"}),
    ([(RAW, 0, 1, 7, "x", {1: 2, "a": [1.5, float("inf")]}), (RAW, 0, 2, None, "y", None)],
     {7: 3}),
    ([(RAW, 0, 1, 7, "x", (1, True)), (RAW, 0, 1, 7, "x", (1, 2)), (RAW, 0, 1, 7, "x", ())],
     {7: "a"}),
])
def test_odd_values_are_written_as_the_events_write_them(rows, comms):
    plan = lines_plan(KindTable())
    assert _lines(_batch(rows, comms), plan) == event_lines(_batch(rows, comms), plan)


@pytest.mark.parametrize("rows, comms", [
    ([(PTE_SET, 0, 1, 7, 1 << 64, 2, 3, None)], {7: "a"}),      # orjson: beyond 64 bits
    ([(PTE_SET, 0, 1, 7, 1, 2, 3, None)], {7: "\ud800"}),        # a lone surrogate
    ([(RAW, 0, 1, 7, "x", {"a": object()})], {}),
])
def test_what_the_events_cannot_write_fails_alike(rows, comms):
    plan = lines_plan(KindTable())
    with pytest.raises(TypeError) as by_events:
        event_lines(_batch(rows, comms), plan)
    with pytest.raises(TypeError) as by_columns:
        _lines(_batch(rows, comms), plan)
    assert str(by_columns.value) == str(by_events.value)


def _lines(batch, plan):
    """write_jsonl's choice for one batch."""
    lines = jsonl_columns.batch_lines(batch, plan)
    return lines if lines is not None else event_lines(batch, plan)


def _text_or_error(write, stream, selection):
    try:
        return write(stream, stream.rows(selection))
    except UsageError as exc:
        return f"UsageError: {exc}"


def _text(stream, batches):
    specs = stream.kinds.by_id
    templates = {spec.id: ftrace_text._template(spec) for spec in stream.kinds}
    return "".join(ftrace_text._lines(batch, specs, templates) for batch in batches)


@settings(max_examples=200 if LONG else 20)
@given(data=st.data(), foreign=st.booleans(), chunk_events=st.integers(1, 40),
       version=st.sampled_from((1, 2)), terms=st.sampled_from(TERMS))
def test_ftrace_text_from_columns_is_what_rows_made(tmp_path_factory, data, foreign,
                                                   chunk_events, version, terms):
    """ftrace text read from a chunk's columns with ``%`` templates: the lines the rows
    and ``str.format`` made (tests/ftrace_text_reference.py)."""
    table = kind_table(foreign)
    evs = data.draw(odd_traces(table))
    if terms == "pid=":
        pids = sorted({e.pid for e in evs if e.pid is not None})
        terms = f"pid={','.join(map(str, pids[::2]))}" if pids else ""
    path = tmp_path_factory.mktemp("text") / "a.msgpack"
    write(path, evs, table, chunk_events, version)
    with TraceReader(path) as r:
        stream = from_reader(r)
        selection = Selection(terms=terms)
        assert _text_or_error(_text, stream, selection) == \
            _text_or_error(reference_text, stream, selection)


def _chrome(stream, selection, by_rows: bool) -> bytes:
    out = io.BytesIO()
    window, flt = stream.resolve(selection)
    real = chrome_columns.batch_events
    if by_rows:
        chrome_columns.batch_events = lambda w, batch, keep: False
    try:
        write_chrome(stream, stream.marked(selection), out, None, [], window.t0, flt.mms)
    except (TypeError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}".encode()
    finally:
        chrome_columns.batch_events = real
    return out.getvalue()


@settings(max_examples=200 if LONG else 20)
@given(data=st.data(), foreign=st.booleans(), chunk_events=st.integers(1, 40),
       version=st.sampled_from((1, 2)), terms=st.sampled_from(TERMS + ("mm=",)),
       window=st.booleans())
def test_chrome_from_columns_is_what_rows_made(tmp_path_factory, data, foreign, chunk_events,
                                              version, terms, window):
    """Chrome JSON with the stateless events made from columns: the events
    ChromeWriter.row makes one by one, in a window or not, any filter."""
    table = data.draw(st.sampled_from((kind_table(foreign), ARROWS)))
    evs = data.draw(odd_traces(table))
    if terms == "pid=":
        pids = sorted({e.pid for e in evs if e.pid is not None})
        terms = f"pid={','.join(map(str, pids[::2]))}" if pids else ""
    if terms == "mm=":
        mms = sorted({e.fields["mm"] for e in evs if type(e.fields.get("mm")) is int})
        terms = f"mm={','.join(map(hex, mms[::2]))}" if mms else ""
    selection = Selection(terms=terms)
    if window and evs:
        stamps = sorted(e.ts for e in evs)
        selection.t0 = data.draw(st.sampled_from(stamps))
        selection.t1 = data.draw(st.sampled_from([t for t in stamps if t >= selection.t0]))
    path = tmp_path_factory.mktemp("chrome") / "a.msgpack"
    write(path, evs, table, chunk_events, version)
    with TraceReader(path) as r:
        stream = from_reader(r)
        assert _chrome(stream, selection, False) == _chrome(stream, selection, True)


RCU_QUEUE, TABLE_ALLOC = v.KIND_BY_NAME["rcu_queue"].id, v.KIND_BY_NAME["table_alloc"].id
ODD_CHROME_ROWS = [
    [(PTE_SET, 0, 1, 7, -1, 2, 3, None), (PTE_SET, 0, 1, 7, 1 << 70, 2, 3, True)],
    [(RCU_QUEUE, 0, 0, 7, -3, "f", (1, None, True, -2)), (RCU_QUEUE, 0, 65535, 7, 5, None, ())],
    [(RCU_QUEUE, 0, 0, None, 1 << 64, "f", (1 << 66,)), (PTE_SET, 0, 1, 7, 1.5, 2, 3, None)],
    [(RAW, 0, 1, 7, "x", {1: 2, "a": [1.5, float("inf")]}), (RAW, 0, 2, None, "y", b"\x00")],
    [(TABLE_ALLOC, 0, 1, 7, 1, 1, 10, 4096, None), (PTE_SET, 0, 1, 7, 1, 10, 3, None),
     (PTE_SET, 0, 2, 8, 1, 10, 1, None), (v.KIND_BY_NAME["pte_clear"].id, 0, 1, 7, 1, 10, 4, None)],
]


@pytest.mark.parametrize("rows", ODD_CHROME_ROWS)
@pytest.mark.parametrize("start", [0, -5000])
def test_odd_chrome_rows_are_what_the_writer_makes(rows, start):
    from types import SimpleNamespace
    stream = SimpleNamespace(kinds=KindTable(), header={})

    def make(by_rows):
        batch = Batch(rows, [start + 1000 * i for i in range(len(rows))], {7: "a", 8: None},
                      range(len(rows)))
        keep = np.ones(len(rows), bool)
        keep[1::3] = False
        out = io.BytesIO()
        real = chrome_columns.batch_events
        if by_rows:
            chrome_columns.batch_events = lambda w, batch, keep: False
        try:
            write_chrome(stream, [(batch, keep)], out)
        except TypeError as exc:
            return f"TypeError: {exc}".encode()
        finally:
            chrome_columns.batch_events = real
        return out.getvalue()
    assert make(False) == make(True)
