"""The one error hierarchy for bad input.

Every problem caused by the *content* of an input (a trace file, a text
capture, a command-line value) raises a subclass of :class:`BadInput`. It
carries the file and the position so the CLI can print one line and exit 2
(the mapping lives in ``ptviz.cli.errors``). Bugs in ptviz itself are not
``BadInput`` and keep their traceback.

Positions are human-oriented strings such as ``"byte 1234"``,
``"chunk 5 at byte 1234"`` or ``"line 17"``.
"""

from __future__ import annotations

import os


class Cancelled(Exception):
    """A long operation (a load, an import) was cancelled by its caller. Not bad input:
    nothing is wrong with the file."""


class BadInput(Exception):
    """An input ptviz cannot use. ``str(err)`` is the one-line message."""

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 position: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.position = position

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.path, self.position) if p)
        return f"{where}: {self.message}" if where else self.message


class UsageError(BadInput):
    """A command-line value that cannot be used (bad unit, unknown flag value)."""


class MissingFile(BadInput):
    """The input file does not exist or cannot be opened."""


class TraceFormatError(BadInput):
    """A ptviz msgpack trace that cannot be read."""


class EmptyFile(TraceFormatError):
    """Zero bytes."""


class BadMagic(TraceFormatError):
    """Not a ptviz trace at all."""


class UnsupportedVersion(TraceFormatError):
    """A format version this ptviz does not read."""


class CorruptTrace(TraceFormatError):
    """A checksum, a frame or a value is wrong: the file was damaged."""


class TruncatedTrace(TraceFormatError):
    """The file ends before anything usable (inside the header)."""


class OutputError(BadInput):
    """An output ptviz will not write (it exists, or is a device, FIFO or link) or
    cannot write (no such directory, a full disk). Names the user's path."""


class ImportFormatError(BadInput):
    """A foreign capture (ftrace text, trace.dat, JSON) that cannot be read."""
