"""``ptviz replay TRACE``: the headless replay for people and CI."""

from __future__ import annotations

import argparse

from replayer.units import parse_moment

from .output import TRACE_HELP, LazyHelpFormatter, emit
from .errors import EXIT_CONDITION, EXIT_OK, fail, warn


def _epilog() -> str:
    from replayer.report import FAIL_ON_NAMES
    return f"""\
--fail-on takes NAME or NAME OP VALUE (OP: > >= < <= == !=; VALUE may have a size
unit: 1M, 4K), comma-separated or repeated; a bare NAME means NAME>0. Names:
{", ".join(FAIL_ON_NAMES)}.
When the trace lost events (ring-buffer drops, a file cut short), a condition
that does not hold on what the trace holds cannot be decided, and also exits 1.
Exit status: 0 clean, 1 a --fail-on condition held or cannot be decided, 2 bad
input or usage.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay a trace headless: report, --at, --fail-on (CI)",
                       description="Replay a trace (a ptviz trace, ftrace text or "
                                   "trace.dat, also .gz, .xz, .zst) and report page-table "
                                   "state, the classification of PTE tables and safety "
                                   "findings.",
                       epilog=_epilog, formatter_class=LazyHelpFormatter)
    p.add_argument("trace", help=TRACE_HELP)
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object instead of text (REPORT.md; "
                        "JSON Schema: replayer/report.schema.json)")
    p.add_argument("--all", action="store_true", dest="every_mm",
                   help="list every address space; default: a recording's text shows the "
                        "command's processes and folds the others into one line")
    p.add_argument("--at", metavar="T",
                   help="the state at time T: seconds or a value with a unit (1.000234s, "
                        "1.5ms), +T from the first event (+1.5ms), or marker:TEXT (the "
                        "first marker whose text holds TEXT); default: the end")
    p.add_argument("--fail-on", action="append", default=[], metavar="COND",
                   help="exit 1 when a condition holds, e.g. use_after_free, lost>0, "
                        "empty_attached_bytes>1M (bytes, or K, M, G); comma-separated or "
                        "repeated (names below); default: none")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .inputs import open_trace
    from .replay_text import render
    from .progress import load_replay
    from replayer.report import (build_report, failed_conditions, parse_fail_on, undecided_conditions, what_was_lost)
    from .moments import replay_markers, resolve
    conditions = parse_fail_on(args.fail_on)
    if args.at is not None and not args.at.startswith("marker:"):
        parse_moment(args.at, 0, "--at")             # a bad value before the replay
    with open_trace(args.trace) as reader:
        replay = load_replay(reader)
        at = None if args.at is None else resolve(
            args.at, "--at", replay.first_ts, replay.last_ts, replay_markers(replay))
        report = build_report(replay, at)
    for w in report["trace"]["warnings"]:
        warn(w)
    if not report["trace"]["events"]:
        warn(f"{args.trace}: the trace holds no events")
    emit(report, args.json, lambda r: render(r, args.every_mm))
    held = failed_conditions(report, conditions)
    for text in held:
        fail(f"fail-on: {text}")
    undecided = undecided_conditions(report, conditions)
    for text in undecided:
        fail(f"fail-on: {text}: cannot be decided, {what_was_lost(report)}")
    return EXIT_CONDITION if held or undecided else EXIT_OK
