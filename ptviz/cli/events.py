"""``ptviz events TRACE [FILTER...]``: the events, one a line, as the UI's Events tab
lists them; the filter syntax is the UI's filter bar's (``replayer/filters.py``)."""

from __future__ import annotations

import argparse
import json
import sys

from replayer.units import format_ts

from .errors import EXIT_OK
from .output import TRACE_HELP

EPILOG = """\
FILTER terms (all must hold): cpu=1,3  kind=table_free,tlb_flush (or kind=table_*)
mm=0x4635  pfn=0x17d80a  pid=17973, and words searched in the task and fields
(case-insensitive), e.g.:  ptviz events t.msgpack kind=table_detach reclaim
Lines: time (s), CPU, task (comm-pid), kind, fields; --json writes one JSON object a
line: index, ts, cpu, pid, comm, kind, fields.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="list a trace's events, filtered (as the Events tab)",
                       description="List the events of a trace in order, optionally "
                                   "filtered and limited to a time window.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", help=TRACE_HELP)
    p.add_argument("filter", nargs="*",
                   help="filter terms, all of which must hold (below); default: every event")
    p.add_argument("--from", dest="t0", metavar="T",
                   help="from time T: seconds or with a unit (1.5ms), +T from the first "
                        "event, or marker:TEXT; default: the first event")
    p.add_argument("--to", dest="t1", metavar="T",
                   help="up to time T (as --from); default: the last event")
    p.add_argument("--limit", type=int, metavar="N",
                   help="print at most N events (a count); default: all")
    p.add_argument("--json", action="store_true",
                   help="one JSON object a line (JSON Lines) instead of text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..words import fields_text, task
    from .inputs import open_trace
    from replayer.filters import parse_filter, select
    from .progress import load_replay
    from .moments import replay_markers, resolve
    with open_trace(args.trace) as reader:
        replay = load_replay(reader)
        t0, t1 = (None if text is None else resolve(text, flag, replay.first_ts,
                                                    replay.last_ts, replay_markers(replay))
                  for text, flag in ((args.t0, "--from"), (args.t1, "--to")))
        flt = parse_filter(" ".join(args.filter), [k.name for k in replay.reader.kinds])
        idx, _, cpus = select(replay, flt, t0, t1)
        if args.limit is not None:
            idx, cpus = idx[:max(0, args.limit)], cpus[:max(0, args.limit)]
        out = sys.stdout
        for start in range(0, len(idx), 4096):
            rows = replay.rows_at(idx[start:start + 4096].tolist())
            for (i, e), cpu in zip(rows, cpus[start:start + 4096].tolist()):
                if args.json:
                    out.write(json.dumps({"index": i, "ts": e.ts, "cpu": cpu, "pid": e.pid,
                                          "comm": e.comm, "kind": e.kind,
                                          "fields": e.fields}) + "\n")
                else:
                    out.write(f"{format_ts(e.ts)}  [{cpu:03d}]  {task(e):<22} {e.kind:<18} "
                              f"{fields_text(e)}\n")
    return EXIT_OK
