"""Holes in a trace: no false alarm from evidence that may be missing, no green CI run
on a trace that lost data, and exit 2 when nothing at all can be read."""

from __future__ import annotations

import json

import pytest

from ptviz.cli import main
from replayer.report import build_report
from replayer.traceio import TraceReader
from tests.story import MM, Story

MS = 1_000_000
PFN = 0x5000


def _walker_and_ipi(path, loss_cpu=None, loss_at=None):
    """CPU 1 walks a table that CPU 0 frees (use-after-free), and CPU 0 sends CPU 2 an
    IPI that is never handled; optionally the ring buffer drops events on one CPU."""
    s = Story(path, cpus=3)
    s.at(1 * MS).on(0).table_alloc(mm=MM, level=1, pfn=PFN, addr=0)
    s.at(2 * MS).on(1).walk_begin(mm=MM, walker="gup_fast", protect="irq_off")
    s.walk_table(pfn=PFN)
    s.at(3 * MS).on(2).ipi_enter(reason="call_function")      # CPU 2 does handle IPIs
    s.at(4 * MS).on(0).ipi_send(targets=(2,), reason="tlb_shootdown", callsite="x")
    if loss_cpu is not None:
        s.at(loss_at).on(loss_cpu, None).lost(count=1000)
    s.at(6 * MS).on(0).table_detach(mm=MM, pfn=PFN, cause="munmap")
    s.table_free(pfn=PFN, path="direct")
    s.at(7 * MS).on(1).marker(text="later")
    s.at(8 * MS).on(2).marker(text="later")
    s.at(40 * MS).on(0).marker(text="end")
    return s.replay()


def kinds(replay):
    return sorted(f.kind for f in replay.findings)


def test_without_loss_both_findings_stand(tmp_path):
    r = _walker_and_ipi(tmp_path / "t.msgpack")
    assert kinds(r) == ["ipi_unanswered", "use_after_free"] and r.suppressed == {}


def test_a_loss_on_the_walkers_cpu_hides_its_exit(tmp_path):
    """The walker's walk_end may be in the hole on CPU 1: no use-after-free claim."""
    r = _walker_and_ipi(tmp_path / "t.msgpack", loss_cpu=1, loss_at=7 * MS)
    assert kinds(r) == ["events_lost", "ipi_unanswered"]
    assert r.suppressed == {"use_after_free": 1}
    report = build_report(r)
    assert report["findings_suppressed"] == {"use_after_free": 1}
    assert report["counts_trusted"] is False


def test_a_loss_on_the_target_cpu_hides_the_ipi_handler(tmp_path):
    r = _walker_and_ipi(tmp_path / "t.msgpack", loss_cpu=2, loss_at=8 * MS)
    assert kinds(r) == ["events_lost", "use_after_free"]
    assert r.suppressed == {"ipi_unanswered": 1}


def test_a_loss_elsewhere_or_before_suppresses_nothing(tmp_path):
    """A hole on a CPU the evidence does not depend on, or one that ended before the
    evidence began, leaves the findings standing."""
    r = _walker_and_ipi(tmp_path / "a.msgpack", loss_cpu=0, loss_at=5 * MS)
    assert kinds(r) == ["events_lost", "ipi_unanswered", "use_after_free"]
    # On CPU 1 the window is (the previous event of CPU 1, the loss]: before the walk.
    s = Story(tmp_path / "b.msgpack", cpus=2)
    s.at(1 * MS).on(1).marker(text="early")
    s.at(1 * MS + 500).on(1, None).lost(count=5)
    s.at(2 * MS).on(0).table_alloc(mm=MM, level=1, pfn=PFN, addr=0)
    s.at(3 * MS).on(1).walk_begin(mm=MM, walker="gup_fast", protect="irq_off")
    s.walk_table(pfn=PFN)
    s.at(4 * MS).on(0).table_detach(mm=MM, pfn=PFN, cause="munmap")
    s.table_free(pfn=PFN, path="direct")
    assert kinds(s.replay()) == ["events_lost", "use_after_free"]


def test_table_findings_are_suppressed_by_a_loss_on_any_cpu(tmp_path):
    """A free of an attached table: the detach may have been lost on any CPU."""
    s = Story(tmp_path / "t.msgpack", cpus=4)
    s.at(1 * MS).on(0).table_alloc(mm=MM, level=1, pfn=PFN, addr=0)
    s.at(2 * MS).on(3).marker(text="x")
    s.at(3 * MS).on(3, None).lost(count=7)
    s.at(4 * MS).on(0).table_free(pfn=PFN, path="rcu")
    r = s.replay()
    assert kinds(r) == ["events_lost"] and r.suppressed == {"free_attached": 1}


