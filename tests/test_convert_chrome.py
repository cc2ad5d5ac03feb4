"""``ptviz convert`` to Chrome JSON: laid out as Perfetto's JSON importer reads it (exact
microseconds, no pid or tid 0, its four metadata names, flows bound to their slices),
a window that opens with the state at its start, valid for any trace."""

import json
import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings

from ptviz.sim.run import simulate
from replayer.replay import Replay
from replayer.traceio import TraceReader
from tests.conftest import LONG
from tests.test_convert import convert, rich_traces, write

PERFETTO_METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}
EXACT_US = re.compile(rb'"(?:ts|dur)":(-?\d+(?:\.\d+)?)')


def check_chrome(path, source, kept=None):
    """The rules Perfetto's JSON importer reads by; ``kept``: which trace events the
    CPU threads must hold (default: all, in the trace's per-CPU counts)."""
    raw = (path).read_bytes()
    for number in EXACT_US.findall(raw):
        assert re.fullmatch(rb"-?\d+\.\d{3}|0", number), number   # never a lossy float
    events = json.loads(raw, parse_float=Decimal)    # µs decimals kept exact
    assert isinstance(events, list) and events
    with TraceReader(source) as r:
        trace = list(r.events())
    per_cpu: dict[int, set] = {}
    flows_out, flows_in = {}, {}
    for e in events:
        ph = e["ph"]
        assert type(e["pid"]) is int and e["pid"] != 0
        assert type(e["tid"]) is int and e["tid"] != 0
        if ph == "M":
            assert e["name"] in PERFETTO_METADATA and isinstance(e["args"], dict)
            continue
        assert ph in ("X", "i", "C", "b", "e", "n"), ph
        assert isinstance(e["name"], str) and "ts" in e
        if ph == "X":
            assert e["dur"] == 0
        if ph == "i":
            assert e["s"] in ("t", "g")
        if ph == "C":
            assert all(isinstance(x, int) for x in e["args"].values())
        if ph in ("b", "e", "n"):
            assert type(e["id"]) is int and e["cat"]
        if ph in ("X", "i") and e.get("s") != "g" and e["pid"] == 1:
            index = e["args"]["event"]
            event = trace[index]
            assert e["tid"] == event.cpu + 1
            assert e["ts"] * 1000 == event.ts            # back to ns exactly
            per_cpu.setdefault(event.cpu, set()).add(index)
        if e.get("flow_out"):
            assert e["bind_id"] not in flows_out
            flows_out[e["bind_id"]] = e
        if e.get("flow_in"):
            assert e["bind_id"] not in flows_in
            flows_in[e["bind_id"]] = e
    assert set(flows_in) == set(flows_out)              # every arrow has both ends
    for bind, end in flows_in.items():
        assert flows_out[bind]["ts"] <= end["ts"]
    if kept is None:
        counts: dict[int, int] = {}
        for event in trace:
            counts[event.cpu] = counts.get(event.cpu, 0) + 1
        assert {cpu: len(s) for cpu, s in per_cpu.items()} == counts
    else:
        assert sorted(i for s in per_cpu.values() for i in s) == \
            [i for i, e in enumerate(trace) if kept(e)]
    return events


def test_chrome_json_is_what_perfetto_reads(tmp_path):
    src = tmp_path / "w.msgpack"
    simulate(str(src), "x86_64", "6.14", "walkers", {"size": "16M"},
             {"table_free": "semi_rcu"}, cpus=4, seed=3)
    assert convert(src, tmp_path / "w.json") == 0
    events = check_chrome(tmp_path / "w.json", src)
    names = {e["name"] for e in events}
    assert {"ipi_send", "ipi_enter", "tlb_flush", "table_free", "VmPTE", "PTE tables"} <= names
    # Perfetto keys an async track by name and id: a life's steps share its begin's.
    begins = {e["id"]: e["name"] for e in events if e["ph"] == "b"}
    assert all(begins[e["id"]] == e["name"] for e in events if e["ph"] in ("n", "e"))
    assert any(e["ph"] == "b" for e in events) and any(e["ph"] == "e" for e in events)
    ipi_flows = [e for e in events if e["name"] == "ipi_enter" and e.get("flow_in")]
    assert ipi_flows, "IPI arrows"
    assert any(e["name"] == "table_free" and e.get("flow_in") for e in events)
    findings = [e for e in events if e.get("cat") == "finding"]
    with Replay.load(src) as r:
        assert len(findings) == len(r.findings) > 0      # semi-RCU: the use-after-free


def test_a_chrome_window_opens_with_the_state_at_its_start(tmp_path):
    """--since/--until and --cpus: the CPU threads hold what is kept, by trace index;
    VmPTE starts at its value at the window's start (computed from the trace's
    start); findings outside the window are left out; every arrow has both ends."""
    src = tmp_path / "w.msgpack"
    simulate(str(src), "x86_64", "6.14", "walkers", {"size": "16M"},
             {"table_free": "semi_rcu"}, cpus=4, seed=3)
    with Replay.load(src) as r:
        t0 = r.first_ts + (r.last_ts - r.first_ts) // 3
        t1 = r.first_ts + 2 * (r.last_ts - r.first_ts) // 3
        at_start = r.state_at(t0 - 1)
        findings = [f for f in r.findings if t0 <= f.ts <= t1]
    out = tmp_path / "w.json"
    assert convert(src, out, "--since", f"{t0}ns", "--until", f"{t1}ns", "--cpus", "0,1") == 0
    events = check_chrome(out, src, kept=lambda e: t0 <= e.ts <= t1 and e.cpu in (0, 1))
    names = {e["pid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "process_name"}
    first = {}
    for e in events:
        if e["ph"] == "C" and e["name"] == "VmPTE":
            first.setdefault(names[e["pid"]].split()[1], e)
    assert first and all(e["ts"] * 1000 == t0 for e in first.values())
    for mm, e in first.items():
        assert e["args"]["bytes"] == at_start.mm_bytes.get(int(mm, 16), 0)
    shown = [e for e in events if e.get("cat") == "finding"]
    assert len(shown) == len([f for f in findings if f.cpu is None or f.cpu in (0, 1)])


@settings(max_examples=50 if LONG else 8, suppress_health_check=[HealthCheck.too_slow])
@given(events=rich_traces())
def test_chrome_json_is_valid_for_any_trace(tmp_path_factory, events):
    d = tmp_path_factory.mktemp("chrome")
    write(d / "a.msgpack", events)
    if not events:
        return
    assert convert(d / "a.msgpack", d / "a.json") == 0
    check_chrome(d / "a.json", d / "a.msgpack")
