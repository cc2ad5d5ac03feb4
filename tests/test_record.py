"""``ptviz record`` on this machine's kernel: a real trace, checked against VmPTE; nothing
of its own left in tracefs; CMD's exit status passed on.

Only this run's own instance (``instances/ptviz-PID``) and probe group (``ptviz_PID``)
are looked at: other tracing on the machine may come and go meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ptviz.cli import main
from tests.conftest import PTVIZ, ROOT
from tests.test_ftrace import check_vmpte

TRACEFS = "/sys/kernel/tracing"
needs_tracefs = pytest.mark.skipif(
    not (os.geteuid() == 0 and os.path.isdir(f"{TRACEFS}/instances")),
    reason="needs root and tracefs with instances")


def leftovers(pid: int) -> list[str]:
    """What a ptviz process ``pid`` may have left: its instance, its probes."""
    left = []
    if os.path.exists(f"{TRACEFS}/instances/ptviz-{pid}"):
        left.append(f"instances/ptviz-{pid}")
    if os.path.exists(f"{TRACEFS}/dynamic_events"):
        with open(f"{TRACEFS}/dynamic_events") as f:
            left += [line.strip() for line in f if f"ptviz_{pid}/" in line]
    return left


def record(tmp_path, *cmd, out="rec.msgpack", env=None, options=()
           ) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([*PTVIZ, "record", "-o", str(tmp_path / out), "--tail", "0.5",
                             *options, "--", *cmd],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})
    out_text, err = proc.communicate(timeout=300)
    assert leftovers(proc.pid) == []
    return subprocess.CompletedProcess(proc.args, proc.returncode, out_text, err)


@needs_tracefs
def test_record_a_real_trace_and_leave_no_instance(tmp_path):
    done = record(tmp_path, sys.executable,
                  os.path.join(ROOT, "traces", "workloads", "vmpte_steps.py"), "--fork",
                  env={"VMPTE_MB": "16"})
    assert done.returncode == 0, done.stderr
    report = json.loads(subprocess.run([*PTVIZ, "replay", "--json",
                                        str(tmp_path / "rec.msgpack")],
                                       capture_output=True, text=True).stdout)
    check_vmpte(report)


@needs_tracefs
@pytest.mark.parametrize("cmd, status, words", [
    (["sh", "-c", "exit 3"], 3, "sh exited 3"),
    (["sh", "-c", "kill -TERM $$"], 128 + 15, "sh was killed by SIGTERM"),
])
def test_record_exits_with_the_commands_status(tmp_path, cmd, status, words):
    """As time(1) and trace-cmd do: the trace is written, CMD's status is ptviz's."""
    done = record(tmp_path, *cmd)
    assert done.returncode == status, done.stderr
    assert words in done.stderr and (tmp_path / "rec.msgpack").exists()


@needs_tracefs
def test_record_cleans_up_when_the_command_cannot_run(tmp_path, capsys):
    rc = main(["record", "-o", str(tmp_path / "x.msgpack"), "--tail", "0", "--",
               "/nonexistent/command"])
    assert rc == 2 and "cannot run '/nonexistent/command'" in capsys.readouterr().err
    assert leftovers(os.getpid()) == [] and os.listdir(tmp_path) == []
    assert not _subreaper(), "ptviz left the process a child subreaper"


def _subreaper() -> bool:
    import ctypes
    flag = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0)     # PR_GET_CHILD_SUBREAPER
    return bool(flag.value)


def test_record_print_shows_the_commands(capsys):
    assert main(["record", "--print", "--", "./a.out"]) == 0
    out = capsys.readouterr().out
    assert "instances/ptviz" in out and "record-tgid" in out and "trace-cmd record" in out
    assert "kmem/mm_page_alloc/enable" in out
    assert "f:ptviz/pte_free_tlb ___pte_free_tlb tlb=$arg1 pte=$arg2" in out
    assert "p:ptviz/pte_free_tlb ___pte_free_tlb tlb=%di pte=%si" in out
    assert "r:ptviz/pte_alloc_one pte_alloc_one ret=$retval" in out


def test_record_without_root_says_why(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["record", "-o", str(tmp_path / "never.msgpack"), "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err


def test_record_help_names_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    assert "Exit status: CMD's own" in capsys.readouterr().out


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (zombies too: not yet reaped)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                    found.append(int(name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def _running(argv: bytes) -> list[int]:
    """The pids whose command line is ``argv`` (NUL-separated, as /proc holds it)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if f.read().rstrip(b"\0") == argv:
                    found.append(int(name))
        except (OSError, ValueError):
            pass
    return found


