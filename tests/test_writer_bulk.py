"""TraceWriter.add_columns (the simulator's bulk path) writes what add writes."""

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ptviz.sim import machine
from ptviz.sim.run import simulate
from replayer.traceio import TraceWriter, fieldcodes
from replayer.traceio.bulk import _by_kind, _column, _counts
from replayer.traceio.columns import encode_column
from replayer.traceio.tasks import Coded, Lists, pid_column
from replayer.traceio.events import event_fields
from replayer.vocab import KindTable
from tests.conftest import LONG
from tests.strategies import events

HEADER = {"source": "test", "cpus": 4}


def rows_of(evs, table, pids, comms):
    """``(ts, kind, cpu, pid, fields, comm)`` of each event, with the pids and comms given."""
    return [(e.ts, *event_fields(e, table)[:1], e.cpu, pid, event_fields(e, table)[1], comm)
            for e, pid, comm in zip(evs, pids, comms)]


def by_add(path, rows, table, chunk_events, version):
    with TraceWriter(path, HEADER, kinds=table, chunk_events=chunk_events,
                     version=version) as w:
        for row in rows:
            w.add(*row)


def as_columns(rows):
    ts, kinds, cpus, pids, fields, comms = zip(*rows)
    return (np.array(ts, np.int64), np.array(kinds, np.int64), np.array(cpus, np.int64),
            list(pids), list(fields), list(comms))


def as_tasks(rows, table):
    """``rows`` as add_task_columns takes them: each (pid, comm) coded into ``table``
    (appended to as new pairs come; a pair already there may be added again)."""
    ts, kinds, cpus, pids, fields, comms = as_columns(rows)
    codes = []
    for pair in zip(pids, comms):
        if pair not in table or len(table) % 3 == 1:
            table.append(pair)
        codes.append(len(table) - 1 - table[::-1].index(pair))
    return ts, kinds, cpus, np.array(codes, np.int64), table, fields


@settings(max_examples=300 if LONG else 20)
@given(data=st.data(), chunk_events=st.integers(1, 9), version=st.sampled_from([1, 2]))
def test_add_columns_writes_what_add_writes(tmp_path_factory, data, chunk_events, version):
    """Bytes equal, whatever the cuts between calls, with add and add_many between them,
    pids whose comm changes (a chunk cut there), and times whose deltas leave int64; pids
    and comms given as lists or as tasks (add_task_columns)."""
    table = KindTable()
    evs = data.draw(events(table, max_size=40))
    # Few pids and comms, so that a pid's comm changes now and then.
    pids = data.draw(st.lists(st.sampled_from([None, 1, 2, 3]), min_size=len(evs),
                              max_size=len(evs)))
    comms = data.draw(st.lists(st.sampled_from([None, "a", "b"]), min_size=len(evs),
                               max_size=len(evs)))
    rows = rows_of(evs, table, pids, comms)
    d = tmp_path_factory.mktemp("bulk")
    by_add(d / "one.msgpack", rows, table, chunk_events, version)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    tasks: list = []
    with TraceWriter(d / "cols.msgpack", HEADER, kinds=table, chunk_events=chunk_events,
                     version=version) as w:
        for a, b in zip([0] + cuts, cuts + [len(rows)]):
            how = data.draw(st.sampled_from(["columns", "tasks", "add", "add_many"]))
            part = rows[a:b]
            if how == "add":
                for row in part:
                    w.add(*row)
            elif how == "add_many":
                w.add_many(part)
            elif part and how == "tasks":
                w.add_task_columns(*as_tasks(part, tasks))
            elif part:
                w.add_columns(*as_columns(part))
        assert w.events_written == len(rows)
    assert (d / "one.msgpack").read_bytes() == (d / "cols.msgpack").read_bytes()


def test_add_columns_checks_every_event_before_adding_one(tmp_path):
    with TraceWriter(tmp_path / "t.msgpack", HEADER) as w:
        good = (1000, 24, 0, 1, ("m",), None)      # a marker
        bad = (1001, 24, 0, 1, ("m", "extra"), None)
        with pytest.raises(ValueError, match="kind 24: expected 1 fields, got 2"):
            w.add_columns(*as_columns([good, bad]))
        assert w.events_written == 0
        with pytest.raises(ValueError, match="different lengths"):
            w.add_columns(np.array([1]), np.array([24]), np.array([0]), [1], [], [None])


ONE_VALUE = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.floats(allow_nan=False),
                      st.integers(-(1 << 64), 1 << 65),
                      st.sampled_from([(1 << 63) - 1, 1 << 63, -(1 << 63), (1 << 64) - 1,
                                       1 << 64, 0xFFFF888004000000]))


