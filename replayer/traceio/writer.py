"""Streaming writer of ptviz traces (format v1, see FORMAT.md)."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from itertools import accumulate
from operator import itemgetter
from typing import Any, BinaryIO

from ..vocab import KindTable, N_COMMON
from . import framing
from .events import Event, event_fields

DEFAULT_CHUNK_EVENTS = 4096
_MISSING = object()
_kind_of = itemgetter(0)
_cpu_of = itemgetter(2)
_dts_of = itemgetter(1)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class TraceWriter:
    """Write events into chunks as they come; the footer index at :meth:`close`.

    With a path, the file is written under a temporary name in the same
    directory and renamed into place on a clean close, so a failure never
    leaves a half-written output behind (a crash leaves the temporary file,
    which is still readable chunk by chunk). With a binary file object the
    caller owns atomicity.

    ``header`` holds what describes the trace (``source``, ``clock``,
    ``cpus``, ``arch``, ``kernel``, ``workload``, ...); the writer adds
    ``format``, ``version`` and ``kinds``.

    Memory: one chunk of rows (``chunk_events``) plus the chunk index.
    """

    def __init__(self, dest: str | os.PathLike | BinaryIO, header: dict[str, Any],
                 kinds: KindTable | None = None,
                 chunk_events: int = DEFAULT_CHUNK_EVENTS) -> None:
        self.kinds = kinds if kinds is not None else KindTable()
        self._row_len = {s.id: N_COMMON + len(s.fields) for s in self.kinds}
        self._chunk_events = max(1, chunk_events)
        self._path: str | None = None
        self._tmp: str | None = None
        if isinstance(dest, (str, os.PathLike)):
            self._path = os.fspath(dest)
            fd, self._tmp = tempfile.mkstemp(prefix=".ptviz-", suffix=".part",
                                             dir=os.path.dirname(os.path.abspath(self._path)))
            os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp's 0600 is not what users expect
            self._file: BinaryIO = os.fdopen(fd, "wb")
        else:
            self._file = dest
        self._offset = 0
        self._index: list[list[int]] = []
        self._kind_counts: Counter[int] = Counter()
        self._cpu_counts: Counter[int] = Counter()
        self._rows: list[tuple] = []
        self._comms: dict[Any, str | None] = {}
        self._base_ts = 0
        self._last_ts = 0
        self._first_ts: int | None = None
        self._max_ts: int | None = None
        self._closed = False
        full = {k: v for k, v in header.items() if k not in ("format", "version", "kinds")}
        full = {"format": framing.FORMAT_NAME, "version": framing.VERSION, **full,
                "kinds": self.kinds.to_header()}
        self._write(framing.PREAMBLE.pack(framing.MAGIC, framing.VERSION))
        self._write(framing.encode_frame(framing.HEADER, framing.pack(full)))

    # -- adding events -----------------------------------------------------
    def add(self, ts: int, kind: int, cpu: int, pid: int | None, fields: tuple,
            comm: str | None = None) -> None:
        """Append one event. ``fields`` are positional, in the kind table's order.

        Amortised O(1); a full chunk is packed and written here.
        """
        if len(fields) + N_COMMON != self._row_len.get(kind, -1):
            raise ValueError(f"kind {kind}: expected {self._row_len.get(kind, 0) - N_COMMON} "
                             f"fields, got {len(fields)}")
        rows = self._rows
        if not rows:
            self._base_ts = self._last_ts = ts
        seen = self._comms.get(pid, _MISSING)
        if seen is _MISSING:
            self._comms[pid] = comm
        elif seen != comm:
            # A pid's comm is per chunk; a change (exec, or a late name) starts a new one.
            self._flush()
            self._base_ts = self._last_ts = ts
            self._comms[pid] = comm
            rows = self._rows
        rows.append((kind, ts - self._last_ts, cpu, pid, *fields))
        self._last_ts = ts
        if len(rows) >= self._chunk_events:
            self._flush()

    def add_event(self, event: Event) -> None:
        """Append an :class:`Event` by name (slow path for tools and tests)."""
        kind, fields = event_fields(event, self.kinds)
        self.add(event.ts, kind, event.cpu, event.pid, fields, event.comm)

    # -- output ------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._offset += len(data)

    def _flush(self) -> None:
        rows = self._rows
        if not rows:
            return
        stamps = list(accumulate(map(_dts_of, rows), initial=self._base_ts))[1:]
        lo, hi = min(stamps), max(stamps)
        comms = [x for pid, comm in self._comms.items() if comm is not None for x in (pid, comm)]
        payload = framing.pack([self._base_ts, lo, hi, len(rows), comms, rows])
        self._index.append([self._offset, lo, hi, len(rows)])
        self._write(framing.encode_frame(framing.CHUNK, payload))
        self._kind_counts.update(map(_kind_of, rows))
        self._cpu_counts.update(map(_cpu_of, rows))
        self._first_ts = lo if self._first_ts is None else min(lo, self._first_ts)
        self._max_ts = hi if self._max_ts is None else max(hi, self._max_ts)
        self._rows = []
        self._comms = {}

    @property
    def events_written(self) -> int:
        return sum(e[3] for e in self._index) + len(self._rows)

    def close(self) -> None:
        """Write the last chunk, the footer and the trailer; rename into place."""
        if self._closed:
            return
        self._flush()
        footer = {
            "chunks": self._index,
            "events": sum(e[3] for e in self._index),
            "first_ts": self._first_ts,
            "last_ts": self._max_ts,
            "kind_counts": sorted(self._kind_counts.items()),
            "cpu_counts": sorted(self._cpu_counts.items()),
        }
        footer_offset = self._offset
        self._write(framing.encode_frame(framing.FOOTER, framing.pack(footer)))
        self._write(framing.TRAILER.pack(footer_offset, framing.END_MAGIC))
        self._closed = True
        if self._tmp is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._path)
            self._tmp = None

    def abort(self) -> None:
        """Drop the output: the temporary file is removed, nothing is renamed."""
        self._closed = True
        if self._tmp is not None:
            self._file.close()
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
