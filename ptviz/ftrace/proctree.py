"""The processes a recorded command starts, ended together when the recording is.

While it records, ptviz is a child subreaper (``PR_SET_CHILD_SUBREAPER``): a process
whose parent exits is reparented to ptviz rather than to init, so everything the
command started is still found below ptviz in /proc. A recording stopped early
(SIGTERM, SIGHUP, a failure) sends them all SIGTERM, then SIGKILL to what is left
after :data:`STOP_GRACE_S`, as a service manager stops a unit's processes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time

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


def _tree(root: int) -> tuple[list[int], list[int]]:
    """The live processes below ``root`` (parents before children) and ``root``'s
    zombie children, read from /proc."""
    children: dict[int, list[int]] = {}
    zombies = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:                 # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) < 2:
            continue
        if fields[0] == b"Z":
            if int(fields[1]) == root:
                zombies.append(int(name))
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out, zombies


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:                 # exited meanwhile
            pass


def end_tree(proc: subprocess.Popen, grace_s: float) -> None:
    """The command and every process it started (ptviz is their subreaper): SIGTERM,
    then SIGKILL to those still there after ``grace_s``; all reaped."""
    me = os.getpid()
    _signal_all(_tree(me)[0], signal.SIGTERM)
    if not _wait_tree(proc, me, grace_s):
        _signal_all(_tree(me)[0], signal.SIGKILL)
        _wait_tree(proc, me, 1.0)


def _wait_tree(proc: subprocess.Popen, me: int, seconds: float) -> bool:
    """Reap what exits until nothing is left below ``me`` (True) or ``seconds`` pass.
    O(processes on the machine) per look at /proc, one look every 50 ms."""
    deadline = time.monotonic() + seconds
    while True:
        live, zombies = _tree(me)
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
