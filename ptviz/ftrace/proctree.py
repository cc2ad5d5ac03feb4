"""The processes a recorded command starts, ended together when the recording is.

While it records, ptviz is a child subreaper (``PR_SET_CHILD_SUBREAPER``): a process
whose parent exits is reparented to ptviz rather than to init, so everything the
command started is still found below ptviz in /proc. A recording stopped early
(SIGTERM, SIGHUP, a failure) sends them all SIGTERM, then SIGKILL to what is left
after :data:`STOP_GRACE_S`, as a service manager stops a unit's processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from typing import Iterator

#: How long the command's processes have to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 5.0
_PR_SET_CHILD_SUBREAPER = 36


def subreaper(on: bool) -> None:
    """While on, orphans of the command reparent to ptviz, not init (Linux ≥ 3.4;
    without it an orphan escapes :func:`end_tree`, nothing worse). Off once the
    recording is over: a program embedding ptviz keeps its own process tree."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM,
                                                 signal.SIGHUP)) -> Iterator[None]:
    """Run the block to its end whatever of ``signums`` arrives meanwhile; each that did
    is then sent to this process again, for its own handler. Around starting the
    command: a signal while ``Popen`` waits for the exec raised out of it, and ptviz
    never learnt the pid of a command that ran on. A handler is replaced, not the
    signal mask blocked (a child inherits a mask; exec resets handlers). In the main
    thread only (elsewhere the block runs as it is: no handler can be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {}
    for signum in signums:
        if signal.getsignal(signum) is None:    # set outside Python: not ours to swap
            continue
        previous[signum] = signal.signal(signum, lambda got, frame: arrived.append(got))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):
            os.kill(os.getpid(), signum)


def stat_fields(pid: int | str) -> list[bytes] | None:
    """``/proc/PID/stat``'s fields from the third (the state) on, or None when the
    process is gone. "pid (comm) state ppid ...": the comm may hold spaces and
    parentheses, so the fields resume after the last ")"."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()


def _processes() -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Each process's live children and its zombie children, from /proc."""
    children: dict[int, list[int]] = {}
    zombies: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = stat_fields(name)
        if fields is not None and len(fields) >= 2:
            table = zombies if fields[0] == b"Z" else children
            table.setdefault(int(fields[1]), []).append(int(name))
    return children, zombies


def own_children() -> set[int]:
    """This process's children now: those :func:`end_tree` must leave alone (a
    program running ptviz in-process has its own)."""
    children, zombies = _processes()
    me = os.getpid()
    return set(children.get(me, ())) | set(zombies.get(me, ()))


def _tree(others: set[int]) -> tuple[list[int], list[int]]:
    """The live processes the command started (this process's children but
    ``others``, and everything below them, parents first) and the zombies among this
    process's children but ``others`` (the command's orphans that exited)."""
    children, zombies = _processes()
    me = os.getpid()
    out = [c for c in children.get(me, ()) if c not in others]
    i = 0
    while i < len(out):
        out += children.get(out[i], ())
        i += 1
    return out, [z for z in zombies.get(me, ()) if z not in others]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:                 # exited meanwhile
            pass


def end_tree(proc: subprocess.Popen, grace_s: float, others: set[int]) -> None:
    """The command and every process it started (ptviz is their subreaper; ``others``:
    this process's children from before, left alone): SIGTERM, then SIGKILL to those
    still there after ``grace_s``; all reaped."""
    _signal_all(_tree(others)[0], signal.SIGTERM)
    if not _wait_tree(proc, others, grace_s):
        _signal_all(_tree(others)[0], signal.SIGKILL)
        _wait_tree(proc, others, 1.0)


def _wait_tree(proc: subprocess.Popen, others: set[int], seconds: float) -> bool:
    """Reap what exits until nothing the command started is left (True) or ``seconds``
    pass. O(processes on the machine) per look at /proc, one look every 50 ms."""
    deadline = time.monotonic() + seconds
    while True:
        live, zombies = _tree(others)
        for pid in zombies:             # orphans that exited are ptviz's to reap
            if pid != proc.pid:         # (the command's status is Popen's)
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if not live and proc.poll() is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    """A helper process ptviz started (trace-cmd, a parsing child) killed if it still
    runs, reaped, its pipes closed: what every way out of reading it does."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def widen_pipe(stream, size: int = 1 << 20) -> None:
    """Let ``stream``'s pipe hold ``size`` bytes (Linux ``F_SETPIPE_SZ``; at most
    /proc/sys/fs/pipe-max-size, 1 MiB by default): a writer then runs ahead of its
    reader by that much instead of 64 KiB, and the two stop taking turns."""
    import fcntl
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except OSError:
        pass
