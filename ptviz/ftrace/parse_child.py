"""A large capture's lines parsed in a second process, while this one infers and writes.

Parsing is a third of an import's time, inference and writing the rest; with two cores
the parsing (and, for a trace.dat, ``trace-cmd report``) runs beside them. The child
(``python -m ptviz.ftrace.parse_child KIND PATH``) reads the capture itself and sends
its records back on stdout as frames: a 4-byte length, then a ``marshal`` dump (C-fast;
only the child's own tuples of ints and strings, never anything from the file as code)
of one message:

- ``("r", records, done)``: records as tuples (a :class:`.textparse.Loss` has 3 fields,
  a :class:`.textparse.Record` 9), ``done`` the bytes read (text) or lines (trace.dat);
- ``("end", stats)``: the :class:`.textparse.ParseStats` fields;
- ``("bad", class name, message, position)``: a :class:`replayer.errors.BadInput`;
- ``("os", errno, strerror)``: an OSError reading the capture.

The parent owns the child: it is killed and reaped on every way out (closed early, an
error, Ctrl-C, which it ignores so that the parent decides). A child that cannot start
leaves the parsing to this process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import marshal
import os
import signal
import struct
import subprocess
import sys
from operator import attrgetter
from typing import Any, Callable, Iterator

from .proctree import stop, widen_pipe
from .textparse import Loss, ParseStats, Record, bounded_lines, parse_lines

#: Records per frame: few enough that the parent starts early, many enough that the
#: per-frame cost (a read, a loads) is nothing per record.
BATCH = 2048
#: Captures smaller than this are parsed in this process: the child's start (~50 ms)
#: would cost more than it saves.
TEXT_MIN_BYTES = 4 << 20
DAT_MIN_BYTES = 256 << 10
_LENGTH = struct.Struct("<I")

#: ``progress(done, total or None, unit)``: the importer's (``ImportProgress``).
Progress = Callable[[int, "int | None", str], None]


def _frames_of(kind: str, path: str, out) -> None:
    """The child: parse ``path`` (``kind`` "text" or "dat") and write the frames."""
    stats = ParseStats()
    with contextlib.ExitStack() as stack:
        if kind == "dat":
            printed = [0]
            from .tracecmd import trace_cmd_lines
            lines = _counted(stack.enter_context(contextlib.closing(trace_cmd_lines(path))),
                             printed)
            position = lambda: printed[0]       # noqa: E731 - lines printed so far
        else:
            f = stack.enter_context(open(path, encoding="utf-8", errors="replace",
                                         newline=""))
            lines = bounded_lines(f)
            position = f.buffer.tell            # bytes read so far
        batch: list[tuple] = []
        for rec in parse_lines(lines, stats, _fields):
            batch.append(rec if type(rec) is tuple else _record_fields(rec)
                         if type(rec) is Record else (rec.lineno, rec.cpu, rec.count))
            if len(batch) == BATCH:
                _send(out, ("r", batch, position()))
                batch = []
        _send(out, ("r", batch, position()))
    _send(out, ("end", dataclasses.astuple(stats)))


_record_fields = attrgetter(*(f.name for f in dataclasses.fields(Record)))


def _fields(*fields: Any) -> tuple:
    """A record of the common layout as the tuple of its fields (sent as it is)."""
    return fields


def _counted(lines: Iterator[str], seen: list[int]) -> Iterator[str]:
    for line in lines:
        seen[0] += 1
        yield line


def child_main(argv: list[str]) -> int:
    """``python -m ptviz.ftrace.parse_child KIND PATH``: what :func:`parsed` reads."""
    from replayer.errors import BadInput
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the parent's to handle
    out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 16, closefd=False)
    kind, path = argv
    try:
        try:
            _frames_of(kind, path, out)
        except BadInput as exc:
            _send(out, ("bad", type(exc).__name__, exc.message, exc.position))
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            _send(out, ("os", exc.errno or 0, exc.strerror or str(exc)))
        out.flush()
    except BrokenPipeError:             # the parent stopped reading: it is gone or done
        return 1
    return 0


def _send(out, message: tuple) -> None:
    data = marshal.dumps(message)
    out.write(_LENGTH.pack(len(data)) + data)


def parsed(kind: str, path: str, stats: ParseStats,
           progress: Progress | None = None) -> Iterator[Record | Loss] | None:
    """The records of the capture at ``path`` parsed by a child process (``stats``
    filled at the end, ``progress`` told as the child reads), or None when the child
    cannot be started (the caller parses itself)."""
    import site

    import ptviz
    # The child imports the ptviz this process runs: an installed one is on its path
    # already (putting site-packages in PYTHONPATH would set it before the standard
    # library); a checkout's, from wherever this one found it, is added.
    root = os.path.dirname(os.path.dirname(os.path.abspath(ptviz.__file__)))
    env = dict(os.environ)
    if root not in {*site.getsitepackages(), site.getusersitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(
            [root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    try:
        # -P: a directory called ptviz where the user stands is not the package.
        proc = subprocess.Popen([sys.executable, "-P", "-m", "ptviz.ftrace.parse_child", kind,
                                 path],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    except OSError:
        return None
    widen_pipe(proc.stdout)
    return _read(proc, path, stats, progress,
                 (os.path.getsize(path), "bytes") if kind == "text" else (None, "lines"))


def _read(proc: subprocess.Popen, path: str, stats: ParseStats, progress: Progress | None,
          unit: tuple) -> Iterator[Record | Loss]:
    from replayer import errors
    total, what = unit
    pipe = proc.stdout
    assert pipe is not None and proc.stderr is not None
    make = Record
    try:
        while True:
            head = pipe.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                err = proc.stderr.read().decode("utf-8", "replace").strip()
                raise RuntimeError(f"the parsing process ended early: "
                                   f"{err.splitlines()[-1] if err else proc.wait()}")
            message = marshal.loads(pipe.read(_LENGTH.unpack(head)[0]))
            tag = message[0]
            if tag == "r":
                for t in message[1]:
                    yield make(*t) if len(t) == 9 else Loss(*t)
                if progress is not None:
                    progress(message[2], total, what)
            elif tag == "end":
                for f, value in zip(dataclasses.fields(stats), message[1]):
                    setattr(stats, f.name, _merged(getattr(stats, f.name), value))
                if progress is not None and total is not None:
                    progress(total, total, what)
                return
            elif tag == "bad":
                cls = getattr(errors, message[1], None)
                if not (isinstance(cls, type) and issubclass(cls, errors.BadInput)):
                    cls = errors.ImportFormatError
                raise cls(message[2], path, message[3])
            else:
                raise OSError(message[1], message[2], path)
    finally:
        stop(proc)


def _merged(mine: Any, theirs: Any) -> Any:
    """A stats field after the child's run: counts added, lists joined, flags or'ed."""
    if isinstance(mine, bool):
        return mine or theirs
    if isinstance(mine, list):
        return mine + [tuple(x) for x in theirs]
    return mine + theirs


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
