"""The raw ftrace text of the real QEMU captures (traces/raw/*.txt.xz), re-imported every run.

The msgpack samples in traces/ are importer output frozen at capture time; these tests import
the kernel's own text again with today's importer and check the result against the VmPTE the
workload wrote into the trace at each marker. A new capture dropped into traces/raw/ is
picked up here; it needs a row in CAPTURES (how to import it) or the test says so.
"""

import glob
import lzma
import os
import shutil

import pytest

from ptviz.ftrace.importer import import_file
from replayer.replay import Replay
from replayer.report import build_report
from tests.conftest import TRACES
from tests.test_ftrace import check_vmpte, marker_deltas

RAW_DIR = os.path.join(TRACES, "raw")
RAW = sorted(os.path.basename(p) for p in glob.glob(os.path.join(RAW_DIR, "*.txt.xz")))

PAGE = 4096
EMPTIED = 16   # the workload MADV_DONTNEEDs 32 MiB: 16 PTE tables (2 MiB each) emptied

# file → (the kernel's CONFIG_PT_RECLAIM, the frozen sample made from the same text or None)
CAPTURES = {
    "qemu-6.1-vmpte-steps.txt.xz": (False, "real-6.1-x86_64-qemu-vmpte-steps.msgpack"),
    "qemu-7.3-vmpte-steps.txt.xz": (True, "real-7.3-x86_64-qemu-vmpte-steps.msgpack"),
}


def test_the_raw_captures_are_there():
    # An empty or missing traces/raw/ would leave the parametrized tests below with nothing to
    # run, and pass: say so instead.
    assert len(RAW) >= 2 and set(CAPTURES) <= set(RAW), (RAW_DIR, RAW)


@pytest.fixture(scope="module", params=RAW)
def capture(request, tmp_path_factory):
    """(name, replay, report) of one raw capture, imported with the current importer."""
    name = request.param
    assert name in CAPTURES, (f"traces/raw/{name}: add it to CAPTURES in {__file__} "
                              f"(pt_reclaim of its kernel)")
    pt_reclaim, _ = CAPTURES[name]
    tmp = tmp_path_factory.mktemp(name.split(".txt")[0])
    text = tmp / "trace.txt"
    with lzma.open(os.path.join(RAW_DIR, name), "rb") as src, open(text, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    out = tmp / "trace.msgpack"
    stats = import_file(str(text), out, {"kernel": {"pt_reclaim": pt_reclaim}})
    assert stats["bad_lines"] == 0, stats["first_bad"]
    replay = Replay.load(out)
    return name, replay, build_report(replay)


def markers_by_label(report):
    """The workload's markers ("VmPTE: N kB label"), by label; one process wrote them all."""
    marks = {m["text"].split()[-1]: m for m in report["markers"]}
    assert {"start", "touched", "dontneed", "munmap"} <= set(marks), list(marks)
    assert len({m["mm"] for m in marks.values()}) == 1
    return marks


def test_table_bytes_follow_the_kernels_vmpte(capture):
    # At every marker, the change of the process's page-table bytes since its first marker
    # equals the change of the VmPTE the kernel reported, to within one table page.
    _, _, report = capture
    rows = check_vmpte(report)
    assert len(rows) == 4, rows
    touched = next(kernel for text, kernel, _ in rows if text.endswith(" touched"))
    assert touched >= 32 * PAGE   # 64 MiB touched: at least 32 PTE tables were allocated


def test_madv_dontneed_story(capture):
    name, replay, report = capture
    pt_reclaim, _ = CAPTURES[name]
    marks = markers_by_label(report)
    deltas = {text.split()[-1]: (kernel, ptviz) for text, kernel, ptviz in marker_deltas(report)}
    drop_kernel = deltas["touched"][0] - deltas["dontneed"][0]
    drop_ptviz = deltas["touched"][1] - deltas["dontneed"][1]
    mm = int(marks["touched"]["mm"], 16)   # the report names it in hex
    detached = [e.fields for _, e in replay.events(kinds={"table_detach"})
                if marks["touched"]["ts"] < e.ts <= marks["dontneed"]["ts"]
                and e.fields["mm"] == mm]
    if not pt_reclaim:
        # No PT_RECLAIM: MADV_DONTNEED empties 16 PTE tables and they stay attached; neither
        # the kernel's VmPTE nor ptviz's table bytes drop there.
        assert (drop_kernel, drop_ptviz) == (0, 0), deltas
        assert detached == []
        at_dontneed = build_report(replay, marks["dontneed"]["ts"])
        assert at_dontneed["tables"]["empty_attached"]["count"] == EMPTIED
        assert report["tables"]["reclaimed"]["count"] == 0
    else:
        # PT_RECLAIM, captured with fprobes: the 16 emptied tables are detached during the
        # madvise, each seen by the ___pte_free_tlb probe (not inferred), and freed by RCU.
        assert drop_kernel == drop_ptviz == EMPTIED * PAGE, deltas
        assert len(detached) == EMPTIED, detached
        assert all(f["cause"] == "reclaim" and f["inferred"] is False for f in detached)
        pfns = {f["pfn"] for f in detached}
        log = replay.log
        freed = {r["pfn"]: r["free_path"] for r in map(log.record, range(len(log)))
                 if r["pfn"] in pfns and r["detach_cause"] == "reclaim"}
        assert freed == dict.fromkeys(pfns, "rcu")


def test_the_frozen_sample_comes_from_this_text(capture):
    # The msgpack sample in traces/ was converted from this same capture: same markers at the
    # same instants (traces/qemu/capture.sh writes both).
    name, _, report = capture
    _, sample = CAPTURES[name]
    if sample is None:
        pytest.skip(f"{name} has no frozen sample")
    frozen = build_report(Replay.load(os.path.join(TRACES, sample)))
    assert ([(m["ts"], m["text"]) for m in frozen["markers"]]
            == [(m["ts"], m["text"]) for m in report["markers"]])
