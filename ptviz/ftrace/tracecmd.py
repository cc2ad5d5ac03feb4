"""``trace-cmd report`` of a trace.dat, read as the lines it prints.

Apart from the importer so that the parsing child (:mod:`.parse_child`) runs it
without loading what only inference and writing need (numpy, the writer).
"""

from __future__ import annotations

import io
import os
import re
import select
import shutil
import subprocess
from typing import Any, Iterator

from replayer.errors import ImportFormatError

from .proctree import stop, widen_pipe
from .textparse import bounded_lines

# trace-cmd report is killed after this long without printing anything (a damaged
# trace.dat can make it loop); a module constant so that tests can shorten it.
TRACE_CMD_SILENCE_S = 60.0


class _Silent(Exception):
    """trace-cmd printed nothing for TRACE_CMD_SILENCE_S."""


class _ReportPipe(io.RawIOBase):
    """trace-cmd's stdout as a raw stream, read with poll(): a read that waits longer
    than ``timeout`` raises :class:`_Silent`. Its stderr is drained on the way (a full
    stderr pipe would stall it) into a bounded tail, for the error message. One poll
    per buffer fill (64 KiB), nothing per line."""

    def __init__(self, proc: subprocess.Popen, timeout: float) -> None:
        super().__init__()
        assert proc.stdout is not None and proc.stderr is not None
        self._out, self._err = proc.stdout.fileno(), proc.stderr.fileno()
        self._poll = select.poll()
        self._poll.register(self._out, select.POLLIN)
        self._poll.register(self._err, select.POLLIN)
        self._err_open = True
        self._timeout_ms = max(1, int(timeout * 1000))
        self.tail = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            ready = dict(self._poll.poll(self._timeout_ms))
            if not ready:
                raise _Silent
            if self._err in ready:
                self._read_err()
            if self._out in ready:
                return os.readv(self._out, [buffer])

    def _read_err(self) -> None:
        data = os.read(self._err, 65536)
        if data:
            self.tail += data
            del self.tail[:-16384]
        else:
            self._poll.unregister(self._err)
            self._err_open = False

    def drain_err(self) -> None:
        """The rest of stderr, after stdout ended (same silence limit)."""
        self._poll.unregister(self._out)
        while self._err_open:
            if not self._poll.poll(self._timeout_ms):
                raise _Silent
            self._read_err()


_TELLING = re.compile(r"error|fail|invalid|cannot|can't|unable|no such|not |corrupt",
                      re.IGNORECASE)


def _one_line(stderr: bytes) -> str:
    """The most telling line of trace-cmd's stderr, whitespace collapsed, ≤ 200 chars:
    the last one naming an error, else the last one."""
    text = stderr.decode("utf-8", "replace")
    lines = [" ".join("".join(c if c.isprintable() else " " for c in line).split())
             for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    telling = [line for line in lines if _TELLING.search(line)]
    line = (telling or lines)[-1]
    return line if len(line) <= 200 else line[:199] + "…"


def trace_cmd_lines(path: str) -> Iterator[str]:
    """The lines `trace-cmd report` prints for ``path``; the process is killed and
    reaped on every way out (closed early, an error, Ctrl-C)."""
    exe = shutil.which("trace-cmd")
    if exe is None:
        raise ImportFormatError("is a trace.dat file; reading it needs trace-cmd "
                                "(apt-get install trace-cmd), which is not installed", path)
    proc = subprocess.Popen([exe, "report", "-i", path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    widen_pipe(proc.stdout)
    try:
        pipe = _ReportPipe(proc, TRACE_CMD_SILENCE_S)
        text = io.TextIOWrapper(io.BufferedReader(pipe, 65536), encoding="utf-8",
                                errors="replace", newline="")
        yield from bounded_lines(text)
        pipe.drain_err()
        rc = proc.wait(TRACE_CMD_SILENCE_S)
    except (_Silent, subprocess.TimeoutExpired):
        raise ImportFormatError(f"trace-cmd report printed nothing for "
                                f"{TRACE_CMD_SILENCE_S:g} s; stopped it", path) from None
    finally:
        stop(proc)
    if rc != 0:
        why = _one_line(bytes(pipe.tail)) or (f"killed by signal {-rc}" if rc < 0
                                               else f"exit status {rc}")
        raise ImportFormatError(f"trace-cmd report failed: {why}", path)
