"""ptviz's replay engine: event vocabulary, trace I/O, page-table state over time.

Pure Python with numpy, msgpack and sortedcontainers; it never imports textual,
rich or ptviz, so CI scripts and other tools can use it without the UI.

    from replayer import Replay, build_report
    with Replay.load("trace.msgpack") as replay:
        report = build_report(replay)

The names below are the public API; modules' other names may change.
"""

__version__ = "0.1.0"

from .cursor import Cursor
from .errors import (BadInput, BadMagic, Cancelled, CorruptTrace, EmptyFile,
                     ImportFormatError, MissingFile, OutputError, TraceFormatError,
                     TruncatedTrace, UnsupportedVersion, UsageError)
from .replay import Replay
from .report import build_report
from .state import CLASSES, FINDING_KINDS, Finding, ReplayState
from .tables import TableArrays
from .traceio import Event, TraceReader, TraceWriter
from .vocab import KINDS, TIMELINE_CLASSES

__all__ = [
    "BadInput", "BadMagic", "CLASSES", "Cancelled", "CorruptTrace", "Cursor", "EmptyFile",
    "Event", "FINDING_KINDS", "Finding", "ImportFormatError", "KINDS", "MissingFile",
    "OutputError", "Replay", "ReplayState", "TIMELINE_CLASSES", "TableArrays",
    "TraceFormatError", "TraceReader", "TraceWriter", "TruncatedTrace", "UnsupportedVersion",
    "UsageError", "build_report",
]
