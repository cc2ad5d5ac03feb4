"""``ptviz convert`` between formats: exact round trips (JSON Lines, ftrace text),
valid Chrome JSON for Perfetto, windows and filters, and outputs that appear whole
or not at all."""

import contextlib
import json
import math
import os
import signal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ptviz.cli import main
from replayer import vocab as v
from replayer.replay import Replay
from replayer.report import build_report
from replayer.traceio import TraceReader, TraceWriter
from tests.conftest import LONG, TRACES
from tests.tracegen import traces

X86_64 = {"name": "x86_64", "page_size": 4096, "ptrs_per_pte": 512, "pte_size": 8}
COMMS = ("gcc", "kworker/u8:2", "a b", "x-12 y", " lead", "<...>", "<none>", "", "naïve", None)
ODD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.text(max_size=8)
    | st.binary(max_size=6) | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),   # msgpack map keys: text
    max_leaves=6)


@st.composite
def rich_traces(draw):
    """tracegen's traces with comms, pids and raw events carrying values JSON and
    text cannot hold as they are (bytes, maps with number keys, NaN, line breaks)."""
    events = draw(traces(max_events=60))
    out = []
    for ts, kind, cpu, pid, fields in events:
        if kind == v.RAW and draw(st.booleans()):
            fields = (draw(st.text(max_size=12)), draw(st.dictionaries(
                st.sampled_from(("text", "$bytes", "order", "")) | st.text(max_size=5),
                ODD_VALUES, max_size=3)))
        if kind == v.MARKER:
            fields = (draw(st.sampled_from(("m", " spaced ", "two\nlines", "", "tracing"))),)
        out.append((ts, kind, cpu, draw(st.sampled_from((pid, None, 0, 4_000_000_000))),
                    fields, draw(st.sampled_from(COMMS))))
    return out


def write(path, events, chunk_events=16):
    with TraceWriter(path, {"source": "test", "cpus": 4, "arch": X86_64,
                            "workload": {"name": "made up"}},
                     chunk_events=chunk_events, force=True) as w:
        for ts, kind, cpu, pid, fields, comm in events:
            w.add(ts, kind, cpu, pid, fields, comm)
        w.notes.append("a note, kept")


def read_all(path):
    with TraceReader(path) as r:
        return r.header, list(r.notes), [_comparable(e) for e in r.events()]


def _comparable(event):
    """An event with NaN made comparable (NaN != NaN)."""
    def fix(x):
        if isinstance(x, float) and math.isnan(x):
            return "NaN"
        if isinstance(x, (list, tuple)):
            return tuple(fix(y) for y in x)
        if isinstance(x, dict):
            return {k: fix(y) for k, y in x.items()}
        return x
    return (event.ts, event.kind, event.cpu, event.pid, event.comm, fix(event.fields))


def convert(*args):
    with contextlib.redirect_stderr(open(os.devnull, "w")):
        return main(["convert", *map(str, args)])


@settings(max_examples=100 if LONG else 12, suppress_health_check=[HealthCheck.too_slow])
@given(events=rich_traces(), chunk_events=st.integers(1, 40))
def test_jsonl_round_trip_is_exact(tmp_path_factory, events, chunk_events):
    d = tmp_path_factory.mktemp("jsonl")
    write(d / "a.msgpack", events, chunk_events)
    assert convert(d / "a.msgpack", d / "a.jsonl") == 0
    assert convert(d / "a.jsonl", d / "b.msgpack") == 0
    assert read_all(d / "b.msgpack") == read_all(d / "a.msgpack")


def report(path):
    with Replay.load(path) as r:
        out = build_report(r)
    out["trace"].pop("path", None)
    return json.dumps(out, sort_keys=True)


@settings(max_examples=100 if LONG else 12, suppress_health_check=[HealthCheck.too_slow])
@given(events=rich_traces(), chunk_events=st.integers(1, 40))
def test_ftrace_text_round_trip_keeps_every_event_and_the_report(tmp_path_factory, events,
                                                                 chunk_events):
    """Every kind has a text form (its kernel line for markers and raw events, a
    ptviz_ line for the rest), so every event comes back with equal fields."""
    d = tmp_path_factory.mktemp("text")
    write(d / "a.msgpack", events, chunk_events)
    assert convert(d / "a.msgpack", d / "a.txt") == 0
    assert convert(d / "a.txt", d / "b.msgpack") == 0
    assert read_all(d / "b.msgpack") == read_all(d / "a.msgpack")
    assert report(d / "b.msgpack") == report(d / "a.msgpack")


