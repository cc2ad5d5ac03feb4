"""Compressed traces (``.gz``, ``.xz``, ``.zst``), read as if they were not.

Traces are shared compressed. Whatever the format inside (a ptviz msgpack trace,
ftrace text, a trace.dat), the content is unpacked, a block at a time, into a
temporary file that the readers then use as they use any file (the msgpack reader
seeks; trace-cmd wants a file). Compression is told by the first bytes, not the
name. Errors name the user's file, never the temporary one.
"""

from __future__ import annotations

import contextlib
import lzma
import gzip
import os
import stat
import tempfile
from typing import Callable, Iterator

from replayer.errors import BadInput, TraceFormatError

#: First bytes → the compression they announce.
MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
_ENDINGS = (".gz", ".xz", ".zst", ".zstd")
BLOCK = 1 << 20

#: ``progress(done, total, unit)``, as an import's.
Progress = Callable[[int, int, str], None]


def compression(path: str) -> str | None:
    """``"gzip"``, ``"xz"``, ``"zstd"`` or None, from the file's first bytes."""
    try:
        # Never open what is not a regular file: opening a FIFO blocks until someone
        # writes to it (the readers refuse it with one line).
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return None                  # the reader says what is wrong with it
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def _open(raw, kind: str, path: str):
    """A reader of the content of the compressed file open as ``raw``."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    try:
        import zstandard
    except ImportError:              # pragma: no cover - a dependency
        raise TraceFormatError("is zstd-compressed; reading it needs the zstandard "
                               "package (pip install zstandard)", path) from None
    return zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)


def _unpack(path: str, kind: str, out: str, progress: Progress | None) -> None:
    """``path``'s content into ``out``, a block at a time; ``progress`` is told the
    compressed bytes read (how far along the file is; the content's size is not
    known before the end)."""
    total = os.path.getsize(path)
    with open(path, "rb") as raw, _open(raw, kind, path) as src, open(out, "wb") as dst:
        while block := src.read(BLOCK):
            dst.write(block)
            if progress is not None:
                progress(raw.tell(), total, "bytes")
    if progress is not None:
        progress(total, total, "bytes")


@contextlib.contextmanager
def decompressed(path: str, directory: str | None = None,
                 progress: Progress | None = None) -> Iterator[str]:
    """The path to read ``path`` from: itself, or its content unpacked into a
    temporary file (in ``directory`` if given, else a temporary directory removed at
    the end). O(size) in blocks of 1 MiB; ``progress(done, total, "bytes")`` follows
    the compressed file, ending at its size."""
    kind = compression(path)
    if kind is None:
        yield path
        return
    name = os.path.basename(path)
    for ending in _ENDINGS:
        if name.endswith(ending):
            name = name[:-len(ending)]
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="ptviz-unpack-"))
        out = os.path.join(directory, "unpacked-" + name)   # apart from the caller's files
        try:
            _unpack(path, kind, out, progress)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise TraceFormatError(f"is {kind}-compressed but does not decompress: "
                                   f"{exc}", path) from None
        except Exception as exc:     # zstandard.ZstdError and kin
            if type(exc).__module__.startswith("zstandard"):
                raise TraceFormatError(f"is zstd-compressed but does not decompress: "
                                       f"{exc}", path) from None
            raise
        try:
            yield out
        except BadInput as exc:
            if exc.path == out:      # name the user's file, not the unpacked copy
                exc.path = path
            raise
