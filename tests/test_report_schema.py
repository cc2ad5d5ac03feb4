"""The published JSON Schemas (replayer/report.schema.json, diff.schema.json) hold for
every report ptviz writes: each sample's, at its end and midway, simulated workloads',
an imported ftrace capture's, a lossy trace's, and diffs; and they reject drift."""

from __future__ import annotations

import copy
import glob
import json
import os
from importlib.resources import files

import jsonschema
import pytest

from ptviz.cli import main
from replayer.diff import METRICS
from replayer.report import STEPS
from replayer.state import CLASSES, FINDING_KINDS
from tests.conftest import TRACES
from tests.story import MM, Story

SAMPLES = sorted(glob.glob(os.path.join(TRACES, "*.msgpack")))
CAPTURE = os.path.join(TRACES, "raw", "cases", "real-6.18-thp-plain.txt.xz")
SIMULATIONS = {
    "coverletter-6.13": ["--kernel", "6.13", "--param", "size=8M"],
    "walkers-semi-rcu": ["--workload", "walkers", "--param", "size=8M", "--param",
                         "walker=pte_offset_map", "--set", "table_free=semi_rcu"],
    "fork-exit": ["--workload", "fork-exit", "--param", "children=2", "--param", "size=4M"],
    "collapse-arm64": ["--arch", "arm64", "--workload", "collapse", "--param", "regions=4"],
}
MS = 1_000_000


def _schema(name: str) -> jsonschema.Draft202012Validator:
    """The schema as installed with the package (a packaging mistake shows here)."""
    schema = json.loads((files("replayer") / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


REPORT, DIFF = _schema("report"), _schema("diff")


def _json(capsys, *args: str) -> dict:
    assert main(list(args)) in (0, 1), args
    return json.loads(capsys.readouterr().out)


def _valid(validator: jsonschema.Draft202012Validator, doc: dict) -> dict:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(doc)]
    assert not errors, errors[:5]
    return doc


def _seconds(ns: int) -> str:
    return f"{ns // 10**9}.{ns % 10**9:09d}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    paths = {}
    for name, args in SIMULATIONS.items():
        paths[name] = str(out / f"{name}.msgpack")
        assert main(["simulate", *args, "--cpus", "4", "-o", paths[name]]) == 0
    return paths


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    """A walker's use-after-free hidden by a ring-buffer drop on its CPU, an IPI never
    handled: events_lost and ipi_unanswered findings (pfn and mm null), a suppressed
    one, and a walker still inside its section midway."""
    path = tmp_path_factory.mktemp("lossy") / "t.msgpack"
    s = Story(path, cpus=3)
    s.at(1 * MS).on(0).table_alloc(mm=MM, level=1, pfn=0x5000, addr=0)
    s.at(2 * MS).on(1).walk_begin(mm=MM, walker="gup_fast", protect="irq_off")
    s.walk_table(pfn=0x5000)
    s.at(3 * MS).on(2).ipi_enter(reason="call_function")
    s.at(4 * MS).on(0).ipi_send(targets=(2,), reason="tlb_shootdown", callsite="x")
    s.at(5 * MS).on(1, None).lost(count=1000)
    s.at(6 * MS).on(0).table_detach(mm=MM, pfn=0x5000, cause="munmap")
    s.table_free(pfn=0x5000, path="direct")
    s.at(40 * MS).on(0, None).marker(text="end")
    s.writer.close()
    return str(path)


def _reports(capsys, path: str) -> list[dict]:
    """The report at the end and midway (``--at``)."""
    end = _valid(REPORT, _json(capsys, "replay", "--json", path))
    first, last = end["trace"]["first_ts"], end["trace"]["last_ts"]
    mid = _valid(REPORT, _json(capsys, "replay", "--json", "--at",
                               _seconds((first + last) // 2), path))
    assert mid["at"] == (first + last) // 2
    return [end, mid]


def test_every_sample_report_holds_to_the_schema(capsys):
    assert len(SAMPLES) >= 10
    for path in SAMPLES:
        _reports(capsys, path)


def test_simulated_imported_and_lossy_reports_hold_to_the_schema(capsys, simulated, lossy):
    reports = [r for path in [*simulated.values(), CAPTURE, lossy]
               for r in _reports(capsys, path)]
    reports.append(_valid(REPORT, _json(capsys, "replay", "--json", "--at", "2ms", lossy)))
    # Every optional shape the schema allows was met, so each branch was checked.
    findings = [f for r in reports for f in r["findings"]]
    assert {f["kind"] for f in findings} >= {"use_after_free", "events_lost",
                                             "ipi_unanswered"}
    assert any(f["pfn"] is None and f["mm"] is None for f in findings)
    assert any(r["findings_suppressed"] for r in reports)
    assert any(c["walker"] for r in reports for c in r["cpus"])
    assert any(r["syncs"] for r in reports)
    assert any(m["mm"] is None and m["vmpte_bytes"] is None
               for r in reports for m in r["markers"])
    imported = _json(capsys, "replay", "--json", CAPTURE)["trace"]
    assert imported["arch"]["inferred"] is True and imported["workload"] is None


def test_diffs_hold_to_the_diff_schema(capsys, simulated):
    pairs = [(os.path.join(TRACES, "sim-coverletter-6.13-x86_64.msgpack"),
              os.path.join(TRACES, "sim-coverletter-6.14-x86_64.msgpack")),
             (os.path.join(TRACES, "real-6.1-x86_64-qemu-vmpte-steps.msgpack"), CAPTURE),
             (os.path.join(TRACES, "reclaim-6.14-x86_64.msgpack"), simulated["walkers-semi-rcu"])]
    diffs = [_valid(DIFF, _json(capsys, "diff", "--json", a, b)) for a, b in pairs]
    assert any(d["markers"] for d in diffs) and any(d["findings_only_b"] for d in diffs)
    assert [d["b"]["arch_inferred"] for d in diffs] == [False, True, False]


@pytest.mark.parametrize("drift", [
    lambda r: r["mms"][0].update(table_bytes=r["mms"][0].pop("vmpte_bytes")),
    lambda r: r["trace"].update(workload=["python3", "x.py"]),
    lambda r: r["trace"]["arch"].pop("inferred"),
    lambda r: r.update(extra=1),
    lambda r: r["tables"].pop("lost"),
    lambda r: r["findings"].append({**r["findings"][0], "kind": "new_kind"}),
    lambda r: r["findings"][0].update(pfn=0x22000),
    lambda r: r["peaks"]["live"].update(ts="1.0"),
])
def test_the_report_schema_rejects_drift(capsys, drift):
    report = _json(capsys, "replay", "--json", os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack"))
    _valid(REPORT, report)
    drifted = copy.deepcopy(report)
    drift(drifted)
    assert not REPORT.is_valid(drifted)


def test_the_schemas_name_what_the_code_does():
    report = json.loads((files("replayer") / "report.schema.json").read_text())
    diff = json.loads((files("replayer") / "diff.schema.json").read_text())
    defs = report["$defs"]
    assert defs["classes"]["required"] == list(CLASSES)
    assert defs["finding_kind"]["enum"] == list(FINDING_KINDS)
    assert report["properties"]["provenance"]["required"] == list(STEPS)
    assert diff["properties"]["metrics"]["required"] == list(METRICS)
    # The diff schema stands alone; what it shares with the report's is the same.
    for name, shared in diff["$defs"].items():
        if name in defs:
            assert shared == defs[name], name