@needs_tracefs
@pytest.mark.parametrize("ignores_term", [False, True])
def test_sigterm_ends_the_command_and_every_process_it_started(tmp_path, ignores_term):
    """SIGTERM to `ptviz record` (a CI timeout, systemd): exit 143, no instance left, and
    neither the command, its background child, nor an orphan whose parent already
    exited keeps running; those ignoring SIGTERM are killed after the grace period."""
    import signal
    import time
    tag = f"9{os.getpid()}{int(ignores_term)}"
    trap = "trap '' TERM; " if ignores_term else ""
    # The inner sh exits at once, so its sleep is an orphan before the SIGTERM comes.
    script = f"{trap}sh -c 'sleep {tag}1 &'; sleep {tag}2 & sleep {tag}3; wait"
    proc = subprocess.Popen([*PTVIZ, "record", "-o", str(tmp_path / "rec.msgpack"), "--",
                             "sh", "-c", script],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sleeps = [f"sleep\0{tag}{n}".encode() for n in (1, 2, 3)]
    deadline = time.monotonic() + 60
    while not all(_running(s) for s in sleeps) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_running(s) for s in sleeps)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    assert [s for s in sleeps if _running(s)] == []
    assert leftovers(proc.pid) == [] and not (tmp_path / "rec.msgpack").exists()
    assert "Traceback" not in err


@needs_tracefs
def test_ctrl_c_in_the_tail_keeps_the_recording(tmp_path):
    """CMD has exited and ptviz waits out --tail for deferred frees: Ctrl-C then cuts
    the wait short and the trace is still written (exit 130, saying what was cut)."""
    import signal
    import time
    done = tmp_path / "cmd-done"
    proc = subprocess.Popen([*PTVIZ, "record", "-o", str(tmp_path / "rec.msgpack"),
                             "--tail", "120", "--", "sh", "-c", f"touch {done}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # CMD has run and ptviz has reaped it: ptviz is past CMD, in what follows it.
    while (not done.exists() or _children_of(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "cut the 120 s tail short" in err and "Traceback" not in err
    assert (tmp_path / "rec.msgpack").exists() and leftovers(proc.pid) == []


@needs_tracefs
def test_stopped_in_process_it_ends_only_what_the_command_started(tmp_path):
    """ptviz called in-process (here by the test runner) and stopped early by SIGTERM
    while CMD runs: CMD's processes end; the caller's own child is left alone."""
    import time
    tag = f"8{os.getpid()}"
    mine = subprocess.Popen(["sleep", f"{tag}0"])
    try:
        rc = main(["record", "-o", str(tmp_path / "x.msgpack"), "--tail", "0", "--", "sh",
                   "-c", f"sleep {tag}1 & kill -TERM $PPID; wait"])
        assert rc == 143
        time.sleep(0.2)
        assert mine.poll() is None, "the caller's own child was killed"
        assert _running(f"sleep\0{tag}1".encode()) == []
        assert leftovers(os.getpid()) == [] and not (tmp_path / "x.msgpack").exists()
    finally:
        mine.kill()
        mine.wait()


@needs_tracefs
def test_a_stop_while_the_command_starts_still_ends_it(tmp_path, monkeypatch):
    """SIGTERM arriving while Popen waits for CMD's exec (a loaded machine, a command
    quick to signal): record learns CMD's pid all the same, and ends it."""
    import signal
    import ptviz.ftrace.record as rec
    tag = f"7{os.getpid()}"
    real = subprocess.Popen

    def popen_then_signalled(*args, **kwargs):
        proc = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)        # as if it came before Popen returned
        return proc
    monkeypatch.setattr(rec.subprocess, "Popen", popen_then_signalled)
    rc = main(["record", "-o", str(tmp_path / "x.msgpack"), "--tail", "0", "--", "sleep",
               f"{tag}"])
    assert rc == 143
    assert _running(f"sleep\0{tag}".encode()) == []
    assert leftovers(os.getpid()) == [] and not (tmp_path / "x.msgpack").exists()


def test_signals_deferred_runs_the_block_to_its_end_then_delivers(monkeypatch):
    """A signal inside the block is held, then raised by the handler there was."""
    import signal
    from ptviz.ftrace.proctree import signals_deferred
    seen = []
    previous = signal.signal(signal.SIGHUP, lambda s, f: seen.append(("handler", s)))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGHUP)
            seen.append("block ran on")
        assert seen == ["block ran on", ("handler", signal.SIGHUP)]
    finally:
        signal.signal(signal.SIGHUP, previous)
