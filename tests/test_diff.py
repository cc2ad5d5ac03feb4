"""``ptviz diff``: two kernels, two settings, one comparison a CI job can gate on."""

import json

import pytest

from ptviz.cli import main
from ptviz.sim.run import simulate
from replayer.diff import diff_reports, marker_key, parse_diff_fail_on
from replayer.errors import UsageError
from replayer.replay import Replay
from replayer.report import build_report

PTE = 4096          # x86_64: one PTE table, in VmPTE


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    """The cover letter's loop at 6.13 and 6.14, and the walkers workload with semi-RCU
    freeing synced by a broadcast or a targeted IPI (same seed: only the flag differs)."""
    d = tmp_path_factory.mktemp("diff")
    runs = {"6.13": ("6.13", "coverletter", {"size": "64M"}, {}),
            "6.14": ("6.14", "coverletter", {"size": "64M"}, {}),
            "broadcast": ("6.14", "walkers", {"size": "8M"},
                          {"table_free": "semi_rcu", "sync": "ipi_broadcast"}),
            "targeted": ("6.14", "walkers", {"size": "8M"},
                         {"table_free": "semi_rcu", "sync": "ipi_targeted"})}
    out = {}
    for name, (kernel, workload, params, sets) in runs.items():
        path = d / f"{name}.msgpack"
        simulate(str(path), "x86_64", kernel, workload, params, sets, cpus=4, seed=1)
        out[name] = str(path)
    return out


def diff_of(sims, a, b):
    return diff_reports(build_report(Replay.load(sims[a])), build_report(Replay.load(sims[b])))


def test_613_holds_the_empty_tables_that_614_reclaimed(sims):
    d = diff_of(sims, "6.13", "6.14")
    # 64 MiB in 2 MiB steps: 32 PTE tables emptied by MADV_DONTNEED. 6.13 keeps them
    # attached until exit; 6.14 reclaims each at its MADV_DONTNEED.
    (loop,) = [m for m in d["markers"] if m["key"] == "VmPTE: # kB (after the loop)"]
    assert loop["vmpte_bytes"]["delta"] == -32 * PTE
    assert loop["empty_attached_bytes"] == {"a": 32 * PTE, "b": 0, "delta": -32 * PTE}
    assert d["peaks"]["empty_attached"]["a"]["count"] == 32
    assert d["tables"]["reclaimed"]["a"]["count"] == 0
    assert d["tables"]["reclaimed"]["b"]["count"] == 32
    assert d["tables"]["freed_unmap"]["delta_count"] == -32
    assert d["markers_only_a"] == d["markers_only_b"] == []


def test_targeted_sync_sends_the_ipis_broadcast_did_not(sims):
    d = diff_of(sims, "broadcast", "targeted")
    m = d["metrics"]
    # Broadcast: every sync interrupts the 3 other CPUs; targeted only those inside an
    # IRQ-off walk of the mm. The TLB flushes are the same run's: the whole difference
    # in IPIs sent is the syncs' targets.
    assert m["sync_targets"]["a"] == 3 * m["syncs"]["a"]
    assert m["sync_targets"]["b"] < 3 * m["syncs"]["b"]
    assert m["tlb_flushes"]["delta"] == 0
    assert m["ipis_sent"]["delta"] == m["sync_targets"]["delta"] < 0
    per_cpu = {c["cpu"]: c["ipis_received"]["delta"] for c in d["cpus"]}
    assert sum(per_cpu.values()) == m["ipis_received"]["delta"]


def test_cli_text_json_and_fail_on(sims, capsys):
    assert main(["diff", sims["6.13"], sims["6.14"]]) == 0
    text = capsys.readouterr().out
    assert "VmPTE 136.0 KiB → 8.0 KiB (-128.0 KiB)" in text
    assert "reclaimed (freed after PT_RECLAIM detach)   0 → 32 (+32)" in text
    assert main(["diff", "--json", sims["6.13"], sims["6.14"]]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == 2 and d["metrics"]["reclaimed"] == {"a": 0, "b": 32, "delta": 32}
    # A gate: B must not hold more empty tables than A, nor send 10 % more IPIs.
    args = ["diff", sims["6.14"], sims["6.13"], "--fail-on", "empty_attached_bytes>+1M"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args[:-1] + ["peak_empty_attached_bytes>+64K,ipis_sent>+10%"]) == 1
    err = capsys.readouterr().err
    assert "peak_empty_attached_bytes>+64K (A 4096, B 131072: +126976)" in err
    assert "ipis_sent" not in err
    assert main(["diff", sims["6.13"], sims["6.14"], "--fail-on", "nonsense>1"]) == 2


def test_fail_on_terms():
    (c,) = parse_diff_fail_on(["ipis_sent>+10%"])
    diff = {"metrics": {"ipis_sent": {"a": 100, "b": 111, "delta": 11}}}
    assert c.percent and c.value == 10 and c.holds(diff)
    assert not parse_diff_fail_on(["ipis_sent>+20%"])[0].holds(diff)
    assert parse_diff_fail_on(["ipis_sent<-1K"])[0].value == -1024
    (bare,) = parse_diff_fail_on(["use_after_free"])          # any difference
    assert bare.holds({"metrics": {"use_after_free": {"a": 1, "b": 0, "delta": -1}}})
    # From nothing to something is an infinite increase.
    assert parse_diff_fail_on(["ipis_sent>+500%"])[0].holds(
        {"metrics": {"ipis_sent": {"a": 0, "b": 1, "delta": 1}}})
    for bad in ("ipis_sent>+x%", "ipis_sent>+nan%", "no_such>1", "ipis_sent>>1"):
        with pytest.raises(UsageError):
            parse_diff_fail_on([bad])


def test_markers_match_by_text_without_numbers_and_by_order():
    assert marker_key("VmPTE: 164 kB (touched 0x7f00 at 1.5)") == "VmPTE: # kB (touched # at #)"

    def report(texts):
        return {"markers": [{"text": t, "ts": i, "vmpte_bytes": i,
                             "empty_attached": {"count": 0, "bytes": 0}}
                            for i, t in enumerate(texts)]}
    from replayer.diff import _markers
    shared, only_a, only_b = _markers(report(["step 1", "step 2", "x", "step 3"]),
                                      report(["step 9", "y", "step 8"]))
    assert [(m["text_a"], m["text_b"]) for m in shared] == [("step 1", "step 9"),
                                                            ("step 2", "step 8")]
    assert only_a == ["x", "step 3"] and only_b == ["y"]
