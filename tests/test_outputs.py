"""Outputs appear whole or not at all, and never where they must not: ptviz runs as root.

Every command that writes (simulate, convert, record, bench --keep) refuses a path
that is a device, a FIFO, a socket, a directory or a symbolic link, refuses an
existing file unless --force, and leaves nothing behind when it fails or is
killed by SIGTERM or SIGINT.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from ptviz.cli import main
from replayer.errors import OutputError
from replayer.traceio import TraceReader, TraceWriter
from replayer.traceio.atomic import AtomicOutput
from tests.conftest import PTVIZ, TRACES

SAMPLE = os.path.join(TRACES, "reclaim-6.14-x86_64.msgpack")
TEXT = "           a-1 [000] ..... 1.000000: kfree: ptr=0\n"
IS_ROOT = os.geteuid() == 0


WRITERS = ("simulate", "convert", "record", "record --keep-text", "bench --keep")


def _writers(tmp_path, out):
    """Each writing command, aimed at ``out``, as quick to run as it can be."""
    text = tmp_path / "in.txt"
    text.write_text(TEXT)
    return {
        "simulate": ["simulate", "--param", "size=4M", "-o", str(out)],
        "convert": ["convert", str(text), str(out)],
        "record": ["record", "-o", str(out), "--tail", "0", "--", "true"],
        "record --keep-text": ["record", "-o", str(tmp_path / "r.msgpack"), "--keep-text",
                               str(out), "--tail", "0", "--", "true"],
        "bench --keep": ["bench", "--events", "2000", "--seeks", "2", "--mixes", "none",
                         "--no-tui", "--no-convert", "--no-sweep", "--keep", str(out)],
    }


def _special(kind, path, tmp_path):
    if kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))    # what /dev/null is
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)            # a socket path is limited to 108 bytes
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(path.name)
            sock.close()
        finally:
            os.chdir(here)
    elif kind == "directory":
        os.mkdir(path)
    elif kind == "symlink to a file":
        (tmp_path / "target").write_text("precious")
        os.symlink(tmp_path / "target", path)
    elif kind == "dangling symlink":
        os.symlink(tmp_path / "nowhere", path)


SPECIAL = ["fifo", "socket", "directory", "symlink to a file", "dangling symlink",
           pytest.param("device", marks=pytest.mark.skipif(not IS_ROOT, reason="mknod needs root"))]
WORDS = {"device": "is a character device", "fifo": "is a FIFO", "socket": "is a socket",
         "directory": "is a directory", "symlink to a file": "is a symbolic link",
         "dangling symlink": "is a symbolic link"}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("command", WRITERS)
def test_special_outputs_are_refused_even_with_force(tmp_path, capsys, command, kind, force):
    out = tmp_path / "out.msgpack"
    _special(kind, out, tmp_path)
    before = os.lstat(out)
    args = _writers(tmp_path, out)[command] + (["--force"] if force else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ptviz: {out}: {WORDS[kind]}"), err
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino, after.st_rdev) == \
        (before.st_mode, before.st_ino, before.st_rdev)
    if kind == "symlink to a file":
        assert (tmp_path / "target").read_text() == "precious"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


@pytest.mark.parametrize("command", ["simulate", "convert", "bench --keep"])
def test_an_existing_file_is_kept_unless_force(tmp_path, capsys, command):
    out = tmp_path / "out.msgpack"
    out.write_bytes(b"a 6.6 MB recording")
    args = _writers(tmp_path, out)[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"ptviz: {out}: exists; use --force to replace it\n"
    assert out.read_bytes() == b"a 6.6 MB recording"
    assert main(args + ["--force"]) == 0
    with TraceReader(out) as r:
        assert r.event_count > 0
    assert sorted(os.listdir(tmp_path)) == sorted(["in.txt", "out.msgpack"])


@pytest.mark.skipif(not IS_ROOT, reason="record needs root")
def test_record_refuses_before_running_the_command(tmp_path, capsys):
    out = tmp_path / "out.msgpack"
    out.write_bytes(b"keep")
    flag = tmp_path / "ran"
    assert main(["record", "-o", str(out), "--tail", "0", "--", "touch", str(flag)]) == 2
    assert not flag.exists() and out.read_bytes() == b"keep"


def test_a_failed_conversion_leaves_nothing(tmp_path, capsys):
    garbage = tmp_path / "g.txt"
    garbage.write_text("hello\nworld\n")
    out = tmp_path / "out.msgpack"
    assert main(["convert", str(garbage), str(out)]) == 2
    assert "no ftrace event line found" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["g.txt"]


def test_running_out_of_memory_is_one_line_and_leaves_nothing(tmp_path, capsys,
                                                             monkeypatch):
    """A trace larger than memory (or one claiming to be) fails like a full disk: one
    line, exit 2, the output removed, no traceback."""
    def no_memory(self, *args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(TraceReader, "read_chunk", no_memory)
    assert main(["convert", SAMPLE, str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "ptviz: out of memory: this input needs more than the machine can give"
    assert os.listdir(tmp_path) == []


def test_missing_directory_names_the_output(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "out.msgpack"
    assert main(["simulate", "--param", "size=4M", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ptviz: {out}: cannot write: directory ") and ".part" not in err


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out.msgpack"

    class Full:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

    w = TraceWriter(out, {})
    w._file = Full(w._file)
    with pytest.raises(OutputError) as info:
        with w:
            for i in range(5000):
                w.add(i, 24, 0, 1, ("x",))
    assert str(info.value) == f"{out}: cannot write: No space left on device"
    assert os.listdir(tmp_path) == []


def test_a_crash_inside_the_writer_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out.msgpack"
    monkeypatch.setattr(TraceWriter, "_flush", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        with TraceWriter(out, {}) as w:
            w.add(1, 24, 0, 1, ("x",))
    assert os.listdir(tmp_path) == []


def test_a_file_appearing_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out.msgpack"
    with pytest.raises(OutputError, match="exists"):
        with AtomicOutput(out) as o:
            o.file.write(b"new")
            out.write_bytes(b"someone else's")
    assert out.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.msgpack"]


def test_a_written_file_gets_the_usual_mode(tmp_path):
    out = tmp_path / "out.msgpack"
    with AtomicOutput(out) as o:
        o.file.write(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                          (signal.SIGHUP, 129)])
def test_a_signal_leaves_nothing(tmp_path, signum, code):
    """Killed mid-write: the exit status says by what, and neither the output nor a
    ``.part`` file is left (one was 6.4 GB)."""
    out = tmp_path / "big.msgpack"
    proc = subprocess.Popen([*PTVIZ, "simulate", "--param", "size=64G", "-o", str(out)],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not [p for p in os.listdir(tmp_path) if p.endswith(".part")]:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.01)
    time.sleep(0.2)               # well inside the simulation
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", [["info"], ["replay"], ["convert"]])
def test_a_fifo_input_is_refused_not_waited_on(tmp_path, capsys, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    args = [*command, str(fifo)] + ([str(tmp_path / "o.msgpack")] if command == ["convert"]
                                    else [])
    assert main(args) == 2        # opening a FIFO would block until a writer came
    assert capsys.readouterr().err == (f"ptviz: {fifo}: is a FIFO; ptviz reads traces from "
                                       f"regular files (save the stream to a file first)\n")
