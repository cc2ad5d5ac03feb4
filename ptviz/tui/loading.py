"""Opening what ``ptviz view`` is given, off the UI thread: a ptviz trace as it is, an
ftrace capture imported to a temporary file first (the same paths as ``ptviz replay``).
"""

from __future__ import annotations

import os
from typing import Callable

from replayer import Replay, TraceReader

from ..decompress import decompressed
from ..ftrace.importer import import_file, sniff


def open_replay(path: str, workdir: str, say: Callable[[str], None]) -> tuple[Replay, list[str]]:
    """A :class:`Replay` of ``path``, opened but not loaded, and warnings for the user.

    Text and trace.dat are imported into ``workdir`` (``say`` tells the user so);
    raises :class:`replayer.BadInput` with the same one line the CLI prints.
    """
    warnings: list[str] = []
    with decompressed(path, workdir) as real:     # unpacked into workdir, kept there
        if sniff(real) == "ptviz":
            reader = TraceReader(real, name=path)
        else:
            say(f"importing {path} (ftrace capture) …")
            imported = os.path.join(workdir, "imported.msgpack")
            stats = import_file(real, imported)
            if stats["bad_lines"]:
                line, text = stats["first_bad"][0]
                warnings.append(f"{stats['bad_lines']} line(s) not understood, first at "
                                f"line {line}: {text!r}")
            reader = TraceReader(imported, name=path)
    warnings += reader.warnings
    return Replay.open(reader), warnings
