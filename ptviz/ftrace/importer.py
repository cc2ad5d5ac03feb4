"""Import ftrace captures (tracefs text, ``trace-cmd report`` text, trace.dat) to a ptviz trace.

Streaming: lines are parsed and inferred one at a time; memory is bounded by
the reorder window (a few seconds of trace) and the live page tables. A large capture
is parsed in a second process meanwhile (:mod:`.parse_child`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat
from typing import Any, Callable, Iterable, Iterator

from replayer.errors import ImportFormatError, MissingFile
from replayer.traceio import TraceWriter, framing
from replayer.traceio.framing import MAGIC as PTVIZ_MAGIC

from .arch import import_arch
from .infer import Inference
from .infer_notes import import_notes, traced_names
from . import parse_child
from .parse_child import DAT_MIN_BYTES, TEXT_MIN_BYTES
from .textparse import ParseStats, bounded_lines, parse_lines
from .tracecmd import trace_cmd_lines

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
ImportProgress = parse_child.Progress


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
        lines = trace_cmd_lines(path)
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
