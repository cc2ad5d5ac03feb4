"""The event filter syntax (replayer/filters.py), ``ptviz events``, and ``select``
checked against a straight scan of every event."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from ptviz.cli import main
from replayer import Replay
from replayer import vocab as v
from replayer.errors import UsageError
from replayer.filters import EventFilter, parse_filter, select
from tests.conftest import TRACES
from tests.test_replay_queries import write
from tests.tracegen import MMS, PFNS, traces

KINDS = [k.name for k in v.KINDS]
RECLAIM = f"{TRACES}/reclaim-6.14-x86_64.msgpack"


def test_terms():
    f = parse_filter("cpu=1,3 kind=table_free,tlb_flush mm=0x4635 pfn=0x17d80a pid=17973 "
                     "Reclaim", KINDS)
    assert f == EventFilter(cpus=frozenset({1, 3}), kinds=frozenset({"table_free", "tlb_flush"}),
                            mms=frozenset({0x4635}), pfns=frozenset({0x17D80A}),
                            pids=frozenset({17973}), words=("reclaim",))
    assert parse_filter("kind=table_*", KINDS).kinds == frozenset(
        k for k in KINDS if k.startswith("table_"))
    assert parse_filter("cpu=1,2 cpu=2,3", KINDS).cpus == frozenset({2})   # both hold
    assert parse_filter("", KINDS).empty and not parse_filter("x", KINDS).empty


@pytest.mark.parametrize("text, says", [
    ("kid=3", "unknown key 'kid'"), ("cpu=one", "'one' is not a number"),
    ("kind=nosuch", "no event kind 'nosuch'"), ("pfn=", "no value"), ("kind=,", "no value"),
])
def test_bad_terms_say_which(text, says):
    with pytest.raises(UsageError, match=says):
        parse_filter(text, KINDS)


_TERM = st.one_of(
    st.builds(lambda c: f"cpu={','.join(map(str, c))}",
              st.lists(st.integers(0, 3), min_size=1, max_size=2)),
    st.builds(lambda k: f"kind={','.join(k)}",
              st.lists(st.sampled_from(["table_alloc", "pte_set", "table_free", "tlb_flush",
                                        "table_*", "rcu_*"]), min_size=1, max_size=2)),
    st.builds(lambda m: f"mm={m:#x}", st.sampled_from(MMS)),
    st.builds(lambda p: f"pfn={p:#x}", st.sampled_from(PFNS)),
    st.builds(lambda p: f"pid={p}", st.integers(0, 3)),
    st.sampled_from(["reclaim", "shootdown", "P", "0x11"]))


@given(events=traces(max_events=80), terms=st.lists(_TERM, max_size=3),
       window=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_select_is_the_events_a_scan_keeps(tmp_path_factory, events, terms, window):
    d = tmp_path_factory.mktemp("filters")
    write(d / "t.msgpack", events, chunk_events=6)
    with Replay.load(d / "t.msgpack") as r:
        flt = parse_filter(" ".join(terms), [k.name for k in r.reader.kinds])
        last = r.last_ts or 0
        t0, t1 = sorted(int(last * x) for x in window)
        idx, ts, cpus = select(r, flt, t0, t1)
        want = [i for i, e in r.events(t0, t1) if flt.matches(r.event_at(i).cpu, e)]
        assert idx.tolist() == want
        assert ts.tolist() == [r.event_at(i).ts for i in want]
        assert cpus.tolist() == [r.event_at(i).cpu for i in want]


def test_ptviz_events_lists_in_words(capsys):
    assert main(["events", RECLAIM, "kind=table_detach", "reclaim"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "1.000109000  [000]  touch-dontneed-4242    table_detach       "
        "mm=0xffff888003a1c000 pfn=0x12000 cause=reclaim"]
    assert main(["events", RECLAIM, "cpu=1", "--json", "--limit", "1"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["cpu"], row["kind"], row["comm"]) == (1, "ipi_enter", "<idle>")
    assert main(["events", RECLAIM, "--from", "1.000106", "--to", "1.000106"]) == 0
    (marker,) = capsys.readouterr().out.splitlines()
    assert marker.endswith("marker             text=VmPTE: 12 kB (touched 4 MiB)")
    assert main(["events", RECLAIM, "kid=1"]) == 2
    assert "unknown key 'kid'" in capsys.readouterr().err
