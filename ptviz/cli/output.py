"""Writing a command's result: JSON for machines, or its text rendering."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

# Trace strings (comms, marker text, raw payloads) reach the terminal: control
# characters are shown as escapes, never sent, so a trace cannot move the cursor,
# retitle the window or fake report lines.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES_KEEP_LINES = {c: e for c, e in _ESCAPES.items() if c not in (0x0A, 0x09)}


#: What every command that reads a trace takes, for its help.
TRACE_HELP = ("a ptviz trace (.msgpack), ftrace text or trace.dat, also compressed (.gz, .xz, "
              ".zst); text and trace.dat are imported first")


def printable(text: Any) -> str:
    """``text`` as one line of printable characters."""
    return str(text).translate(_ESCAPES)


def emit(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(data).translate(_ESCAPES_KEEP_LINES))


class LazyHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help texts that may be callables, called only when help is printed: an epilog
    listing the simulator's workloads or the report's condition names would otherwise
    import them (and numpy) for every command, and ``ptviz --help`` would take 0.3 s."""

    def _format_text(self, text: Any) -> str:
        return super()._format_text(text() if callable(text) else text)

    def _format_action(self, action: argparse.Action) -> str:
        if callable(action.help):
            action.help = action.help()
        return super()._format_action(action)