def test_ftrace_text_uses_kernel_lines_where_they_exist(tmp_path):
    events = [(1_000, v.MARKER, 0, 7, ("VmPTE: 68 kB",), "gcc"),
              (2_000, v.RAW, 1, 7, ("mm_page_alloc", {"text": "page=0x1 pfn=0x2 order=0"}), "gcc"),
              (3_000, v.KIND_BY_NAME["table_free"].id, 1, None, (0x1234, "rcu", None), None)]
    write(tmp_path / "a.msgpack", events)
    assert convert(tmp_path / "a.msgpack", tmp_path / "a.txt") == 0
    lines = [line for line in (tmp_path / "a.txt").read_text().splitlines()
             if not line.startswith("#")]
    assert lines == [
        "             gcc-7       [000] .....     0.000001000: tracing_mark_write: VmPTE: 68 kB",
        "             gcc-7       [001] .....     0.000002000: mm_page_alloc: page=0x1 pfn=0x2 "
        "order=0",
        "          <none>-0       [001] .....     0.000003000: ptviz_table_free: pfn=0x1234 "
        'path="rcu" inferred=null']


@pytest.mark.slow
def test_a_real_capture_round_trips_through_every_format(tmp_path):
    """The first 50 ms of the real 6.18 sample (raw kernel events, inferred table steps,
    markers): cut by a window, then through JSON Lines and ftrace text and back."""
    src = tmp_path / "cut.msgpack"
    assert convert(os.path.join(TRACES, "real-6.18-x86_64-vmpte-steps.msgpack"), src,
                   "--until", "+50ms") == 0
    kinds = {e[1] for e in read_all(src)[2]}
    assert {"raw", "table_alloc", "pte_set", "marker"} <= kinds
    for ext in ("jsonl", "txt"):
        mid, back = tmp_path / f"cut.{ext}", tmp_path / f"cut.{ext}.msgpack"
        assert convert(src, mid) == 0 and convert(mid, back) == 0
        assert read_all(back) == read_all(src)
        assert report(back) == report(src)


# -- windows and filters ---------------------------------------------------------------
def test_window_and_filters_keep_what_they_say(tmp_path):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    with TraceReader(src) as r:
        trace = list(r.events())
    t0 = trace[0].ts
    out = tmp_path / "cut.jsonl"
    assert convert(src, out, "--since", "+0.2ms", "--until", "+0.6ms", "--cpus", "0,2",
                   "--kinds", "table_*,tlb_flush") == 0
    want = [e for e in trace if t0 + 200_000 <= e.ts <= t0 + 600_000 and e.cpu in (0, 2)
            and (e.kind.startswith("table_") or e.kind == "tlb_flush")]
    got = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert want and [(e["ts"], e["kind"], e["cpu"]) for e in got] == \
        [(e.ts, e.kind, e.cpu) for e in want]
    mm = next(e.fields["mm"] for e in trace if e.kind == "table_alloc")
    assert convert(src, tmp_path / "mm.msgpack", "--mm", hex(mm), "--pid", "1000") == 0
    with TraceReader(tmp_path / "mm.msgpack") as r:
        kept = list(r.events())
    assert kept and all(e.fields.get("mm") in (mm, None) and e.pid == 1000 for e in kept)


def test_mm_keeps_the_whole_life_of_its_tables(tmp_path):
    """A table's queue and free carry no mm: --mm keeps them by the table's allocation,
    so the cut trace tells that mm's tables' story as the whole trace does."""
    src = os.path.join(TRACES, "leak-6.13-x86_64.msgpack")
    with Replay.load(src) as r:
        whole = json.loads(json.dumps(build_report(r)))
    mm = whole["mms"][0]["mm"]
    assert convert(src, tmp_path / "mm.msgpack", "--mm", mm, "--kinds", "table_*") == 0
    with Replay.load(tmp_path / "mm.msgpack") as r:
        cut = build_report(r)
    assert cut["mms"][0]["pte_tables"] == whole["mms"][0]["pte_tables"]
    assert cut["tables"]["in_flight"]["count"] == whole["tables"]["in_flight"]["count"]


