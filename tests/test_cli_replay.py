"""`ptviz replay` on the samples: summary, --json, --at, --fail-on and exit codes."""

import json
import os

import pytest

from ptviz.cli import main
from tests.conftest import TRACES

RECLAIM = os.path.join(TRACES, "reclaim-6.14-x86_64.msgpack")
LEAK = os.path.join(TRACES, "leak-6.13-x86_64.msgpack")
UAF = os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack")


def run_json(capsys, *args):
    code = main(["replay", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_summary_names_what_matters(capsys):
    assert main(["replay", RECLAIM]) == 0
    out = capsys.readouterr().out
    assert "kernel 6.14 (pt_reclaim=y" in out
    assert "reclaimed (freed after PT_RECLAIM detach)          1     4.0 KiB" in out
    # The sample's own VmPTE markers: the kernel's figure beside ptviz's, and the changes.
    assert ("VmPTE: 8 kB (after MADV_DONTNEED)   kernel 8.0 KiB, ptviz 8.0 KiB; "
            "change -4.0 KiB / -4.0 KiB") in out
    assert "3 samples of 1 process; ptviz's changes agree at all 2 later samples" in out
    assert "findings (0)\n  none" in out


def test_json_schema_names(capsys):
    code, rep = run_json(capsys, RECLAIM)
    assert code == 0
    assert {"trace", "mms", "tables", "cpus", "findings", "markers"} <= set(rep)
    assert set(rep["tables"]) >= {"reclaimed", "freed_unmap", "empty_attached", "in_flight",
                                  "lost"}
    assert all(set(v) == {"count", "bytes"} for v in rep["tables"].values())
    (mm,) = rep["mms"]
    assert {"mm", "pids", "comm", "vmpte_bytes", "peak_vmpte_bytes", "tables"} <= set(mm)
    assert (mm["mm"], mm["pids"], mm["comm"]) == ("0xffff888003a1c000", [4242],
                                                  "touch-dontneed")
    assert mm["peak_vmpte_bytes"] == 12288  # one PMD and two PTE tables
    assert rep["tables"]["reclaimed"] == {"count": 1, "bytes": 4096}
    assert rep["tables"]["freed_unmap"] == {"count": 1, "bytes": 4096}
    assert [c["cpu"] for c in rep["cpus"]] == [0, 1]
    assert [(m["text"], m["vmpte_bytes"]) for m in rep["markers"]] == [
        ("VmPTE: 0 kB (start)", 0), ("VmPTE: 12 kB (touched 4 MiB)", 12288),
        ("VmPTE: 8 kB (after MADV_DONTNEED)", 8192)]


def test_markers_agree_with_the_vmpte_each_story_wrote(capsys):
    """The hand stories write the VmPTE they expect into their markers."""
    for trace in (RECLAIM, LEAK):
        _, rep = run_json(capsys, trace)
        for m in rep["markers"]:
            kb = int(m["text"].split()[1])
            assert m["vmpte_bytes"] == kb * 1024, (trace, m)


def test_at_shows_the_leak_before_exit(capsys):
    # After MADV_DONTNEED on 6.13 the emptied PTE table is still attached. The story's
    # marker saying so is its 13th event, 1 µs apart but for two 50 µs touches: 1.000111.
    code, rep = run_json(capsys, LEAK, "--at", "marker:after MADV_DONTNEED")
    assert code == 0 and rep["at"] == 1_000_111_000
    assert rep["tables"]["empty_attached"] == {"count": 1, "bytes": 4096}
    assert rep["mms"][0]["vmpte_bytes"] == 12288
    _, end = run_json(capsys, LEAK)
    assert end["tables"]["empty_attached"]["count"] == 0  # exit freed everything
    code, rep = run_json(capsys, RECLAIM, "--at", "1000115us")
    assert rep["tables"]["in_flight"] == {"count": 1, "bytes": 4096}
    assert rep["tables"]["empty_attached"]["count"] == 0


def test_fail_on_exit_codes(capsys):
    assert main(["replay", UAF, "--fail-on", "use_after_free"]) == 1
    assert "fail-on: use_after_free (is 1)" in capsys.readouterr().err
    assert main(["replay", UAF, "--fail-on", "double_free,lost>0"]) == 0
    assert main(["replay", LEAK, "--at", "1.000111", "--fail-on",
                 "empty_attached_bytes>=4K"]) == 1
    assert main(["replay", LEAK, "--fail-on", "empty_attached_bytes>1M"]) == 0
    assert main(["replay", RECLAIM, "--fail-on", "reclaimed<1"]) == 0
    assert main(["replay", RECLAIM, "--fail-on", "findings", "--fail-on", "reclaimed==1"]) == 1
    capsys.readouterr()


def test_page_table_bytes_is_pagetables_not_vmpte(capsys):
    """Between the reclaim detach and the RCU free, the table has left the process's
    VmPTE (8 KiB: PMD + one PTE table) but is still a page-table page (12 KiB): the
    --fail-on name measures the latter, as the report's page_tables does."""
    at = ["--at", "1000115us"]
    _, rep = run_json(capsys, RECLAIM, *at)
    assert [m["vmpte_bytes"] for m in rep["mms"]] == [8192]
    assert rep["page_tables"]["bytes"] == 12288
    assert main(["replay", RECLAIM, *at, "--fail-on", "page_table_bytes>8K"]) == 1
    assert "fail-on: page_table_bytes>8K (is 12288)" in capsys.readouterr().err
    assert main(["replay", RECLAIM, *at, "--fail-on", "page_table_bytes>12K"]) == 0
    assert main(["replay", RECLAIM, "--fail-on", "peak_page_table_bytes>=12K"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("old, new", [("table_bytes", "page_table_bytes"),
                                      ("peak_table_bytes", "peak_page_table_bytes")])
@pytest.mark.parametrize("command", ["replay", "diff"])
def test_renamed_fail_on_terms_name_the_new_one(capsys, old, new, command):
    """A CI script with the old spelling fails loudly, told what to write instead."""
    traces = [RECLAIM] if command == "replay" else [LEAK, RECLAIM]
    assert main([command, *traces, "--fail-on", f"{old}>1M"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old} is now {new} " in err


@pytest.mark.parametrize("args, words", [
    (["--fail-on", "nonsense>1"], "--fail-on 'nonsense>1'"),
    (["--fail-on", "lost>lots"], "lost>lots"),
    (["--at", "yesterday"], "--at 'yesterday'"),
])
def test_usage_errors_exit_2(capsys, args, words):
    assert main(["replay", UAF, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_bad_trace_exit_2(tmp_path, capsys):
    bad = tmp_path / "x.msgpack"
    bad.write_bytes(open(RECLAIM, "rb").read()[:200])
    assert main(["replay", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"ptviz: {bad}: byte 10:")


def test_truncated_trace_replays_what_is_intact(tmp_path, capsys):
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(open(RECLAIM, "rb").read()[:-30])
    code, rep = run_json(capsys, str(cut))
    assert code == 0 and len(rep["trace"]["warnings"]) == 1
    assert rep["tables"]["reclaimed"]["count"] == 1
