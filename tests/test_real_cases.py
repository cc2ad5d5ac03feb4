"""Real 6.18 captures of the paths programs take every day, re-imported every run.

traces/raw/cases/ holds, for each mode of traces/workloads/pt_cases.c (threads, fork-exec,
mremap, vma-split, thp), the raw text of two recordings on this machine's 6.18 kernel
(CONFIG_PT_RECLAIM=y): ``-record`` is what ``ptviz record --keep-text`` kept (TGID column,
the full event set), ``-plain`` is a user's own tracefs instance with the stock event set
and no record-tgid (traces/capture_plain.sh). The workload writes its VmPTE into the trace
at every step; the tests import the text with today's importer and hold ptviz's table bytes
to the kernel's number, then check each case's story and the notes that explain it.
"""

import glob
import lzma
import os
import shutil

import pytest

from ptviz.ftrace.importer import import_file
from ptviz.ftrace.record import EVENTS
from replayer.replay import Replay
from replayer.report import build_report
from tests.conftest import TRACES
from tests.test_ftrace import marker_deltas

CASES_DIR = os.path.join(TRACES, "raw", "cases")
FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CASES_DIR, "*.txt.xz")))
MODES = ("threads", "fork-exec", "mremap", "vma-split", "thp")
SLACK = 2 * 4096          # two table pages, as the issue allows
PAGE = 4096


def test_every_case_was_captured_both_ways():
    # A missing file would leave the parametrized tests with less to run, and pass.
    expected = {f"real-6.18-{m}-{how}.txt.xz" for m in MODES for how in ("record", "plain")}
    assert expected <= set(FILES), sorted(expected - set(FILES))


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    """``load(mode, how)`` → (replay, report, markers by label) of one capture, imported
    once per module."""
    done = {}

    def load_one(mode, how):
        if (mode, how) not in done:
            done[mode, how] = _import(f"real-6.18-{mode}-{how}.txt.xz", how, tmp_path_factory)
        return done[mode, how]
    return load_one


