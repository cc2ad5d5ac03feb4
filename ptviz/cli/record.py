"""``ptviz record -- CMD``: trace a command with ftrace, write a ptviz trace."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from replayer.errors import UsageError

from ..ftrace.importer import import_file
from ..ftrace.record import EVENTS, kernel_header, print_commands, record_text
from .errors import EXIT_OK, warn
from .inputs import describe_import


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record a real trace with ftrace around a command",
                       description="Trace CMD in a private tracefs instance with the page-table "
                                   "event set, keep tracing a short tail, and write a ptviz "
                                   "trace. CMD can write to $PTVIZ_TRACE_MARKER to annotate.")
    p.add_argument("-o", "--output", default="ptviz-record.msgpack")
    p.add_argument("-e", "--event", action="append", default=[],
                   help="extra event (system/name) to enable")
    p.add_argument("--tail", type=float, default=0.5,
                   help="seconds to keep tracing after CMD (RCU frees come late; default 0.5)")
    p.add_argument("--buffer-kb", type=int, default=65536, help="per-CPU buffer size")
    p.add_argument("--print", action="store_true", dest="print_only",
                   help="print the equivalent tracefs and trace-cmd commands and exit")
    p.add_argument("--keep-text", metavar="PATH", help="also keep the raw ftrace text")
    p.add_argument("--no-probes", dest="probes", action="store_false",
                   help="do not define the page-table fprobes/kprobes even where the kernel "
                        "allows (with them, the trace holds raw kernel pointers)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    events = EVENTS + tuple(args.event)
    if args.print_only:
        sys.stdout.write(print_commands(cmd, events))
        return EXIT_OK
    if not cmd:
        raise UsageError("record: no command given (ptviz record -- CMD ...)")
    fd, text = tempfile.mkstemp(prefix="ptviz-record-", suffix=".txt")
    os.close(fd)
    try:
        result = record_text(cmd, text, events, args.tail, args.buffer_kb,
                             probes=args.probes)
        if args.keep_text:
            import shutil
            shutil.copyfile(text, args.keep_text)
        header = kernel_header()
        header["command"] = cmd
        header["record"] = {"missing_events": result["missing"],
                            "lost": {str(c): n for c, n in result["lost"].items()},
                            "probes": result["probes"], "probe_style": result["probe_style"],
                            "tail_s": args.tail}
        stats = import_file(text, args.output, header)
    finally:
        os.unlink(text)
    lost = sum(result["lost"].values())
    if lost:
        warn(f"the ring buffer dropped {lost} events; raise --buffer-kb")
    print(f"ptviz: {cmd[0]} exited {result['returncode']}; {args.output}: "
          f"{describe_import(stats)} (not available here: "
          f"{', '.join(result['missing']) or 'none'})", file=sys.stderr)
    return EXIT_OK
