"""ptviz's replay engine: event vocabulary, trace I/O, page-table state over time.

Pure Python with numpy, msgpack and sortedcontainers; it never imports textual,
rich or ptviz, so CI scripts and other tools can use it without the UI.

    from replayer import Replay, build_report
    with Replay.load("trace.msgpack") as replay:
        report = build_report(replay)

The names below are the public API; modules' other names may change.
"""

__version__ = "0.1.0"

# The names are imported on first use (PEP 562): a command that needs only the
# errors or the writer does not pay for numpy and the fold (``ptviz --help`` starts
# in a fraction of the time).
from .lazy import lazy_names

_WHERE = {
    "Cursor": "cursor", "Replay": "replay", "build_report": "report",
    "CLASSES": "state", "FINDING_KINDS": "state", "Finding": "state",
    "ReplayState": "state", "TableArrays": "tables",
    "Event": "traceio", "TraceReader": "traceio", "TraceWriter": "traceio",
    "KINDS": "vocab", "TIMELINE_CLASSES": "vocab",
    **{name: "errors" for name in (
        "BadInput", "BadMagic", "Cancelled", "CorruptTrace", "EmptyFile",
        "ImportFormatError", "MissingFile", "OutputError", "TraceFormatError",
        "TruncatedTrace", "UnsupportedVersion", "UsageError")},
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())


__all__ = [
    "BadInput", "BadMagic", "CLASSES", "Cancelled", "CorruptTrace", "Cursor", "EmptyFile",
    "Event", "FINDING_KINDS", "Finding", "ImportFormatError", "KINDS", "MissingFile",
    "OutputError", "Replay", "ReplayState", "TIMELINE_CLASSES", "TableArrays",
    "TraceFormatError", "TraceReader", "TraceWriter", "TruncatedTrace", "UnsupportedVersion",
    "UsageError", "build_report",
]