def test_an_overrun_before_a_cpus_first_event(tmp_path):
    """ptviz record puts overruns (the oldest events of a CPU, overwritten) before that
    CPU's first event: an IPI sent to it before then may have been answered."""
    s = Story(tmp_path / "t.msgpack", cpus=2)
    s.at(1 * MS).on(0).ipi_send(targets=(1,), reason="tlb_shootdown", callsite="x")
    s.at(2 * MS).on(1, None).lost(count=100)
    s.at(2 * MS).on(1).ipi_enter(reason="call_function")
    s.at(3 * MS).on(0).ipi_send(targets=(1,), reason="tlb_shootdown", callsite="x")
    s.at(50 * MS).on(0).marker(text="end")
    r = s.replay()
    # The first IPI was answered by the entry at 2 ms anyway; the second never was,
    # and no hole can hide its answer: it is reported.
    assert kinds(r) == ["events_lost", "ipi_unanswered"] and r.suppressed == {}


# -- a trace cut short ---------------------------------------------------------------
def _cut_trace(tmp_path, keep_chunks):
    path = tmp_path / "whole.msgpack"
    s = Story(path, chunk_events=2, cpus=2)
    s.at(1 * MS).on(0).table_alloc(mm=MM, level=1, pfn=PFN, addr=0)
    s.pte_set(mm=MM, pfn=PFN, n=1)
    s.at(2 * MS).on(0).ipi_send(targets=(1,), reason="tlb_shootdown", callsite="x")
    s.at(3 * MS).on(1).ipi_enter(reason="call_function")
    s.at(30 * MS).on(0).ipi_send(targets=(1,), reason="tlb_shootdown", callsite="x")
    s.at(50 * MS).on(0).marker(text="end")
    s.writer.close()
    with TraceReader(path) as r:
        chunk = r.chunks[keep_chunks] if keep_chunks < len(r.chunks) else None
    data = path.read_bytes()
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(data[:chunk.offset + 20])       # inside chunk ``keep_chunks``
    return str(cut)


def test_nothing_readable_is_exit_2(tmp_path, capsys):
    """A trace cut inside its first chunk: no green run, one line, exit 2."""
    cut = _cut_trace(tmp_path, 0)
    for args in (["replay", "--fail-on", "use_after_free"], ["replay", "--json"], ["info"]):
        assert main([*args, cut]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith(f"ptviz: {cut}: byte ") and \
            "no complete chunk" in captured.err


def test_a_cut_trace_is_not_trusted_and_fail_on_cannot_pass(tmp_path, capsys):
    cut = _cut_trace(tmp_path, 2)
    assert main(["replay", "--json", cut]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts_trusted"] is False and report["trace"]["truncated_at_byte"] > 0
    # Of what remains: an IPI at 2 ms answered at 3 ms; the tail that was cut could
    # hold anything: nothing is claimed about it.
    assert report["findings"] == [] and report["events_applied"] == 4
    assert main(["replay", "--fail-on", "use_after_free", cut]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"ptviz: fail-on: use_after_free (is 0 in what the trace holds): "
                       f"cannot be decided, the file is cut short at byte "
                       f"{report['trace']['truncated_at_byte']:,}")
    # A condition on the loss itself is decided as usual.
    assert main(["replay", "--fail-on", "lost_events>0", cut]) == 0


def test_an_empty_trace_decides_nothing(tmp_path, capsys):
    """A whole trace with no event in it (a recording that caught nothing) is read, but
    a CI gate on it does not pass."""
    Story(tmp_path / "t.msgpack").writer.close()
    path = str(tmp_path / "t.msgpack")
    assert main(["replay", path]) == 0
    assert f"ptviz: warning: {path}: the trace holds no events" in capsys.readouterr().err
    assert main(["replay", "--fail-on", "findings", path]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "ptviz: fail-on: findings (is 0 in what the trace holds): cannot be decided, the "
        "trace holds no events")


@pytest.mark.parametrize("fail_on, code", [("use_after_free", 1), ("lost_events>5", 0),
                                           ("lost_events>0", 1)])
def test_fail_on_after_ring_buffer_drops(tmp_path, capsys, fail_on, code):
    s = Story(tmp_path / "t.msgpack", cpus=2)
    s.at(1 * MS).on(0).marker(text="a")
    s.at(2 * MS).on(1, None).lost(count=3)
    s.writer.close()
    assert main(["replay", "--fail-on", fail_on, str(tmp_path / "t.msgpack")]) == code
    err = capsys.readouterr().err
    assert ("cannot be decided, CPU 1 dropped 3 events" in err) == (fail_on == "use_after_free")
