"""The report's ``trace``: one shape for the workload whatever made the trace, and the
architecture an import assumed (or was told with ``convert --arch``)."""

from __future__ import annotations

import json
import os

import pytest

from ptviz.cli import main
from ptviz.ftrace.arch import importable
from tests.conftest import TRACES

CAPTURE = os.path.join(TRACES, "raw", "cases", "real-6.18-thp-plain.txt.xz")


def _trace(capsys, path: str) -> dict:
    assert main(["replay", "--json", path]) == 0
    return json.loads(capsys.readouterr().out)["trace"]


def test_a_recorded_trace_names_the_command_it_traced(capsys):
    work = _trace(capsys, os.path.join(TRACES, "real-6.18-x86_64-vmpte-steps.msgpack"))["workload"]
    assert work == {"name": "python3", "params": {},
                    "command": ["python3", "traces/workloads/vmpte_steps.py", "--reader",
                                "--fork"]}


def test_a_simulated_trace_names_its_workload_and_every_parameter(capsys, tmp_path):
    out = str(tmp_path / "t.msgpack")
    assert main(["simulate", "--workload", "walkers", "--param", "size=4M", "--param",
                 "batch_fail=0.5", "-o", out]) == 0
    # The model parameter (batch_fail) sits with the workload's: both were --param.
    assert _trace(capsys, out)["workload"] == {
        "name": "walkers", "params": {"size": "4M", "batch_fail": "0.5"}, "command": None}
    hand = _trace(capsys, os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack"))
    assert hand["workload"] == {"name": "hand:semi-rcu-walker", "params": {}, "command": None}


def test_an_import_records_the_architecture_it_assumed(capsys, tmp_path):
    trace = _trace(capsys, CAPTURE)
    assert trace["workload"] is None
    assert (trace["arch"]["name"], trace["arch"]["inferred"]) == ("x86_64", True)
    out = str(tmp_path / "t.msgpack")
    assert main(["convert", CAPTURE, out]) == 0
    capsys.readouterr()
    assert main(["info", out]) == 0
    assert "  arch      x86_64 (assumed by the ftrace importer; ptviz convert --arch sets " \
           "it): page_size=4096" in capsys.readouterr().out


def test_convert_arch_sets_it_and_its_sizes(capsys, tmp_path):
    """32-bit arm: a PTE table is 512 entries of 4 bytes, so 2 KiB of VmPTE each."""
    x86, arm = str(tmp_path / "x86.msgpack"), str(tmp_path / "arm.msgpack")
    assert main(["convert", CAPTURE, x86]) == 0
    assert main(["convert", "--arch", "arm", CAPTURE, arm]) == 0
    capsys.readouterr()
    reports = []
    for path in (x86, arm):
        assert main(["replay", "--json", path]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[1]["trace"]["arch"]["name"] == "arm"
    assert reports[1]["trace"]["arch"]["inferred"] is False
    assert (reports[0]["pte_table_bytes"], reports[1]["pte_table_bytes"]) == (4096, 2048)
    count = reports[0]["tables"]["live"]["count"]
    assert reports[1]["tables"]["live"] == {"count": count, "bytes": count * 2048}


@pytest.mark.parametrize("name, words", [
    ("sparc", "--arch 'sparc': not an architecture ptviz knows; one of x86_64, "),
    ("arm64-64k", "--arch arm64-64k: its PTE tables map 512 MiB in 64 KiB pages"),
])
def test_convert_arch_refuses_what_it_cannot_take_in_one_line(capsys, tmp_path, name, words):
    out = tmp_path / "t.msgpack"
    assert main(["convert", "--arch", name, CAPTURE, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "arm-lpae" in err
    assert not out.exists()


def test_convert_help_lists_the_architectures_it_takes(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "one of " + ", ".join(importable()) + " (4 KiB pages" in text
