"""Times on the command line: absolute, +T from the first event, marker:TEXT; the
same in replay, events and convert; a time outside the trace is warned about."""

import json
import os

import pytest

from ptviz.cli import main
from replayer.traceio import TraceReader
from tests.conftest import TRACES

SAMPLE = os.path.join(TRACES, "sim-coverletter-6.14-x86_64.msgpack")


def events_of(path):
    with TraceReader(path) as r:
        return list(r.events())


def at(capsys, when):
    assert main(["replay", SAMPLE, "--json", "--at", when]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_relative_absolute_and_marker_times_agree(capsys):
    events = events_of(SAMPLE)
    first = events[0].ts
    marker = next(e for e in events if e.kind == "marker" and e.ts > first)
    by_marker, err = at(capsys, "marker:" + marker.fields["text"][3:12])
    assert err == "" and by_marker["at"] == marker.ts
    by_offset, _ = at(capsys, f"+{marker.ts - first}ns")
    by_time, _ = at(capsys, f"{marker.ts}ns")
    assert by_marker == by_offset == by_time


def test_a_time_before_the_trace_is_warned_about(capsys):
    report, err = at(capsys, "1.5ms")
    assert "--at 1.5ms is before the trace starts" in err and "did you mean +1.5ms" in err


@pytest.mark.parametrize("when, message", [("-1", "not negative"),
                                           ("marker:no such text", "no marker"),
                                           ("marker:", "give the text")])
def test_bad_times_are_one_line(capsys, when, message):
    assert main(["replay", SAMPLE, "--at", when]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_events_and_convert_take_the_same_times(tmp_path, capsys):
    events = events_of(SAMPLE)
    marker = next(e for e in events if e.kind == "marker" and e.ts > events[0].ts)
    text = marker.fields["text"]
    assert main(["events", SAMPLE, "--from", f"marker:{text}", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed[0]["ts"] == marker.ts
    out = tmp_path / "cut.jsonl"
    assert main(["convert", SAMPLE, str(out), "--since", f"marker:{text}"]) == 0
    kept = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert kept[0]["ts"] == marker.ts and len(kept) == len([e for e in events
                                                           if e.ts >= marker.ts])


def test_the_replay_header_reads_in_words(capsys):
    """No Python reprs: an empty override list is left out, a list reads joined."""
    assert main(["replay", SAMPLE]) == 0
    head = capsys.readouterr().out.splitlines()[1]
    assert "overridden" not in head and "()" not in head and "None" not in head
