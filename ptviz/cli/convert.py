"""``ptviz convert IN OUT``: ftrace text or trace.dat → ptviz msgpack (more formats to come)."""

from __future__ import annotations

import argparse
import sys

from replayer.errors import UsageError

from .errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert an ftrace capture (text, trace.dat) to msgpack",
                       description="Convert between trace formats. Built so far: tracefs "
                                   "trace/trace_pipe text, trace-cmd report text and trace.dat "
                                   "(through trace-cmd) to a ptviz msgpack trace, with the "
                                   "page-table story inferred from stock tracepoints.")
    p.add_argument("input")
    p.add_argument("output", help="the trace to write; it appears only when the conversion "
                                  "succeeds, and an existing file is not replaced without "
                                  "--force")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--pt-reclaim", choices=("y", "n"),
                   help="whether the traced kernel had CONFIG_PT_RECLAIM (helps place "
                        "detaches at MADV_DONTNEED); default: unknown")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..ftrace.importer import import_file, sniff
    from .inputs import describe_import, warn_bad_lines
    from replayer.traceio import TraceReader
    if not args.output.endswith(".msgpack"):
        raise UsageError(f"convert: output {args.output!r}: only .msgpack is built so far")
    if sniff(args.input) == "ptviz":
        with TraceReader(args.input):     # raises the reader's one line if it is not one
            pass
        raise UsageError("is already a ptviz trace: nothing to convert", args.input)
    header = {}
    if args.pt_reclaim:
        header["kernel"] = {"pt_reclaim": args.pt_reclaim == "y"}
    stats = import_file(args.input, args.output, header, force=args.force)
    warn_bad_lines(args.input, stats)
    print(f"ptviz: {args.input} → {args.output}: {describe_import(stats)}", file=sys.stderr)
    return EXIT_OK
