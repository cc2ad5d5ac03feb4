"""``ptviz``: the command line. ``main(argv) -> exit code``; see errors.py for the codes."""

from __future__ import annotations

import argparse
import sys

from replayer import __version__

from . import batch, bench, convert, diff, events, info, record, replay, simulate, sweep, view
from .errors import EXIT_BAD_INPUT, run_guarded

# Every command, in the order --help lists them; built ones map to their module.
COMMANDS = ("view", "replay", "diff", "events", "convert", "simulate", "sweep", "batch",
            "record", "info", "bench")
BUILT = {"info": info, "replay": replay, "diff": diff, "events": events, "bench": bench,
         "simulate": simulate, "record": record, "convert": convert, "view": view,
         "sweep": sweep, "batch": batch}

DESCRIPTION = """\
Replay and show how the Linux kernel allocates, empties, reclaims and frees
user page-table pages, with the TLB flushes, IPIs and RCU callbacks around them.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptviz", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ptviz {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback for bad input instead of one line")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        BUILT[name].register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    return run_guarded(lambda: args.run(args), debug=args.debug)