def _import(name, how, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(name.split(".txt")[0])
    text = tmp / "trace.txt"
    with lzma.open(os.path.join(CASES_DIR, name), "rb") as src, open(text, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    # What each way of recording tells the importer: ptviz record writes the kernel's
    # PT_RECLAIM (from its config) and the events it enabled; a user's `ptviz convert`
    # of their own text says nothing.
    header = ({"kernel": {"pt_reclaim": True}, "record": {"events": list(EVENTS)}}
              if how == "record" else {})
    out = tmp / "trace.msgpack"
    stats = import_file(str(text), out, header)
    assert stats["bad_lines"] == 0, stats["first_bad"]
    replay = Replay.load(out)
    report = build_report(replay)
    marks = {" ".join(m["text"].split()[3:]): m for m in report["markers"]}
    return replay, report, marks


HOW = pytest.mark.parametrize("how", ["record", "plain"])


def notes_text(report):
    return "\n".join(report["inference_notes"])


def detaches(replay, marks, after, upto, mm=None):
    """The (cause, inferred) of each table detach between two markers (of ``mm``)."""
    return sorted((e.fields["cause"], e.fields["inferred"]) for _, e in replay.events(
        marks[after]["ts"], marks[upto]["ts"], kinds={"table_detach"})
        if e.ts > marks[after]["ts"] and (mm is None or e.fields["mm"] == mm))


@pytest.mark.parametrize("name", FILES)
def test_table_bytes_follow_the_kernels_vmpte_at_every_marker(load, name):
    mode, how = name[len("real-6.18-"):-len(".txt.xz")].rsplit("-", 1)
    _, report, _ = load(mode, how)
    rows = marker_deltas(report)
    assert len(rows) >= 4, rows
    off = [(text, kernel, ptviz) for text, kernel, ptviz in rows if abs(kernel - ptviz) > SLACK]
    assert off == [], (mode, how, off)


@HOW
def test_threads_share_their_process_mm(load, how):
    _, report, marks = load("threads", how)
    assert len({m["mm"] for m in marks.values()}) == 1
    # Six threads each fault 8 MiB (4 PTE tables): VmPTE grows by at least 24 tables.
    rows = {text: kernel for text, kernel, _ in marker_deltas(report)}
    assert rows[marks["6 threads touched 8M each"]["text"]] >= 24 * PAGE
    signal = ("the TGID column names each task's process; 7 clone(s) were told apart: "
              "7 by task_newtask's clone_flags (CLONE_VM)" if how == "record" else
              "no TGID column (record-tgid was off)")
    assert signal in notes_text(report)
    if how == "plain":
        assert "by whether the parent allocated a pgd inside the fork" in notes_text(report)


@HOW
def test_fork_copies_count_in_the_child_and_exec_starts_afresh(load, how):
    replay, report, marks = load("fork-exec", how)
    parent, child = marks["parent touched 32M"], marks["child: after fork (copied tables)"]
    assert parent["mm"] != child["mm"]
    # The child was born in the trace: all its tables are known, so its bytes are the
    # kernel's VmPTE itself, not only its changes.
    kernel = int(child["text"].split()[1]) * 1024
    assert abs(child["vmpte_bytes"] - kernel) <= SLACK, (child, kernel)
    assert "page-table pages a fork copied into its child (dup_mmap)" in notes_text(report)
    new_image = marks["exec: new image"]
    if how == "record":
        # sys_enter_execve and sched_process_exec: a new mm, as small as the kernel's
        assert new_image["mm"] != child["mm"]
        assert abs(new_image["vmpte_bytes"] - int(new_image["text"].split()[1]) * 1024) <= SLACK
        assert "built by an execve for its new image" in notes_text(report)
    else:
        assert "exec is not in the trace" in notes_text(report)
    old = detaches(replay, marks, "child: touched 8M more", "exec: new image",
                   mm=int(child["mm"], 16))
    # The old image's tables go with the exec (exec_mmap → exit_mmap): all 32 the child
    # had (VmPTE 128 kB); the plain text cannot name the cause.
    assert len(old) >= 28 and {c for c, _ in old} == ({"exit"} if how == "record" else
                                                      {"other"}), old


@HOW
def test_mremap_moves_tables_with_the_mapping(load, how):
    replay, report, marks = load("mremap", how)
    at_dontneed = detaches(replay, marks, "aligned move", "dontneed half at the new address")
    if how == "record":
        assert "8 PTE tables moved with an mremap to a destination congruent modulo 2 MiB" \
            in notes_text(report)
        # the tables moved, so MADV_DONTNEED at the new address reclaims them
        assert at_dontneed == [("reclaim", True)] * 4
        assert detaches(replay, marks, "retouched at the new address", "unaligned move") \
            == [("munmap", True)] * 8
    else:
        # The plain text has no mremap: ptviz cannot know the tables moved, says so, and
        # places their detaches at the zap just before their frees (VmPTE stays right).
        assert "mremap is not in the trace" in notes_text(report)
        assert "the mapping had likely moved where the trace does not show" \
            in notes_text(report)
        assert at_dontneed == [("other", True)] * 4


@HOW
def test_reclaim_needs_one_vma_over_the_whole_span(load, how):
    replay, report, marks = load("vma-split", how)
    # mprotect split each 2 MiB span into two 1 MiB VMAs: MADV_DONTNEED zaps them one at
    # a time and PT_RECLAIM frees nothing; once merged again, it reclaims the 4 tables.
    assert detaches(replay, marks, "mprotect split", "dontneed over split VMAs") == []
    assert detaches(replay, marks, "merged and retouched the second half",
                    "dontneed over one VMA") == [("reclaim", True)] * 4
    if how == "plain":
        assert "mprotect is not in the trace" in notes_text(report)


@HOW
def test_thp_deposits_count_and_go_with_their_huge_pmd(load, how):
    replay, report, marks = load("thp", how)
    rows = {text: kernel for text, kernel, _ in marker_deltas(report)}
    # 8 huge faults: no PTE table maps them, yet each deposited one (VmPTE +32 kB).
    assert rows[marks["huge faults"]["text"]] == 8 * PAGE
    assert "8 PTE tables deposited under huge PMDs (THP) were counted in VmPTE" \
        in notes_text(report)
    assert detaches(replay, marks, "split one", "dontneed one whole huge PMD") \
        == [("huge_zap", True)]
    if how == "record":
        assert "1 withdrawn by a split" in notes_text(report)