@pytest.mark.parametrize("args, message", [
    (["--to", "pdf"], "no such format"), (["--since", "soon"], "--since"),
    (["--cpus", "x"], "not a number"), (["--kinds", "nope"], "no event kind"),
    (["--since", "+10ms", "--until", "+5ms"], "before"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    assert main(["convert", src, str(tmp_path / "o.txt"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not os.listdir(tmp_path)


def test_formats_are_listed(capsys):
    assert main(["convert", "--formats"]) == 0
    out = capsys.readouterr().out
    for name in ("msgpack", "jsonl", "ftrace", "trace.dat", "chrome"):
        assert name in out


def test_a_bad_jsonl_line_names_the_file_and_line(tmp_path, capsys):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    assert convert(src, tmp_path / "a.jsonl") == 0
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    lines[5] = '{"ts": "soon", "cpu": 0}'
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["convert", str(tmp_path / "b.jsonl"), str(tmp_path / "b.msgpack")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'b.jsonl'}: line 6:" in err and "Traceback" not in err
    assert not (tmp_path / "b.msgpack").exists()


def test_a_bad_ptviz_line_in_an_export_names_the_file_and_line(tmp_path, capsys):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    assert convert(src, tmp_path / "a.txt") == 0
    lines = (tmp_path / "a.txt").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "ptviz_table_alloc" in line)
    lines[at] = lines[at].replace("level=", "level=[1,")
    (tmp_path / "b.txt").write_text("\n".join(lines) + "\n")
    assert main(["convert", str(tmp_path / "b.txt"), str(tmp_path / "b.msgpack")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'b.txt'}: line {at + 1}:" in err and "Traceback" not in err


# -- outputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["msgpack", "jsonl", "txt", "json"])
def test_a_signal_mid_conversion_leaves_no_output(tmp_path, monkeypatch, ext):
    """SIGTERM arrives after the first batch: the command ends 143 and neither the
    output nor a temporary file is left."""
    import ptviz.cli.progress as progress

    @contextlib.contextmanager
    def bar(what, total, unit="events"):
        # The conversion's own bar (not the replay that finds Chrome JSON's findings).
        yield progress.Bar(lambda n, total: os.kill(os.getpid(), signal.SIGTERM)
                           if what == "convert" else None)
    monkeypatch.setattr(progress, "progress_bar", bar)
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    args = ["--cpus", "0,1,2,3"] if ext == "msgpack" else []
    assert main(["convert", src, str(tmp_path / f"out.{ext}"), *args]) == 143
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext", ["msgpack", "jsonl", "txt", "json"])
def test_an_existing_output_is_not_replaced_without_force(tmp_path, capsys, ext):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    out = tmp_path / f"out.{ext}"
    out.write_bytes(b"keep me")
    args = ["--kinds", "table_*"] if ext == "msgpack" else []
    assert main(["convert", src, str(out), *args]) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me" and os.listdir(tmp_path) == [out.name]
    assert main(["convert", src, str(out), "--force", *args]) == 0
    assert out.read_bytes() != b"keep me"


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    import errno

    import ptviz.convert.jsonl as jsonl
    real = jsonl.write_jsonl

    def full(stream, batches, out, progress=None):
        class Full:
            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(stream, batches, Full(), progress)
    monkeypatch.setattr(jsonl, "write_jsonl", full)
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    assert main(["convert", src, str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "o.jsonl: cannot write: No space left on device" in err
    assert len(err.strip().splitlines()) == 1 and os.listdir(tmp_path) == []


def test_cpus_take_kernel_cpulist_ranges(tmp_path):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    assert convert(src, tmp_path / "a.jsonl", "--cpus", "0-1,3") == 0
    cpus = {json.loads(line)["cpu"] for line in (tmp_path / "a.jsonl").read_text().splitlines()[1:]}
    with TraceReader(src) as r:
        assert cpus == {e.cpu for e in r.events()} & {0, 1, 3}


def test_reading_back_an_export_says_so(tmp_path, capsys):
    src = os.path.join(TRACES, "sim-walkers-semi-rcu-uaf.msgpack")
    assert convert(src, tmp_path / "a.txt") == 0
    assert main(["convert", str(tmp_path / "a.txt"), str(tmp_path / "b.msgpack")]) == 0
    assert "a ptviz export: 2,020 events read back as written" in capsys.readouterr().err
