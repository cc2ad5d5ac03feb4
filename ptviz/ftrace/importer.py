"""Import ftrace captures (tracefs text, ``trace-cmd report`` text, trace.dat) to a ptviz trace.

Streaming: lines are parsed and inferred one at a time; memory is bounded by
the reorder window (a few seconds of trace) and the live page tables. A large capture
is parsed in a second process meanwhile (:mod:`.parse_child`).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import select
import shutil
import stat
import subprocess
from typing import Any, Callable, Iterable, Iterator

from replayer.errors import ImportFormatError, MissingFile
from replayer.traceio import TraceWriter, framing
from replayer.traceio.framing import MAGIC as PTVIZ_MAGIC

from .arch import import_arch
from .infer import Inference
from .infer_notes import import_notes, traced_names
from . import parse_child
from .parse_child import DAT_MIN_BYTES, TEXT_MIN_BYTES
from .proctree import stop, widen_pipe
from .textparse import ParseStats, bounded_lines, parse_lines

#: Whether a large capture is parsed in a second process (:mod:`.parse_child`) while
#: this one infers and writes; tests turn it off to compare.
PARALLEL = len(os.sched_getaffinity(0)) > 1 if hasattr(os, "sched_getaffinity") else \
    (os.cpu_count() or 1) > 1

TRACE_DAT_MAGIC = b"\x17\x08\x44tracing"


def sniff(path: str) -> str:
    """``"ptviz"``, ``"trace.dat"`` or ``"text"``.

    Conservative: a ``.msgpack`` name, an empty file, a directory or anything that
    is not text goes to the ptviz reader, whose errors name the byte at fault. Text
    is UTF-8 in its first 4 KiB up to a few NULs or bad bytes (under 1 in 32): a
    capture damaged by some (a serial console's noise) is still read, those lines
    counted as bad.
    """
    _check_regular(path)
    if path.endswith(".msgpack"):
        return "ptviz"
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        raise MissingFile("no such file", path) from None
    except (IsADirectoryError, PermissionError):
        return "ptviz"
    if head.startswith(TRACE_DAT_MAGIC):
        return "trace.dat"
    if not head or head.startswith(PTVIZ_MAGIC):
        return "ptviz"
    text = head.decode("utf-8", "replace")
    damage = text.count("\ufffd") + text.count("\0")
    return "ptviz" if damage * 32 > len(text) else "text"


_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _check_regular(path: str) -> None:
    """Traces are files: reading a FIFO would block until someone writes to it, and
    the reader seeks. Raises :class:`MissingFile` for anything else but a directory
    (which the reader names)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MissingFile("no such file", path) from None
    except OSError as exc:
        raise MissingFile(f"cannot open: {exc.strerror}", path) from None
    for test, kind in _SPECIAL:
        if test(mode):
            raise MissingFile(f"is {kind}; ptviz reads traces from regular files (save "
                              f"the stream to a file first)", path)


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


def _trace_cmd_lines(path: str) -> Iterator[str]:
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


def import_lines(lines: Iterable[str], out: str | os.PathLike, header: dict[str, Any],
                 source_path: str, force: bool = False,
                 version: int = framing.VERSION,
                 exported: Exported | None = None,
                 parsed: tuple[Iterable[Any], ParseStats] | None = None) -> dict[str, Any]:
    """Parse, infer and write (format ``version``); returns the import statistics.
    ``out`` appears only when the import succeeds (an existing one is replaced only
    with ``force``). ``exported``: the text is ptviz's own export (its header and
    notes), read back as the events it names. ``parsed``: the records already parsed
    (elsewhere: :mod:`.parse_child`) and the statistics they fill, instead of
    ``lines``."""
    records, stats = parsed if parsed is not None else (None, ParseStats())
    if records is None:
        records = parse_lines(lines, stats)
    kinds = None
    if exported is not None:
        header = {**exported.header, **header}
        kinds = exported.kinds
    # The reorder window holds seconds of events (hundreds of thousands of tuples that
    # live until written): the cyclic collector would rescan them again and again,
    # for nothing (none of them forms a cycle). Off for the import, as msgpack does.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # ftrace does not say what machine it ran on: the geometry the inference is
        # built for is recorded, marked as assumed (convert --arch names the machine).
        defaults = {} if exported else {"source": "ftrace", "clock": "ns (trace clock)",
                                        "arch": import_arch(None)}
        with TraceWriter(out, {**defaults, **header}, kinds=kinds, force=force,
                         version=version) as w:
            inference = Inference(w.add, emit_many=w.add_many,
                                  pt_reclaim=(header.get("kernel") or {}).get("pt_reclaim"),
                                  exported=kinds)
            try:
                for rec in records:
                    inference.feed(rec)
            except ImportFormatError as exc:
                if exc.path is None:          # raised where the file's name is not known
                    raise ImportFormatError(exc.message, source_path, exc.position) from None
                raise
            inference.finish()
            enabled = (header.get("record") or {}).get("events")
            w.notes = list(exported.notes) if exported is not None else import_notes(
                inference, stats.tgid_seen, None if enabled is None else traced_names(enabled))
            written = w.events_written
            if stats.events == 0 and stats.lines > 0 and stats.bad_count:
                # Raised inside the block, so the writer drops its output: a failed
                # import leaves nothing at ``out``.
                line, text = stats.bad[0]
                raise ImportFormatError(f"no ftrace event line found (first bad line: "
                                        f"{text!r})", source_path, f"line {line}")
    finally:
        if collecting:
            gc.enable()
    return {"lines": stats.lines, "events_read": stats.events, "events_written": written,
            "exported": exported is not None,
            "bad_lines": stats.bad_count, "first_bad": stats.bad[:5],
            "continuations": stats.continuations, **inference.counts}


#: ``progress(done, total or None, unit)`` of an import: bytes of text read, or lines
#: trace-cmd printed (how many it will print is not known).
ImportProgress = Callable[[int, "int | None", str], None]


def _reported(lines: Iterator[str], progress: ImportProgress, total: int | None, unit: str,
              position: Callable[[], int] | None = None, every: int = 1 << 14
              ) -> Iterator[str]:
    """``lines``, with ``progress`` told every ``every`` lines: ``position()`` (bytes
    read so far: a comm or a path may be UTF-8, so characters would fall short of the
    file's size), else the lines counted; all of ``total`` once they ran out."""
    done = n = 0
    for line in lines:
        done += 1
        n += 1
        if n == every:
            progress(position() if position is not None else done, total, unit)
            n = 0
        yield line
    progress(total if total is not None else done, total, unit)


def import_file(path: str, out: str | os.PathLike, header: dict[str, Any] | None = None,
                force: bool = False, version: int = framing.VERSION,
                progress: ImportProgress | None = None) -> dict[str, Any]:
    kind = sniff(path)
    if kind == "ptviz":
        raise ImportFormatError("is already a ptviz trace", path)
    if kind == "trace.dat":
        child = _parse_in_child("dat", path, DAT_MIN_BYTES, progress)
        if child is not None:
            with contextlib.closing(child[0]):      # the child stopped, whatever happened
                return import_lines((), out, header or {}, path, force, version,
                                    parsed=child)
        lines = _trace_cmd_lines(path)
        with contextlib.closing(lines):      # trace-cmd stopped now, whatever happened
            shown = lines if progress is None else _reported(lines, progress, None, "lines")
            return import_lines(shown, out, header or {}, path, force, version)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        exported = read_export_header(f, path)
        child = _parse_in_child("text", path, TEXT_MIN_BYTES, progress)
        if child is not None:
            with contextlib.closing(child[0]):
                return import_lines((), out, header or {}, path, force, version, exported,
                                    parsed=child)
        f.seek(0)
        lines = bounded_lines(f)
        if progress is not None:
            # The raw stream's position: ahead of the lines by one read-ahead at most.
            lines = _reported(lines, progress, os.path.getsize(path), "bytes", f.buffer.tell)
        return import_lines(lines, out, header or {}, path, force, version, exported)


def _parse_in_child(kind: str, path: str, least: int, progress: ImportProgress | None
                    ) -> tuple[Iterator[Any], ParseStats] | None:
    """A large capture's records from a child process (:mod:`.parse_child`) and the
    statistics they fill; None for a small one, or when no child can start."""
    if not PARALLEL or os.path.getsize(path) < least:
        return None
    stats = ParseStats()
    records = parse_child.parsed(kind, path, stats, progress)
    return None if records is None else (records, stats)


def open_reader(path: str, workdir: str, importing: Callable[[], None] | None = None,
                progress: ImportProgress | None = None,
                unpacking: ImportProgress | None = None) -> tuple[Any, dict[str, Any] | None]:
    """``(reader, import statistics or None)`` for what a user hands a command: a ptviz
    trace as it is, an ftrace capture (text, trace.dat) imported into ``workdir``
    (``importing()`` is called first; ``progress`` follows the import); a compressed
    one unpacked there before either (``unpacking`` follows that). Messages name
    ``path``."""
    from replayer.traceio import TraceReader
    from ..decompress import decompressed
    with decompressed(path, workdir, unpacking) as real:
        if sniff(real) == "ptviz":
            return TraceReader(real, name=path), None
        if importing is not None:
            importing()
        imported = os.path.join(workdir, "imported.msgpack")
        stats = import_file(real, imported, progress=progress)
        return TraceReader(imported, name=path), stats


class Exported:
    """What ``ptviz convert --to ftrace`` wrote above the events: the trace header
    (its kinds as a :class:`KindTable`) and the notes."""

    def __init__(self, header: dict[str, Any], kinds: Any, notes: list[str]) -> None:
        self.header, self.kinds, self.notes = header, kinds, notes


def read_export_header(f: Any, path: str) -> Exported | None:
    """The ``# ptviz-header:`` and ``# ptviz-note:`` comments at the top of a text
    capture, or None (a capture from tracefs or trace-cmd). The header is JSON, and
    only JSON is decoded."""
    import json
    from replayer.vocab import KindTable
    header = None
    notes: list[str] = []
    for lineno, line in enumerate(f, 1):
        if not line.startswith("#") or lineno > 4096:
            break
        if line.startswith("# ptviz-header: "):
            try:
                header = json.loads(line[16:])
                kinds = KindTable()
                for _, name, fields in header.pop("kinds"):
                    kinds.merge(str(name), tuple(map(str, fields)))
            except (ValueError, TypeError, KeyError, AttributeError):
                raise ImportFormatError("its ptviz-header comment is not the JSON header "
                                        "ptviz convert writes", path, f"line {lineno}") from None
        elif line.startswith("# ptviz-note: "):
            notes.append(line[14:].rstrip("\r\n"))
    if header is None:
        return None
    from ptviz.convert.jsonl import from_json
    header = {k: from_json(x) for k, x in header.items() if k not in ("format", "version")}
    return Exported(header, kinds, notes)
