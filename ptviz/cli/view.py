"""``ptviz view TRACE``: the terminal UI (``ptviz/tui``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from replayer.errors import UsageError

from .errors import EXIT_BUG, EXIT_OK, fail
from .output import TRACE_HELP

EPILOG = """\
Keys: + - zoom, 0 fit, ← → move, shift+← → pan, [ ] pick an event class and n N
step through it, m M markers, f F findings, a b set markers A/B, g go to a time,
t the tabs (1 events, 2 tables, 3 findings, 4 summary), ctrl+f filter events,
? help, ctrl+p every action, q quit.
Two traces (ptviz view A B): B's lanes among A's, interleaved per CPU or stacked (x);
each counter lane twice; the Summary tab is ptviz diff A B.
Exit status: 0, or 2 when a trace cannot be read (the message is also printed).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="browse a trace (or compare two) in the terminal UI",
                       description="Browse a trace in the terminal: per-CPU timelines, "
                                   "counters and the PTE pages at the cursor. Takes what "
                                   "`ptviz replay` takes (a ptviz trace, ftrace text, "
                                   "trace.dat).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", nargs="?", metavar="TRACE",
                   help=f"the trace to open: {TRACE_HELP}; none with --sim")
    p.add_argument("trace_b", nargs="?", metavar="TRACE_B",
                   help="a second trace to compare, on the same time axis (read as TRACE); "
                        "default: none")
    p.add_argument("--align", metavar="MARKER",
                   help="with two traces: put the first marker whose text holds MARKER at "
                        "the same time in both (default: their first events)")
    p.add_argument("--sim", nargs=argparse.REMAINDER, metavar="SIMULATE-ARGS",
                   help="simulate with `ptviz simulate`'s options (no -o) into a temporary "
                        "file and open it, e.g. --sim --kernel 6.13 --param size=1G; the "
                        "options after it are all ptviz simulate's")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.sim is None and not args.trace:
        raise UsageError("view: give a TRACE, or --sim SIMULATE-ARGS")
    if args.sim is not None and args.trace:
        raise UsageError("view: give a TRACE or --sim, not both")
    if args.align is not None and not args.trace_b:
        raise UsageError("view --align: give two traces to align")
    if args.sim is not None and any(a in ("-o", "--output") or a.startswith("--output=")
                                    for a in args.sim):
        raise UsageError("view --sim: the output is a temporary file; leave -o out")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("view needs a terminal; for a report without one, use ptviz replay")
    if args.sim is None:
        return _view(args.trace, args.trace_b, args.align)
    with tempfile.TemporaryDirectory(prefix="ptviz-sim-") as tmp:
        out = os.path.join(tmp, "sim.msgpack")
        _simulate(args.sim, out)
        return _view(out)


def _simulate(sim_args: list[str], out: str) -> None:
    from . import simulate
    parser = argparse.ArgumentParser(prog="ptviz view --sim", add_help=False)
    sub = parser.add_subparsers()
    simulate.register(sub)
    ns = parser.parse_args(["simulate", *sim_args, "-o", out])
    simulate.run(ns)


def _view(path: str, path_b: str | None = None, align: str | None = None) -> int:
    from ..tui.app import TraceApp     # Textual loads only for the UI
    app = TraceApp(path, path_b, align)
    app.run()
    if app.error is not None:
        fail(app.error)
    if app.return_code:          # the app died (Textual has shown why): not a success
        return EXIT_BUG
    return app.exit_status or EXIT_OK
