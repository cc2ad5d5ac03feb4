"""``ptviz convert IN OUT``: ftrace text or trace.dat → ptviz msgpack, and a ptviz trace
to another format version (more formats to come)."""

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
                                   "page-table story inferred from stock tracepoints; and a "
                                   "ptviz trace to another format version (a v1 trace is "
                                   "upgraded to v2's columns: smaller, and read faster).")
    p.add_argument("input")
    p.add_argument("output", help="the trace to write; it appears only when the conversion "
                                  "succeeds, and an existing file is not replaced without "
                                  "--force")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--pt-reclaim", choices=("y", "n"),
                   help="whether the traced kernel had CONFIG_PT_RECLAIM (helps place "
                        "detaches at MADV_DONTNEED); default: unknown")
    p.add_argument("--format-version", type=int, choices=(1, 2), default=2,
                   help="the msgpack format version to write (default 2; 1 for ptviz "
                        "before 0.2)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..ftrace.importer import import_file, sniff
    from .inputs import describe_import, warn_bad_lines
    from replayer.traceio import TraceReader
    if not args.output.endswith(".msgpack"):
        raise UsageError(f"convert: output {args.output!r}: only .msgpack is built so far")
    if sniff(args.input) == "ptviz":
        from replayer.traceio.rewrite import rewrite
        with TraceReader(args.input) as reader:  # the reader's one line if it is not one
            if reader.version == args.format_version:
                raise UsageError(f"is already a ptviz trace of format version "
                                 f"{reader.version}: nothing to convert", args.input)
            events = rewrite(reader, args.output, args.format_version, force=args.force)
        print(f"ptviz: {args.input} (format v{reader.version}) → {args.output} (format "
              f"v{args.format_version}): {events:,} events", file=sys.stderr)
        return EXIT_OK
    header = {}
    if args.pt_reclaim:
        header["kernel"] = {"pt_reclaim": args.pt_reclaim == "y"}
    stats = import_file(args.input, args.output, header, force=args.force,
                        version=args.format_version)
    warn_bad_lines(args.input, stats)
    print(f"ptviz: {args.input} → {args.output}: {describe_import(stats)}", file=sys.stderr)
    return EXIT_OK
