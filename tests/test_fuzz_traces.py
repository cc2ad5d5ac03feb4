"""Fuzzing the trace reader and every command that reads a trace.

Whatever a CRC-valid file holds, ``info``, ``info --json``, ``replay``,
``replay --json`` and a CI-style ``replay --fail-on`` end in exit 0 or 1 with
their normal output (valid JSON for ``--json``), or in exit 2 with one line on
stderr naming the file — never a traceback, never a hang, never a file left
behind. The example count comes from the hypothesis profile: a short run by
default, a long one in ``.ci/run``'s second step (``HYPOTHESIS_PROFILE=long``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from ptviz.cli import main
from replayer.errors import BadInput
from replayer.replay import Replay
from replayer.report import build_report
from replayer.traceio import TraceReader
from tests.tracefuzz import Plan, damaged_traces

COMMANDS = (["info"], ["info", "--json"], ["info", "--quick"], ["replay"],
            ["replay", "--json"], ["replay", "--fail-on", "use_after_free,lost>0"])
#: Far above any honest run of these commands on a few dozen events: a hang, not a slow run.
HANG_S = 30


#: Each example writes into the test's own tmp_path, which is fine to share.
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


class Hang(Exception):
    pass


@contextlib.contextmanager
def no_hang(seconds: int = HANG_S):
    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with no_hang(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def check_command(args: list[str], path: str) -> None:
    code, out, err = run_cli([*args, path])
    assert "Traceback" not in err
    if code == 2:
        assert out == "", (args, out)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"ptviz: {path}: "), (args, err)
        return
    assert code in (0, 1), (args, code, err)
    if "--json" in args:
        json.loads(out, parse_constant=_no_constants)   # strict JSON: no NaN, no Infinity
    for line in err.splitlines():
        assert line.startswith(("ptviz: warning: ", "ptviz: fail-on: ")), (args, err)


def _no_constants(name: str):
    raise AssertionError(f"{name} in JSON output")


@FUZZ
@given(data=damaged_traces())
def test_commands_on_damaged_traces(tmp_path, data):
    path = tmp_path / "fuzz.msgpack"
    path.write_bytes(data)
    for args in COMMANDS:
        check_command(args, str(path))
    assert os.listdir(tmp_path) == ["fuzz.msgpack"]       # nothing written beside it


@FUZZ
@given(data=damaged_traces())
def test_engine_raises_only_bad_input(tmp_path, data):
    """The library API, not just the CLI: a damaged trace is a :class:`BadInput`."""
    path = tmp_path / "fuzz.msgpack"
    path.write_bytes(data)
    try:
        with no_hang(), TraceReader(path) as reader:
            reader.verify_counts()
            replay = Replay.load(reader)
            report = build_report(replay)
            json.dumps(report, allow_nan=False)
            if replay.last_ts is not None:
                build_report(replay, (replay.first_ts + replay.last_ts) // 2)
    except BadInput as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


# -- each class of damage the issue names, pinned --------------------------------
def _trace(tmp_path, mutate, events=None) -> str:
    from tests.tracegen import PFNS
    events = events if events is not None else [
        (1000, 5, 0, 1, (0xA000, 1, PFNS[0], 0, None)),     # table_alloc
        (2000, 6, 1, 1, (0xA000, PFNS[0], 3, None)),       # pte_set
        (3000, 24, 0, 1, ("hello",))]                       # marker
    plan = Plan(events, 2)
    mutate(plan)
    path = tmp_path / "t.msgpack"
    path.write_bytes(plan.encode())
    return str(path)


def _set(getter, key, value):
    def mutate(plan):
        getter(plan)[key] = value
    return mutate


HEADER = lambda p: p.header                      # noqa: E731
ARCH = lambda p: p.header["arch"]                # noqa: E731
ROW0 = lambda p: p.chunks[0][5][0]               # noqa: E731  table_alloc
ROW1 = lambda p: p.chunks[0][5][1]               # noqa: E731  pte_set
CHUNK0 = lambda p: p.chunks[0]                   # noqa: E731
FOOTER = lambda p: p.footer                      # noqa: E731


@pytest.mark.parametrize("mutate, words", [
    (_set(HEADER, "arch", [1, 2]), "header 'arch' is a tuple"),
    (_set(HEADER, "kernel", "6.14"), "header 'kernel' is a str"),
    (_set(ARCH, "page_size", "4096"), "arch 'page_size' is '4096'"),
    (_set(ARCH, "page_size", math.nan), "not a finite number"),
    (_set(ARCH, "ptrs_per_pte", math.inf), "not a finite number"),
    (_set(ARCH, "pte_table_bytes", -4096), "not a size"),
    (_set(HEADER, "cpus", 1 << 63), "header 'cpus' is 9223372036854775808"),
    (_set(HEADER, "workload", b"\x00bin"), "bytes data"),
    (_set(ROW0, 6, -5), "field 2 value -5 is outside"),               # negative pfn
    (_set(ROW0, 6, (1 << 64) - 1), "field 2 value 18446744073709551615 is outside"),
    (_set(ROW0, 4, "0xa000"), "field 0 is str, not u64"),              # mm as text
    (_set(ROW1, 2, "1"), "cpu is str"),                                # mixed CPU types
    (_set(ROW1, 3, 1.5), "pid is float"),
    (_set(lambda p: p.chunks[0][5], 0, {"kind": 5}), "not an array"),   # a row as a map
    (_set(CHUNK0, 4, [1, 2]), "a comm is not a string"),
    (_set(CHUNK0, 2, 1 << 63), "impossible"),                         # max_ts past int64
    (_set(FOOTER, "events", 99), "footer says 99 events"),
    (_set(FOOTER, "kind_counts", [[5, 1], [6, 1], [24, 5]]), "add up to 7"),
    (_set(FOOTER, "cpu_counts", [[0, 2], [70000, 1]]), "unknown CPU"),
])
def test_each_kind_of_damage_is_one_line(tmp_path, capsys, mutate, words):
    path = _trace(tmp_path, mutate)
    for args in (["info"], ["replay", "--json"]):
        assert main([*args, path]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith(f"ptviz: {path}: ") and words in captured.err, \
            captured.err


def test_index_entry_with_min_above_max(tmp_path, capsys):
    def mutate(plan):
        plan.fix_footer_index = False
        plan.footer["chunks"] = [[0, 2000, 1000, 2]]
    path = _trace(tmp_path, mutate)
    assert main(["info", path]) == 2
    assert "index entry 0 is impossible" in capsys.readouterr().err


def test_info_checks_the_counts_it_reports(tmp_path, capsys):
    """A footer whose per-kind counts add up but name the wrong kinds: ``info`` counts
    the events itself; ``--quick`` trusts the footer and says so."""
    path = _trace(tmp_path, _set(FOOTER, "kind_counts", [[5, 2], [24, 1]]))
    assert main(["info", path]) == 2
    assert "footer's counts per kind or per CPU disagree" in capsys.readouterr().err
    assert main(["info", "--quick", path]) == 0
    assert "counts from the footer index, events not checked" in capsys.readouterr().out


@example(header_cpus=1 << 16)
@given(header_cpus=st.integers(0, 1 << 16))
def test_a_large_machine_lists_only_what_reads_as_a_table(tmp_path_factory, header_cpus):
    """Idle CPUs are listed up to 4096; beyond, only the CPUs that appear (the trace's
    events run on CPUs 0 and 1)."""
    path = _trace(tmp_path_factory.mktemp("cpus"), _set(HEADER, "cpus", header_cpus))
    report = build_report(Replay.load(path))
    listed = [c["cpu"] for c in report["cpus"]]
    assert listed == (list(range(max(header_cpus, 2))) if header_cpus <= 4096 else [0, 1])
