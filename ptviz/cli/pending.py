"""Commands that are announced in ``--help`` but not built yet."""

from __future__ import annotations

import argparse

from .errors import EXIT_BAD_INPUT, fail

PENDING = {
    "view": ("browse a trace in the terminal UI", "the terminal UI issue"),
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
