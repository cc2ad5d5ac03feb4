"""The one place that turns failures into exit codes and one-line messages.

0: clean. 1: a condition the user asked to fail on held (``--fail-on``).
2: bad input or usage — any :class:`replayer.errors.BadInput`, a file that
cannot be opened or written, an argparse error, memory the input needs and cannot
have. 128 + N: ended by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after
removing any output not finished.
A traceback is shown only with ``--debug``; bugs (anything else) keep theirs.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Callable

from replayer.errors import BadInput
from replayer.traceio.atomic import remove_partial_outputs

EXIT_OK = 0
EXIT_CONDITION = 1
EXIT_BUG = 1             # a crash: what Python itself exits with on an uncaught exception
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141   # 128 + SIGPIPE, what a shell reports for a killed writer


def fail(message: str) -> None:
    """Print one ``ptviz: ...`` line on stderr."""
    print(f"ptviz: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"ptviz: warning: {message}", file=sys.stderr)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every ``with`` drops its output."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def run_guarded(run: Callable[[], int], debug: bool = False) -> int:
    """Run a command: exceptions become exit codes, and whatever way it ends, no
    unfinished output file is left behind."""
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[signum] = signal.signal(signum, _terminate)
        except ValueError:      # not the main thread (an embedding program): leave as is
            pass
    try:
        return _run(run, debug)
    finally:
        remove_partial_outputs()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(run: Callable[[], int], debug: bool) -> int:
    try:
        return run()
    except BrokenPipeError:
        # The reader went away (`ptviz replay x | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except BadInput as exc:
        if debug:
            traceback.print_exc()
        fail(str(exc))
        return EXIT_BAD_INPUT
    except OSError as exc:
        # Files we were told to read or write: missing, unwritable, a full disk.
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}")
        return EXIT_BAD_INPUT
    except MemoryError:
        # A trace larger than this machine's memory (or a file claiming to be): like a
        # full disk, a resource the input needs and cannot have. Outputs are removed.
        if debug:
            traceback.print_exc()
        fail("out of memory: this input needs more than the machine can give")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_INTERRUPTED
    except Terminated as exc:
        fail(f"terminated by {signal.Signals(exc.signum).name}")
        return 128 + exc.signum
