"""The importer's fast paths give what the plain ones gave: numbers read without the
regex, the reorder window drained as slices, a trace.dat through trace-cmd's pipe the
same as the text trace-cmd printed, and trace-cmd failing mid-stream leaves nothing."""

import heapq
import lzma
import os
import shutil

import pytest
from hypothesis import given, settings, strategies as st

from ptviz.ftrace import importer
from ptviz.ftrace.importer import import_file
from ptviz.ftrace.infer import Inference
from ptviz.ftrace.textparse import _NUMBER, U64_END, checked, field, number, number_field
from replayer import vocab as v
from replayer.errors import ImportFormatError
from replayer.traceio import TraceReader
from tests.conftest import LONG, TRACES
from tests.test_tracecmd import fake_trace_cmd  # noqa: F401  (a fixture)

_PIECES = ["0x", "0X", "1", "a", "F", "g", " ", "=", "pfn=", "xpfn=", "_", "-", "+", "٣",
           "\n", "0", "ff" * 20]


def _number_by_regex(text, hi):
    """number() as it was before its fast path: the regex, then checked()."""
    if text is None:
        return None
    m = _NUMBER.match(text)
    if m is None:
        return None
    return checked(m.group(1), 16, 0, hi) if m.group(1) else checked(m.group(2), 10, 0, hi)


@settings(max_examples=3000 if LONG else 300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join),
       st.sampled_from([U64_END, 1 << 63, 16, 1]))
def test_numbers_read_without_the_regex_are_the_regexs(text, hi):
    assert number(text, hi=hi) == _number_by_regex(text, hi)
    assert number_field(text, "pfn=", hi) == _number_by_regex(field(text, "pfn="), hi)


@pytest.mark.parametrize("text", ["0x", "0x_1", "0x 1", "0x1g", "0x" + "0" * 64 + "1",
                                  "0x" + "f" * 16, "0x1" + "0" * 16, "0x٣", "0xabc\n"])
def test_numbers_at_the_fast_paths_edges(text):
    for hi in (U64_END, 1 << 63):
        assert number(text, hi=hi) == _number_by_regex(text, hi)
        assert number_field(f"pfn={text}", "pfn=", hi) == _number_by_regex(text, hi)


@settings(max_examples=300 if LONG else 60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=200),
       st.lists(st.integers(-5, 60), max_size=8))
def test_the_window_drains_in_time_then_seq_order(events, drains):
    # Events go into the window (ts as given: out of order ones land in the heap) with
    # drains in between; what comes out is, at each drain, every event before its limit
    # in (ts, seq) order: the order popping the smaller of two sorted heads gave.
    written = []
    inf = Inference(lambda *a: None, emit_many=lambda evs: written.extend(evs))
    pending = []
    steps = iter(drains)
    for seq, (ts, drain_now) in enumerate(events, 1):
        inf.out(ts, v.MARKER, 0, 1, (f"e{seq}",), None)
        heapq.heappush(pending, (ts, seq))
        if drain_now:
            limit = next(steps, None)
            inf._drain(limit)
            expect = []
            while pending and (limit is None or pending[0][0] < limit):
                expect.append(heapq.heappop(pending))
            assert [(e[0], int(e[4][0][1:])) for e in written] == expect
            written.clear()
    inf._drain(None)
    assert [(e[0], int(e[4][0][1:])) for e in written] == sorted(pending)


@pytest.fixture(scope="module")
def capture_text(tmp_path_factory):
    """A real capture's ftrace text (a few thousand lines)."""
    text = tmp_path_factory.mktemp("cap") / "trace.txt"
    with lzma.open(os.path.join(TRACES, "raw", "cases", "real-6.18-fork-exec-plain.txt.xz"),
                   "rb") as src, open(text, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return str(text)


def _events(path):
    with TraceReader(path) as r:
        return r.header, r.notes, list(r.events())


def test_a_trace_dat_imports_as_the_text_trace_cmd_prints(fake_trace_cmd, tmp_path,  # noqa: F811
                                                          capture_text):
    # Through the pipe (read while trace-cmd prints) or from the saved text: one import.
    dat, started = fake_trace_cmd(f"cat '{capture_text}'")
    piped = import_file(dat, tmp_path / "piped.msgpack")
    saved = import_file(capture_text, tmp_path / "saved.msgpack")
    assert piped == saved and piped["events_written"] > 1000
    assert _events(tmp_path / "piped.msgpack") == _events(tmp_path / "saved.msgpack")
    assert started[0].returncode == 0


def test_trace_cmd_failing_mid_stream_leaves_no_output(fake_trace_cmd, tmp_path,  # noqa: F811
                                                       capture_text):
    # Megabytes printed (many pipe fills, events already in the window), then an error.
    dat, started = fake_trace_cmd(f"cat '{capture_text}' '{capture_text}' '{capture_text}'\n"
                                  "echo 'trace-cmd: cpu 1: corrupt page' >&2\nexit 1")
    out = tmp_path / "o.msgpack"
    with pytest.raises(ImportFormatError) as err:
        import_file(dat, out)
    assert str(err.value) == f"{dat}: trace-cmd report failed: trace-cmd: cpu 1: corrupt page"
    assert "\n" not in str(err.value)
    assert started[0].returncode == 1
    assert sorted(os.listdir(tmp_path)) == ["bin", "trace.dat"]     # nor a temporary


def test_the_pipe_is_read_with_the_progress_shown(fake_trace_cmd, tmp_path,  # noqa: F811
                                                  capture_text):
    dat, _ = fake_trace_cmd(f"cat '{capture_text}'")
    told = []
    stats = import_file(dat, tmp_path / "o.msgpack", progress=lambda *a: told.append(a))
    assert told and told[-1] == (stats["lines"], None, "lines")
    assert importer.sniff(str(tmp_path / "o.msgpack")) == "ptviz"
