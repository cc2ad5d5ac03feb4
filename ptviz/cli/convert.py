"""``ptviz convert IN OUT``: between ptviz msgpack, JSON Lines, ftrace text, trace.dat
(read) and Chrome JSON for Perfetto (write), streamed, cut and filtered, atomic."""

from __future__ import annotations

import argparse
import contextlib
import sys

from replayer.errors import UsageError

from .errors import EXIT_OK

EPILOG = """\
Formats come from the file names (ptviz convert --formats lists them) or --from/--to.
Examples:
  ptviz convert trace.dat t.msgpack                 import a trace-cmd capture
  ptviz convert t.msgpack t.json                    for ui.perfetto.dev (Open trace file)
  ptviz convert t.msgpack t.txt --since +1s --until +2s --cpus 0,1
  ptviz convert t.msgpack t.jsonl --kinds 'table_*' --mm 0x4635
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert between trace formats (msgpack, JSON Lines, "
                                       "ftrace text, trace.dat, Chrome JSON for Perfetto)",
                       description="Convert a trace between formats, streaming (memory stays "
                                   "flat whatever the trace's length), optionally cut to a "
                                   "time window and filtered. ftrace text and trace.dat are "
                                   "imported: the page-table story is inferred from stock "
                                   "tracepoints.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", metavar="IN",
                   help="the trace to read: ptviz msgpack, JSON Lines, ftrace text or "
                        "trace.dat, also compressed (.gz, .xz, .zst); its format from its "
                        "content, or --from")
    p.add_argument("output", nargs="?", metavar="OUT",
                   help="the file to write, its format from its name (.msgpack, .jsonl, "
                        ".txt, .json for Perfetto) or --to; it appears only when the "
                        "conversion succeeds, and an existing file is not replaced without "
                        "--force")
    p.add_argument("--formats", action="store_true", help="list the formats and exit")
    p.add_argument("--from", dest="from_format", metavar="FORMAT",
                   help="IN's format: msgpack, jsonl, ftrace or trace.dat; default: from "
                        "its content")
    p.add_argument("--to", dest="to_format", metavar="FORMAT",
                   help="OUT's format: msgpack, jsonl, ftrace or chrome; default: from its "
                        "name")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--since", metavar="T", help="keep events at or after T: seconds or a "
                   "value with a unit (1.5ms), +T from the trace's first event, or "
                   "marker:TEXT (the first marker whose text holds TEXT); default: the "
                   "first event")
    p.add_argument("--until", metavar="T",
                   help="keep events at or before T (as --since); default: the last event")
    p.add_argument("--cpus", metavar="LIST",
                   help="keep these CPUs, e.g. 0,2 or 0-3,8; default: all")
    p.add_argument("--kinds", metavar="LIST",
                   help="keep these event kinds, e.g. 'table_*,tlb_flush'; default: all")
    p.add_argument("--mm", metavar="LIST",
                   help="keep events of these address spaces, mm pointers in hex, e.g. "
                        "0x4635,0x4637; default: all")
    p.add_argument("--pid", metavar="LIST",
                   help="keep events of these tasks, pids, e.g. 17973,17980; default: all")
    p.add_argument("--arch", metavar="NAME",
                   help="importing ftrace: the traced machine's architecture, recorded in "
                        "the trace (it sizes VmPTE); one of x86_64, x86-pae, arm64, "
                        "riscv64, mips64, parisc64, um, arm, arm-lpae (4 KiB pages, 2 MiB "
                        "per PTE table); default: x86_64, marked as assumed")
    p.add_argument("--pt-reclaim", choices=("y", "n"),
                   help="importing ftrace: whether the traced kernel had CONFIG_PT_RECLAIM "
                        "(helps place detaches at MADV_DONTNEED); default: unknown")
    p.add_argument("--format-version", type=int, choices=(1, 2), default=2,
                   help="writing msgpack: the format version (default 2; 1 for ptviz "
                        "before 0.2)")
    p.add_argument("--no-findings", action="store_true",
                   help="writing Chrome JSON: skip the replay that adds the findings")
    p.set_defaults(run=run)


def _terms(args: argparse.Namespace) -> str:
    terms = []
    for key, value in (("cpu", args.cpus), ("kind", args.kinds), ("mm", args.mm),
                       ("pid", args.pid)):
        if value is not None:
            if not value.strip() or " " in value.strip():
                raise UsageError(f"--{key if key != 'kind' else 'kinds'} {value!r}: a "
                                 f"comma-separated list, no spaces")
            terms.append(f"{key}={value.strip()}")
    return " ".join(terms)


def run(args: argparse.Namespace) -> int:
    from ..convert.formats import describe, input_format, output_format
    from ..convert.stream import Selection
    if args.formats:
        print(describe())
        return EXIT_OK
    if args.input is None or args.output is None:
        raise UsageError("convert: give IN and OUT (or --formats)")
    from replayer.traceio.atomic import check_output
    from ..decompress import decompressed
    from .inputs import stage_bar
    dst = output_format(args.output, args.to_format)
    check_output(args.output, args.force)           # refused before any long work
    selection = Selection(args.since, args.until, _terms(args))
    header = _import_header(args)
    with contextlib.ExitStack() as bars:            # a .gz/.xz/.zst input, unpacked
        source = bars.enter_context(decompressed(args.input,
                                                 progress=stage_bar(bars, "unpack")))
        src = input_format(source, args.from_format)
        if selection.everything and dst.name == "msgpack" and \
                src.name in ("ftrace", "trace.dat"):
            return _import(args, source, header)
        if selection.everything and dst.name == src.name == "msgpack":
            return _rewrite(args, source)
        return _convert(args, source, src.name, dst.name, selection, header)


def _import_header(args: argparse.Namespace) -> dict:
    """What an import of ftrace records beyond the text: the kernel's PT_RECLAIM, the
    architecture (checked now, before any long work)."""
    header: dict = {"kernel": {"pt_reclaim": args.pt_reclaim == "y"}} if args.pt_reclaim else {}
    if args.arch is not None:
        from ..ftrace.arch import import_arch
        header["arch"] = import_arch(args.arch)
    return header


def _import(args: argparse.Namespace, source: str, header: dict) -> int:
    from ..ftrace.importer import import_file
    from .inputs import import_bar, describe_import, warn_bad_lines
    with contextlib.ExitStack() as bars:
        stats = import_file(source, args.output, header, force=args.force,
                            version=args.format_version, progress=import_bar(bars))
    warn_bad_lines(args.input, stats)
    print(f"ptviz: {args.input} → {args.output}: {describe_import(stats)}", file=sys.stderr)
    return EXIT_OK


def _rewrite(args: argparse.Namespace, source: str) -> int:
    from replayer.traceio import TraceReader
    from replayer.traceio.rewrite import rewrite
    from .progress import progress_bar
    with TraceReader(source, name=args.input) as reader:  # its one line if not a trace
        if reader.version == args.format_version:
            raise UsageError(f"is already a ptviz trace of format version "
                             f"{reader.version}: nothing to convert", args.input)
        with progress_bar("convert", reader.event_count) as bar:
            events = rewrite(reader, args.output, args.format_version, force=args.force,
                             progress=bar.at)
    print(f"ptviz: {args.input} (format v{reader.version}) → {args.output} (format "
          f"v{args.format_version}): {events:,} events", file=sys.stderr)
    return EXIT_OK


def _convert(args: argparse.Namespace, source: str, src: str, dst: str, selection,
             header: dict) -> int:
    from replayer.traceio.atomic import AtomicOutput
    from ..convert.stream import open_stream
    from .inputs import warn_bad_lines
    from .progress import progress_bar
    with open_stream(source, src, header,
                     on_import=lambda stats: warn_bad_lines(args.input, stats),
                     name=args.input) as stream:
        from .moments import resolve
        selection.t0, selection.t1 = (
            None if text is None else resolve(text, flag, stream.first_ts, stream.last_ts,
                                              stream.markers)
            for text, flag in ((selection.since, "--since"), (selection.until, "--until")))
        findings = _findings(stream) if dst == "chrome" and not args.no_findings else None
        with progress_bar("convert", stream.total or None) as advance:
            if dst == "msgpack":
                written = _to_msgpack(args, stream, selection, advance)
            else:
                # Committed when the block ends, dropped on any exception or signal.
                with AtomicOutput(args.output, args.force) as out:
                    try:
                        written = _to_text(dst, stream, selection, out.file, advance, findings)
                    except OSError as exc:          # a full disk: one line, no file
                        raise out.error(exc) from None
                    _not_empty(args, stream, written)
    kept = "" if selection.everything else " kept"
    print(f"ptviz: {args.input} ({src}) → {args.output} ({dst}): {written:,} events{kept}",
          file=sys.stderr)
    return EXIT_OK


def _to_text(dst: str, stream, selection, file, advance, findings: list | None) -> int:
    """Write JSON Lines, ftrace text or Chrome JSON to ``file``; the events written."""
    if dst == "chrome":
        from ..convert.chrome import write_chrome
        window, flt = stream.resolve(selection)
        return write_chrome(stream, stream.marked(selection), file, advance,
                            _kept_findings(findings, window, flt), window.t0, flt.mms)
    from ..convert.ftrace_text import write_text
    from ..convert.jsonl import write_jsonl
    writer = write_jsonl if dst == "jsonl" else write_text
    return writer(stream, stream.rows(selection), file, advance)


def _not_empty(args: argparse.Namespace, stream, written: int) -> None:
    if written == 0 and (stream.total or stream.first_ts is not None):
        raise UsageError("convert: no event passes the window and filters; nothing written",
                         args.input)


def _to_msgpack(args: argparse.Namespace, stream, selection, advance) -> int:
    from replayer.traceio import TraceWriter
    with TraceWriter(args.output, stream.header, kinds=stream.kinds, force=args.force,
                     version=args.format_version) as w:
        for batch in stream.rows(selection):
            w.add_many(batch.writer_rows())
            advance(len(batch))
        written = w.events_written
        _not_empty(args, stream, written)
        w.notes.extend(stream.notes)
    return written


def _kept_findings(findings: list | None, window, flt) -> list:
    """The findings in the window, on the CPUs and mms kept (one with no CPU or mm is
    kept by those terms)."""
    lo = window.t0 if window.t0 is not None else -(1 << 63)
    hi = window.t1 if window.t1 is not None else 1 << 63
    return [f for f in findings or () if lo <= f.ts <= hi
            and (flt.cpus is None or f.cpu is None or f.cpu in flt.cpus)
            and (flt.mms is None or f.mm is None or f.mm in flt.mms)]


def _findings(stream) -> list | None:
    """The replay's findings, for Chrome JSON's global instants (a replay of the whole
    trace: its memory, not the conversion's, is what grows with the trace)."""
    reader = getattr(stream, "reader", None)
    if reader is None:
        from .errors import warn
        warn("the Chrome JSON has no findings: they come from a replay, which needs a "
             "msgpack or ftrace input (ptviz convert IN t.msgpack first)")
        return None
    from .progress import load_replay
    replay = load_replay(reader, "findings")
    findings = list(replay.findings)
    del replay
    return findings
