"""Opening what users hand us: a ptviz trace, or an ftrace capture imported on the fly."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from ..ftrace.importer import import_file, sniff
from .errors import warn


@contextlib.contextmanager
def as_ptviz_trace(path: str) -> Iterator[str]:
    """Yield a ptviz trace path for ``path``; text and trace.dat are imported to a
    temporary file first (removed afterwards)."""
    if sniff(path) == "ptviz":
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix="ptviz-import-", suffix=".msgpack")
    os.close(fd)
    try:
        stats = import_file(path, tmp)
        if stats["bad_lines"]:
            line, text = stats["first_bad"][0]
            warn(f"{path}: {stats['bad_lines']} line(s) not understood, first at line "
                 f"{line}: {text!r}")
        yield tmp
    finally:
        os.unlink(tmp)
