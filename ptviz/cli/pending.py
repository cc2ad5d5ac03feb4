"""Commands that are announced in ``--help`` but not built yet."""

from __future__ import annotations

import argparse

from .errors import EXIT_BAD_INPUT, fail

PENDING = {
    "view": ("browse a trace in the terminal UI", "the terminal UI"),
    "replay": ("replay a trace headless: report, --at, --fail-on (CI)", "issue #3"),
    "convert": ("convert between msgpack, JSON Lines, ftrace text, Chrome JSON",
                "the conversion work"),
    "simulate": ("simulate an architecture and kernel config into a trace", "issue #4"),
    "record": ("record a real trace with ftrace around a command", "issue #5"),
    "bench": ("measure decode, replay, seek and memory figures", "issue #3"),
}


def register(sub: argparse._SubParsersAction, only: str) -> None:
    summary, where = PENDING[only]
    p = sub.add_parser(only, help=f"{summary} [not built yet]", description=summary)
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(run=_pending(only, where))


def _pending(name: str, where: str):
    def run(args: argparse.Namespace) -> int:
        fail(f"{name}: not built yet (comes with {where})")
        return EXIT_BAD_INPUT
    return run
