"""Opening what ``ptviz view`` is given, off the UI thread: a ptviz trace as it is, an
ftrace capture imported to a temporary file first (the same paths as ``ptviz replay``).
"""

from __future__ import annotations

from typing import Callable

from replayer import Replay

from ..cli.inputs import bad_lines
from ..ftrace.importer import open_reader


def open_replay(path: str, workdir: str, say: Callable[[str], None]) -> tuple[Replay, list[str]]:
    """A :class:`Replay` of ``path``, opened but not loaded, and warnings for the user.

    Text and trace.dat are imported into ``workdir`` (``say`` tells the user so);
    raises :class:`replayer.BadInput` with the same one line the CLI prints.
    """
    reader, stats = open_reader(path, workdir,
                                lambda: say(f"importing {path} (ftrace capture) …"))
    why = bad_lines(stats) if stats is not None else None
    warnings = ([why] if why else []) + reader.warnings
    return Replay.open(reader), warnings