@settings(max_examples=300 if LONG else 25)
@given(value=ONE_VALUE, n=st.integers(1, 20), other=st.one_of(st.none(), ONE_VALUE))
def test_a_column_of_one_value_is_encoded_as_encode_column_encodes_it(value, n, other):
    column = [value] * n
    assert _column(column) == encode_column(column)
    if other is not None:           # one value that differs (in type or value) at the end
        column[-1] = other
        assert _column(column) == encode_column(column)


PID = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 64), 1 << 65),
                st.sampled_from([0, 1, 1000, (1 << 63) - 1, 1 << 63, -(1 << 63)]))


@settings(max_examples=300 if LONG else 25)
@given(pids=st.lists(PID, min_size=1, max_size=4), data=st.data())
def test_a_coded_pid_column_is_encoded_as_encode_column_encodes_the_pids(pids, data):
    """From the distinct tasks: ints, ints with nil (a dictionary when it halves them,
    from 8 rows), nil alone, and what goes back to encode_column (bools, beyond int64)."""
    table = [(pid, "c") for pid in pids]
    n = data.draw(st.integers(1, 24))
    codes = data.draw(st.lists(st.integers(0, len(table) - 1), min_size=n, max_size=n))
    cut = data.draw(st.integers(0, n))
    parts = [Coded(np.array(c, np.int64), table) for c in (codes[:cut], codes[cut:]) if c]
    assert pid_column(parts, encode_column) == encode_column([table[c][0] for c in codes])
    assert pid_column(parts, encode_column) == _column([table[c][0] for c in codes])


@settings(max_examples=300 if LONG else 25)
@given(tasks=st.lists(st.tuples(st.sampled_from([None, 1, 2]),
                                st.sampled_from([None, "a", "b"])), min_size=1, max_size=4),
       data=st.data())
def test_coded_tasks_answer_as_lists_do(tasks, data):
    """Which pid's comm changes, and the pids and comms in first-seen order."""
    codes = data.draw(st.lists(st.integers(0, len(tasks) - 1), min_size=1, max_size=12))
    coded = Coded(np.array(codes, np.int64), tasks)
    lists = Lists(*coded.lists())
    assert lists.pids == [tasks[c][0] for c in codes]
    assert lists.comms == [tasks[c][1] for c in codes]
    want = lists.pairs()
    got = coded.pairs()
    assert (got is None) == (want is None)
    if want is not None:
        assert list(got.items()) == list(want.items())


@settings(max_examples=300 if LONG else 25)
@given(values=st.lists(st.one_of(st.integers(0, 300), st.integers(-(1 << 40), 1 << 40),
                                 st.sampled_from([255, 256, 65535, 65536, -1])),
                       min_size=1, max_size=40))
def test_counts_and_kind_groups_without_a_sort_are_np_uniques(values):
    """Small ints go by bincount and radix sort; the answers are np.unique's and a
    stable sort's, for any ints."""
    a = np.array(values, np.int64)
    uniq, counts = np.unique(a, return_counts=True)
    assert list(_counts(a).items()) == list(zip(uniq.tolist(), counts.tolist()))
    fields = [(i,) for i in range(len(a))]
    order = np.argsort(a, kind="stable").tolist()
    want = [(k, [fields[i] for i in order if a[i] == k]) for k in uniq.tolist()]
    assert [(k, list(rows)) for k, rows in _by_kind(a, fields)] == want


def test_the_fast_draws_are_randranges():
    a, b = random.Random(7), random.Random(7)
    below = machine.fast_randrange(b)
    bounds = [1, 2, 3, 1000, 1 << 21, 12_000_000, (1 << 40) + 1] * 30
    assert [a.randrange(n) for n in bounds] == [below(n) for n in bounds]
    assert a.random() == b.random()


