"""trace.dat through `trace-cmd report`: stopped when it falls silent, its failure one
line, reaped on every way out (a fake trace-cmd script first on PATH)."""

import contextlib
import os
import signal
import subprocess
import threading

import pytest

from ptviz.ftrace import importer, tracecmd
from ptviz.ftrace.importer import import_file
from replayer.errors import ImportFormatError


# -- trace-cmd --------------------------------------------------------------------
@pytest.fixture
def fake_trace_cmd(tmp_path, monkeypatch):
    """Put a trace-cmd shell script first on PATH; record every process started."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    started = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(tracecmd.subprocess, "Popen", Recorded)
    dat = tmp_path / "trace.dat"
    dat.write_bytes(importer.TRACE_DAT_MAGIC + b"6\0" + b"\0" * 64)

    def install(body):
        script = bindir / "trace-cmd"
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(0o755)
        return str(dat), started

    return install


LINE = "           a-1 [000] 1.000000: kfree: ptr=0"


def test_trace_cmd_that_prints_nothing_is_stopped(fake_trace_cmd, tmp_path, monkeypatch):
    dat, started = fake_trace_cmd(f"echo '{LINE}'\nexec sleep 60")
    monkeypatch.setattr(tracecmd, "TRACE_CMD_SILENCE_S", 0.3)
    with pytest.raises(ImportFormatError) as err:
        import_file(dat, tmp_path / "o.msgpack")
    assert str(err.value) == f"{dat}: trace-cmd report printed nothing for 0.3 s; stopped it"
    assert started[0].returncode is not None            # killed and reaped
    assert not (tmp_path / "o.msgpack").exists()


@pytest.mark.parametrize("script, said", [
    (f"echo '{LINE}'\necho '  reading trace.dat' >&2\nprintf 'trace-cmd: Invalid   argument"
     "\\n\\tfailed to read the\\t header\\n  done\\n' >&2\nexit 1",
     "failed to read the header"),
    ("echo '  reading'; echo 'version = 6' >&2; echo '   last words' >&2; exit 1", "last words"),
    ("printf 'x%.0s' $(seq 300) >&2; exit 3", "x" * 199 + "…"),
    ("exit 4", "exit status 4"),
    ("kill -9 $$", "killed by signal 9"),
])
def test_trace_cmd_failure_is_one_line(fake_trace_cmd, tmp_path, script, said):
    dat, started = fake_trace_cmd(script)
    with pytest.raises(ImportFormatError) as err:
        import_file(dat, tmp_path / "o.msgpack")
    assert str(err.value) == f"{dat}: trace-cmd report failed: {said}"
    assert started[0].returncode is not None


def test_trace_cmd_output_and_a_chatty_stderr(fake_trace_cmd, tmp_path):
    # 256 KiB of warnings on stderr while printing: a stderr pipe nobody read would stall.
    dat, started = fake_trace_cmd(
        "i=0; while [ $i -lt 4096 ]; do echo 'warning: something about this event.........."
        "...' >&2; i=$((i+1)); done\n"
        f"echo 'cpus=1'\necho '{LINE}'\necho '{LINE.replace('1.000000', '1.000001')}'")
    stats = import_file(dat, tmp_path / "o.msgpack")
    assert stats["events_read"] == 2 and started[0].returncode == 0


@pytest.mark.parametrize("how", ["close", "error", "interrupt"])
def test_trace_cmd_is_reaped_on_every_way_out(fake_trace_cmd, how):
    dat, started = fake_trace_cmd(f"exec yes '{LINE}'")
    lines = tracecmd.trace_cmd_lines(dat)
    stop = {"error": ValueError, "interrupt": KeyboardInterrupt}.get(how)
    with contextlib.suppress(ValueError, KeyboardInterrupt), contextlib.closing(lines):
        for i, _ in enumerate(lines):
            if i == 100:
                if stop:
                    raise stop
                break
    assert started[0].returncode is not None


def test_trace_cmd_is_reaped_when_ctrl_c_lands_in_the_read(fake_trace_cmd):
    dat, started = fake_trace_cmd(f"echo '{LINE}'\nexec sleep 60")
    lines = tracecmd.trace_cmd_lines(dat)
    assert next(lines) == LINE + "\n"
    # SIGINT to this thread while the generator waits in poll() for trace-cmd.
    timer = threading.Timer(0.3, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        next(lines)
    timer.join()
    assert started[0].returncode is not None


def test_import_file_stops_trace_cmd_when_the_import_fails(fake_trace_cmd, tmp_path,
                                                           monkeypatch):
    dat, started = fake_trace_cmd(f"exec yes '{LINE}'")

    def failing(lines, *args, **kwargs):
        next(iter(lines))
        raise ImportFormatError("boom", dat)

    monkeypatch.setattr(importer, "import_lines", failing)
    with pytest.raises(ImportFormatError):
        import_file(dat, tmp_path / "o.msgpack")
    assert started[0].returncode is not None
