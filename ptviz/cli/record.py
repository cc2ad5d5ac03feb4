"""``ptviz record -- CMD``: trace a command with ftrace, write a ptviz trace."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile

from replayer.errors import UsageError
from replayer.traceio.atomic import AtomicOutput, check_output

from .errors import EXIT_OK, warn


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record a real trace with ftrace around a command",
                       description="Trace CMD in a private tracefs instance with the page-table "
                                   "event set, keep tracing a short tail, and write a ptviz "
                                   "trace. CMD can write to $PTVIZ_TRACE_MARKER to annotate.",
                       epilog="Exit status: CMD's own (128 + N if a signal N killed it), once "
                              "the trace is written, as time(1) and trace-cmd do; 2 if "
                              "recording or writing failed; 130 after Ctrl-C, which stops CMD and "
                              "still writes the trace recorded until then (a second Ctrl-C "
                              "gives up, leaving no file); 130 too when Ctrl-C cuts the "
                              "tail after CMD short, the trace written; 143 after "
                              "SIGTERM (129 SIGHUP), which ends CMD and every process it "
                              "started (SIGKILL to those still there 5 s later) and leaves "
                              "no file.")
    p.add_argument("-o", "--output", default="ptviz-record.msgpack", metavar="OUT.msgpack",
                   help="the ptviz trace to write; default ptviz-record.msgpack")
    p.add_argument("--force", action="store_true",
                   help="replace OUT.msgpack (and --keep-text's PATH) if it exists")
    p.add_argument("-e", "--event", action="append", default=[], metavar="SYSTEM/NAME",
                   help="an extra tracepoint to enable, e.g. sched/sched_switch; repeated "
                        "for each; default: none beyond ptviz's set")
    p.add_argument("--tail", type=float, default=0.5, metavar="S",
                   help="seconds to keep tracing after CMD exits (RCU frees come late); "
                        "default 0.5")
    p.add_argument("--buffer-kb", type=int, default=65536, metavar="KB",
                   help="the ring buffer's size per CPU, in KiB; default 65536 (64 MiB)")
    p.add_argument("--sample", type=float, default=0.1, metavar="S",
                   help="write the kernel's VmPTE of CMD's processes into the trace at "
                        "their start, their exit and every S seconds; default 0.1, 0: never "
                        "(replay shows ptviz's count beside it)")
    p.add_argument("--print", action="store_true", dest="print_only",
                   help="print the equivalent tracefs and trace-cmd commands and exit")
    p.add_argument("--keep-text", metavar="PATH",
                   help="also keep the raw ftrace text at PATH; default: not kept")
    p.add_argument("--no-probes", dest="probes", action="store_false",
                   help="do not define the page-table fprobes/kprobes even where the kernel "
                        "allows (with them, the trace holds raw kernel pointers)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                   help="the command to trace and its arguments, after --")
    p.set_defaults(run=run)


#: The command's tasks the header lists, at most: the header is one frame of at most
#: 1 MiB, and a build forking hundreds of thousands of tasks must still be written.
MAX_COMMAND_PIDS = 65536


def run(args: argparse.Namespace) -> int:
    from ..ftrace.importer import import_file
    from ..ftrace.record import EVENTS, kernel_header, print_commands, record_text
    from .inputs import describe_import, import_bar
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    events = EVENTS + tuple(args.event)
    if args.print_only:
        sys.stdout.write(print_commands(cmd, events))
        return EXIT_OK
    if not cmd:
        raise UsageError("record: no command given (ptviz record -- CMD ...)")
    # Refused now, not after CMD has run for minutes.
    check_output(args.output, args.force)
    if args.keep_text:
        check_output(args.keep_text, args.force)
    fd, text = tempfile.mkstemp(prefix="ptviz-record-", suffix=".txt")
    os.close(fd)
    try:
        if not 0 <= args.sample <= 3600:
            raise UsageError(f"--sample {args.sample:g}: expected 0..3600 seconds")
        result = record_text(cmd, text, events, args.tail, args.buffer_kb,
                             probes=args.probes, sample_s=args.sample)
        if args.keep_text:
            with open(text, "rb") as src, AtomicOutput(args.keep_text, args.force) as dst:
                shutil.copyfileobj(src, dst.file)
        header = kernel_header()
        header["command"] = cmd
        header["record"] = {"events": result["enabled"], "missing_events": result["missing"],
                            "lost": {str(c): n for c, n in result["lost"].items()},
                            "probes": result["probes"], "probe_style": result["probe_style"],
                            "tail_s": args.tail, "sample_s": args.sample,
                            "command_pids": result["command_pids"][:MAX_COMMAND_PIDS]}
        with contextlib.ExitStack() as bars:      # the import's bar, on a terminal
            stats = import_file(text, args.output, header, force=args.force,
                                progress=import_bar(bars))
    finally:
        os.unlink(text)
    lost = sum(result["lost"].values())
    if lost:
        warn(f"the ring buffer dropped {lost} events; raise --buffer-kb")
    code = result["returncode"]
    status = code if code >= 0 else 128 - code      # -N: killed by signal N, as a shell says
    how = f"exited {code}" if code >= 0 else f"was killed by {_signal_name(-code)}"
    if result["interrupted"]:
        how = f"was stopped by Ctrl-C ({how}); the trace holds what was recorded until then"
        status = 130
    elif result["tail_cut"]:
        how += (f"; Ctrl-C cut the {args.tail:g} s tail short, so frees deferred past it "
                f"(RCU) may be missing")
        status = 130
    print(f"ptviz: {cmd[0]} {how}; {args.output}: "
          f"{describe_import(stats)} (not available here: "
          f"{', '.join(result['missing']) or 'none'})", file=sys.stderr)
    return status


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:          # a real-time signal has no name
        return f"signal {signum}"
