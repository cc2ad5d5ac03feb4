"""A large capture parsed in a second process (ptviz/ftrace/parse_child.py): the same
trace, byte for byte, and the same statistics as parsing in this one; its errors as
they were; the child gone whatever way the import ends."""

from __future__ import annotations

import lzma
import os

import pytest

from ptviz.ftrace import importer, parse_child
from ptviz.ftrace.textparse import ParseStats
from replayer.errors import ImportFormatError
from tests.conftest import ROOT
from tests.test_tracecmd import fake_trace_cmd  # noqa: F401  (a fixture)

RAW = os.path.join(ROOT, "traces", "raw")


def _both(monkeypatch, tmp_path, path: str) -> tuple:
    """(bytes, stats) of importing ``path`` here, then in a child."""
    out, children = [], []
    real = parse_child.parsed
    monkeypatch.setattr(parse_child, "parsed", lambda *a: children.append(a) or real(*a))
    for parallel in (False, True):
        monkeypatch.setattr(importer, "PARALLEL", parallel)
        monkeypatch.setattr(importer, "TEXT_MIN_BYTES", 0)
        monkeypatch.setattr(importer, "DAT_MIN_BYTES", 0)
        told: list = []
        target = tmp_path / f"out-{parallel}.msgpack"
        stats = importer.import_file(path, target, progress=lambda *a: told.append(a))
        out.append((target.read_bytes(), stats, told[-1]))
        assert len(children) == parallel       # the second import went through a child
    return out


def _unpacked(tmp_path, name: str, extra: str = "") -> str:
    text = tmp_path / (os.path.basename(name)[:-3])
    text.write_bytes(lzma.open(os.path.join(RAW, name)).read() + extra.encode())
    return str(text)


@pytest.mark.parametrize("name", ["programs/real-6.18-gcc-record.txt.xz",
                                  "qemu-7.3-vmpte-steps.txt.xz",
                                  "cases/real-6.18-thp-plain.txt.xz"])
def test_a_capture_parsed_in_a_child_imports_to_the_same_bytes(monkeypatch, tmp_path, name):
    here, child = _both(monkeypatch, tmp_path, _unpacked(tmp_path, name))
    assert child[0] == here[0] and child[1] == here[1]
    assert child[2] == here[2]             # the last progress: the file's size, in bytes


def test_losses_and_bad_lines_come_back_from_the_child(monkeypatch, tmp_path):
    """Loss markers are records too, and the bad lines (first ones and count) are the
    parser's statistics: both cross from the child as they are."""
    extra = ("CPU:1 [LOST 12 EVENTS]\nnot an ftrace line at all\n"
             "CPU:0 [LOST 99999999999 EVENTS]\n" + "garbage\n" * 30)
    path = _unpacked(tmp_path, "qemu-6.1-vmpte-steps.txt.xz", extra)
    here, child = _both(monkeypatch, tmp_path, path)
    assert child[0] == here[0] and child[1] == here[1]
    # (a count past 2**32 is a loss of unknown size, not a bad line)
    assert here[1]["bad_lines"] == 31 and len(here[1]["first_bad"]) == 5


def test_a_trace_dat_parsed_in_a_child_is_what_trace_cmd_printed(  # noqa: F811
        fake_trace_cmd, monkeypatch, tmp_path):
    text = _unpacked(tmp_path, "programs/real-6.18-gcc-plain.txt.xz")
    dat, _ = fake_trace_cmd(f"cat '{text}'")
    here, child = _both(monkeypatch, tmp_path, dat)
    assert child[0] == here[0] and child[1] == here[1]
    assert child[2][2] == "lines" and child[2][0] == here[2][0]


def test_trace_cmd_failing_in_the_child_is_the_same_one_line_error(  # noqa: F811
        fake_trace_cmd, monkeypatch, tmp_path):
    text = _unpacked(tmp_path, "programs/real-6.18-gcc-plain.txt.xz")
    dat, _ = fake_trace_cmd(f"cat '{text}'\necho 'trace-cmd: broken pipe in CPU 3' >&2\n"
                            f"exit 1")
    monkeypatch.setattr(importer, "DAT_MIN_BYTES", 0)
    with pytest.raises(ImportFormatError) as err:
        importer.import_file(dat, tmp_path / "o.msgpack")
    assert str(err.value) == f"{dat}: trace-cmd report failed: trace-cmd: broken pipe in CPU 3"
    assert not (tmp_path / "o.msgpack").exists()


def _children(path: str) -> list[int]:
    """Live parse_child processes working on ``path``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if b"ptviz.ftrace.parse_child" in argv and path.encode() in argv and state != b"Z":
            found.append(int(pid))
    return found


def test_the_child_is_gone_when_the_import_stops_early(tmp_path):
    """The consumer stops after one record (an inference error, Ctrl-C): the child,
    which ignores SIGINT, is killed and reaped."""
    path = _unpacked(tmp_path, "programs/real-6.18-gcc-record.txt.xz")
    records = parse_child.parsed("text", path, ParseStats())
    assert records is not None
    next(records)
    assert _children(path)
    records.close()
    assert _children(path) == []
