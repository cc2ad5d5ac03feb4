"""Streaming writer of ptviz traces (format v2, or v1 on request; see FORMAT.md)."""

from __future__ import annotations

import os
from array import array
from collections import Counter
from itertools import accumulate
from operator import itemgetter
from typing import Any, BinaryIO, Iterable

import numpy as np

from ..vocab import KindTable, N_COMMON
from . import framing
from .atomic import AtomicOutput
from .bulk import ColumnsMixin
from .columns import encode_columns, encode_rows
from .events import Event, event_fields

#: Rows per chunk. v2 reads a chunk's columns at a fixed cost per column, so its chunks
#: are larger; a seek folds a group of chunks from a checkpoint either way.
DEFAULT_CHUNK_EVENTS = 16384
#: v1 reads row by row: its chunks stay as ptviz 0.1 wrote them.
V1_CHUNK_EVENTS = 4096
_MISSING = object()
_kind_of = itemgetter(0)
_cpu_of = itemgetter(2)
_dts_of = itemgetter(1)


class TraceWriter(ColumnsMixin):
    """Write events into chunks as they come; the footer index at :meth:`close`.

    With a path, the file is written under a temporary name in the same
    directory and put in place on a clean close (:class:`.atomic.AtomicOutput`):
    a failure, :meth:`abort` or a signal leaves nothing behind, and an existing
    ``path`` is refused unless ``force`` (a device, FIFO, directory or symbolic
    link always is). With a binary file object the caller owns atomicity.

    ``header`` holds what describes the trace (``source``, ``clock``,
    ``cpus``, ``arch``, ``kernel``, ``workload``, ...); the writer adds
    ``format``, ``version`` and ``kinds``.

    ``version``: 2 (columns, the default) or 1 (one array per event, for readers
    older than ptviz 0.2).

    Memory: one chunk of rows (``chunk_events``; by default 16,384 in v2, 4,096 in v1)
    plus the chunk index.
    """

    def __init__(self, dest: str | os.PathLike | BinaryIO, header: dict[str, Any],
                 kinds: KindTable | None = None,
                 chunk_events: int | None = None, force: bool = False,
                 version: int = framing.VERSION) -> None:
        if version not in framing.VERSIONS:
            raise ValueError(f"format version {version}: this ptviz writes "
                             f"{' or '.join(map(str, framing.VERSIONS))}")
        self.version = version
        self.kinds = kinds if kinds is not None else KindTable()
        self._row_len = {s.id: N_COMMON + len(s.fields) for s in self.kinds}
        if chunk_events is None:
            chunk_events = DEFAULT_CHUNK_EVENTS if version >= 2 else V1_CHUNK_EVENTS
        self._chunk_events = max(1, chunk_events)
        self._output: AtomicOutput | None = None
        if isinstance(dest, (str, os.PathLike)):
            self._output = AtomicOutput(dest, force)
            self._file: BinaryIO = self._output.file
        else:
            self._file = dest
        self._offset = 0
        self._index: list[list[int]] = []
        self._events_flushed = 0
        self._kind_counts: Counter[int] = Counter()
        self._cpu_counts: Counter[int] = Counter()
        # The chunk being filled, as columns: each event's kind, time delta, cpu and
        # pid, and its fields tuple in the list of its kind (a v2 chunk's layout; v1
        # rows are made from them when written).
        self._kinds: list[int] = []
        self._dts: list[int] = []
        self._cpus: list[int] = []
        self._pids: list = []
        self._fields: dict[int, list[tuple]] = {}
        self._comms: dict[Any, str | None] = {}
        # Or, filled by add_columns, the chunk as slices of its columns (bulk.py); one
        # of the two is empty.
        self._pending: list[tuple] = []
        self._pending_n = 0
        self._base_ts = 0
        self._last_ts = 0
        self._first_ts: int | None = None
        self._max_ts: int | None = None
        self._closed = False
        #: One-line notes a producer learnt while writing (an importer's inferences),
        #: kept in the footer: readers show them beside the report.
        self.notes: list[str] = []
        full = {k: v for k, v in header.items() if k not in ("format", "version", "kinds")}
        full = {"format": framing.FORMAT_NAME, "version": version, **full,
                "kinds": self.kinds.to_header()}
        try:
            self._write(framing.PREAMBLE.pack(framing.MAGIC, version))
            self._write(framing.encode_frame(framing.HEADER, framing.pack(full)))
        except BaseException:
            self.abort()
            raise

    # -- adding events -----------------------------------------------------
    def add(self, ts: int, kind: int, cpu: int, pid: int | None, fields: tuple,
            comm: str | None = None) -> None:
        """Append one event. ``fields`` are positional, in the kind table's order.

        Amortised O(1); a full chunk is packed and written here.
        """
        if len(fields) + N_COMMON != self._row_len.get(kind, -1):
            raise ValueError(f"kind {kind}: expected {self._row_len.get(kind, 0) - N_COMMON} "
                             f"fields, got {len(fields)}")
        if self._pending:
            self._unpend()
        kinds = self._kinds
        if not kinds:
            self._base_ts = self._last_ts = ts
        seen = self._comms.get(pid, _MISSING)
        if seen is _MISSING:
            self._comms[pid] = comm
        elif seen != comm:
            # A pid's comm is per chunk; a change (exec, or a late name) starts a new one.
            self._flush()
            self._base_ts = self._last_ts = ts
            self._comms[pid] = comm
            kinds = self._kinds
        kinds.append(kind)
        self._dts.append(ts - self._last_ts)
        self._cpus.append(cpu)
        self._pids.append(pid)
        per = self._fields.get(kind)
        if per is None:
            per = self._fields[kind] = []
        per.append(fields)
        self._last_ts = ts
        if len(kinds) >= self._chunk_events:
            self._flush()

    def add_many(self, events: Iterable[tuple]) -> None:
        """:meth:`add` for each ``(ts, kind, cpu, pid, fields, comm)`` of ``events``:
        the same checks and chunking, without a call per event (a simulator writes
        millions). O(n)."""
        row_len, chunk_events = self._row_len, self._chunk_events
        if self._pending:
            self._unpend()
        last = self._last_ts

        def bind():
            return (self._kinds, self._kinds.append, self._dts.append, self._cpus.append,
                    self._pids.append, self._fields, self._comms)
        kinds, add_kind, add_dt, add_cpu, add_pid, fields_of, comms = bind()
        try:
            for ts, kind, cpu, pid, fields, comm in events:
                if len(fields) + N_COMMON != row_len.get(kind, -1):
                    self._last_ts = last
                    self.add(ts, kind, cpu, pid, fields, comm)   # raises the one message
                if not kinds:
                    self._base_ts = last = ts
                seen = comms.get(pid, _MISSING)
                if seen is not comm and seen != comm:
                    if seen is _MISSING:
                        comms[pid] = comm
                    else:
                        self._flush()
                        kinds, add_kind, add_dt, add_cpu, add_pid, fields_of, comms = bind()
                        self._base_ts = last = ts
                        comms[pid] = comm
                add_kind(kind)
                add_dt(ts - last)
                add_cpu(cpu)
                add_pid(pid)
                per = fields_of.get(kind)
                if per is None:
                    per = fields_of[kind] = []
                per.append(fields)
                last = ts
                if len(kinds) >= chunk_events:
                    self._last_ts = last
                    self._flush()
                    kinds, add_kind, add_dt, add_cpu, add_pid, fields_of, comms = bind()
        finally:
            self._last_ts = last     # also when ``events`` raised

    def end_chunk(self) -> None:
        """Write the events added so far as a chunk now (a copy keeps its source's
        chunk boundaries this way)."""
        self._flush()

    def add_event(self, event: Event) -> None:
        """Append an :class:`Event` by name (slow path for tools and tests)."""
        kind, fields = event_fields(event, self.kinds)
        self.add(event.ts, kind, event.cpu, event.pid, fields, event.comm)

    # -- output ------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            if self._output is None:
                raise
            raise self._output.error(exc) from None
        self._offset += len(data)

    def _flush(self) -> None:
        if self._pending:
            self._write_pending()
            return
        kinds = self._kinds
        if not kinds:
            return
        comms = [x for pid, comm in self._comms.items() if comm is not None for x in (pid, comm)]
        dts, cpus, pids, fields = self._dts, self._cpus, self._pids, self._fields
        self._kinds, self._dts, self._cpus, self._pids, self._fields = [], [], [], [], {}
        self._comms = {}
        if self.version >= 2 and self._write_columns(kinds, dts, cpus, pids, fields, comms):
            return
        rows_of = {kind: iter(rows) for kind, rows in fields.items()}
        self._write_chunk(self._base_ts, [(k, d, c, p, *next(rows_of[k]))
                                          for k, d, c, p in zip(kinds, dts, cpus, pids)],
                          comms)

    def _write_columns(self, kinds: list, dts: list, cpus: list, pids: list,
                       fields: dict[int, list[tuple]], comms: list) -> bool:
        """The chunk as a v2 frame straight from the column buffers; False when it is
        over the frame limit (the caller then splits it as rows)."""
        try:
            stamps = np.cumsum(np.frombuffer(array("q", dts), np.int64)) + self._base_ts
        except (OverflowError, TypeError):
            return False        # not int64: written as rows, and the reader says why
        lo, hi = int(stamps.min()), int(stamps.max())
        body = encode_columns(kinds, dts, cpus, pids, fields)
        payload = framing.pack([self._base_ts, lo, hi, len(kinds), comms, body])
        if len(payload) > framing.MAX_FRAME[framing.CHUNK]:
            return False
        self._append_chunk(payload, lo, hi, len(kinds), Counter(kinds), Counter(cpus))
        return True

    def _write_chunk(self, base_ts: int, rows: list[tuple], comms: list) -> None:
        """One chunk frame; rows too large for one frame (long text fields) are split
        in halves until each fits, the second half rebased on its first row."""
        stamps = list(accumulate(map(_dts_of, rows), initial=base_ts))[1:]
        lo, hi = min(stamps), max(stamps)
        body = encode_rows(rows) if self.version >= 2 else rows
        payload = framing.pack([base_ts, lo, hi, len(rows), comms, body])
        if len(payload) > framing.MAX_FRAME[framing.CHUNK]:
            if len(rows) == 1:
                raise ValueError(f"an event of {len(payload)} bytes is over the format's "
                                 f"chunk limit of {framing.MAX_FRAME[framing.CHUNK]}")
            half = len(rows) // 2
            first = rows[half]
            self._write_chunk(base_ts, rows[:half], comms)
            self._write_chunk(stamps[half], [(first[0], 0, *first[2:])] + rows[half + 1:], comms)
            return
        self._append_chunk(payload, lo, hi, len(rows), Counter(map(_kind_of, rows)),
                           Counter(map(_cpu_of, rows)))

    def _append_chunk(self, payload: bytes, lo: int, hi: int, n: int, kind_counts: dict,
                      cpu_counts: dict) -> None:
        self._index.append([self._offset, lo, hi, n])
        self._events_flushed += n
        self._write(framing.encode_frame(framing.CHUNK, payload))
        self._kind_counts.update(kind_counts)
        self._cpu_counts.update(cpu_counts)
        self._first_ts = lo if self._first_ts is None else min(lo, self._first_ts)
        self._max_ts = hi if self._max_ts is None else max(hi, self._max_ts)

    @property
    def events_written(self) -> int:
        """Events added so far (the chunk being filled among them). O(1)."""
        return self._events_flushed + len(self._kinds) + self._pending_n

    @property
    def events_buffered(self) -> int:
        """Events added but not yet written (the chunk being filled)."""
        return len(self._kinds) + self._pending_n

    @property
    def bytes_written(self) -> int:
        """Bytes in the output so far (the chunk being filled not yet among them)."""
        return self._offset

    def close(self) -> None:
        """Write the last chunk, the footer and the trailer; put the file in place.
        On any failure the output is dropped (see :meth:`abort`)."""
        if self._closed:
            return
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._output is not None:
            self._output.commit()

    def _finish(self) -> None:
        self._flush()
        footer = {
            "chunks": self._index,
            "events": sum(e[3] for e in self._index),
            "first_ts": self._first_ts,
            "last_ts": self._max_ts,
            "kind_counts": sorted(self._kind_counts.items()),
            "cpu_counts": sorted(self._cpu_counts.items()),
        }
        if self.notes:
            footer["notes"] = [str(n) for n in self.notes]
        footer_offset = self._offset
        self._write(framing.encode_frame(framing.FOOTER, framing.pack(footer)))
        self._write(framing.TRAILER.pack(footer_offset, framing.END_MAGIC))

    def abort(self) -> None:
        """Drop the output: the temporary file is removed, nothing is renamed."""
        self._closed = True
        if self._output is not None:
            self._output.abort()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