@pytest.mark.parametrize("arch,kernel,workload,cpus,params", [
    ("x86_64", "6.14", "walkers", 4, {"size": "8M"}),
    ("arm64", "6.13", "allocator", 3, {"ops": "300", "pmd_contention": "0.5",
                                       "refault": "0.5", "skipped": "0.2"}),
    ("riscv64", "7.0", "collapse", 4, {"regions": "40"}),
    ("x86", "6.19", "fork-exit", 2, {"children": "3", "size": "4M"}),
    ("s390", "7.0", "coverletter", 1, {"size": "8M", "batch": "1"}),
])
def test_the_simulator_writes_what_it_wrote_event_by_event(tmp_path, monkeypatch, arch, kernel,
                                                           workload, cpus, params):
    """The machine's buffer and the bulk path change how events reach the file, not
    which: the same run with every event given to add alone makes the same bytes."""
    simulate(str(tmp_path / "bulk.msgpack"), arch, kernel, workload, params, {}, cpus=cpus,
             seed=3)

    def one_by_one(self, ts, kinds, cpus, tasks, table, fields):
        for t, kind, cpu, task, fs in zip(np.asarray(ts).tolist(), np.asarray(kinds).tolist(),
                                          np.asarray(cpus).tolist(), tasks.tolist(), fields):
            self.add(t, kind, cpu, table[task][0], fs, table[task][1])
    monkeypatch.setattr(TraceWriter, "add_task_columns", one_by_one)
    simulate(str(tmp_path / "one.msgpack"), arch, kernel, workload, params, {}, cpus=cpus,
             seed=3)
    assert (tmp_path / "bulk.msgpack").read_bytes() == (tmp_path / "one.msgpack").read_bytes()


def test_times_whose_deltas_leave_int64_are_written_as_add_writes_them(tmp_path):
    rows = [(-(1 << 63), 24, 0, 1, ("a",), None), ((1 << 63) - 1, 24, 0, 1, ("b",), None)]
    by_add(tmp_path / "one.msgpack", rows, KindTable(), 4096, 2)
    with TraceWriter(tmp_path / "cols.msgpack", HEADER) as w:
        w.add(*rows[0])
        w.add_columns(*as_columns(rows[1:]))
    assert (tmp_path / "one.msgpack").read_bytes() == (tmp_path / "cols.msgpack").read_bytes()


def as_coded(fields, kinds, packed_kind, share):
    """``fields`` as a fieldcodes.Coded: equal tuples of an event and the one before it
    share an entry when ``share``; the events of ``packed_kind`` as columns (packed)."""
    entries, entry_kinds, codes, packed_rows = [], [], [], []
    for f, k in zip(fields, kinds):
        if k == packed_kind:
            codes.append(-1 - len(packed_rows))
            packed_rows.append(f)
        elif share and entries and entries[-1] == f and entry_kinds[-1] == k:
            codes.append(len(entries) - 1)
        else:
            codes.append(len(entries))
            entries.append(f)
            entry_kinds.append(k)
    packed = {}
    if packed_rows and len(set(map(len, packed_rows))) == 1 and packed_rows[0]:
        packed = {packed_kind: [fieldcodes._as_array(list(c)) for c in zip(*packed_rows)]}
    else:                                   # not packable: tuples like the others
        for i, c in enumerate(codes):
            if c < 0:
                codes[i] = len(entries)
                entries.append(packed_rows[-1 - c])
                entry_kinds.append(packed_kind)
    codes = [c if c >= 0 else len(entries) - 1 - c for c in codes]
    table = fieldcodes.Table(entries, np.array(entry_kinds, np.int64), packed)
    return fieldcodes.Coded(np.array(codes, np.int64), table)


@settings(max_examples=300 if LONG else 25)
@given(data=st.data(), chunk_events=st.integers(1, 9), version=st.sampled_from([1, 2]),
       share=st.booleans())
def test_coded_fields_write_what_tuples_write(tmp_path_factory, data, chunk_events, version,
                                              share):
    """add_task_columns with each event's fields coded into a table (entries shared, one
    kind packed as columns) writes the bytes of an add per event, whatever the cuts."""
    table = KindTable()
    evs = data.draw(events(table, max_size=40))
    pids = data.draw(st.lists(st.sampled_from([None, 1, 2]), min_size=len(evs),
                              max_size=len(evs)))
    rows = rows_of(evs, table, pids, [None] * len(evs))
    d = tmp_path_factory.mktemp("coded")
    by_add(d / "one.msgpack", rows, table, chunk_events, version)
    kinds_present = sorted({r[1] for r in rows}) or [0]
    packed_kind = data.draw(st.sampled_from(kinds_present))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=3)))
    tasks: list = []
    with TraceWriter(d / "coded.msgpack", HEADER, kinds=table, chunk_events=chunk_events,
                     version=version) as w:
        for a, b in zip([0] + cuts, cuts + [len(rows)]):
            part = rows[a:b]
            if part:
                ts, kinds, cpus, codes, tasks, fields = as_tasks(part, tasks)
                w.add_task_columns(ts, kinds, cpus, codes, tasks,
                                   as_coded(fields, kinds.tolist(), packed_kind, share))
    assert (d / "one.msgpack").read_bytes() == (d / "coded.msgpack").read_bytes()
