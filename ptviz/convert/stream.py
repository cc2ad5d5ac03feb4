"""Any input ``ptviz convert`` reads, as one stream of event rows, cut and filtered.

Events come in :class:`Batch` es (a chunk of a msgpack trace, a few thousand
lines of JSON Lines): rows as the trace reader makes them, ``(kind_id, dts, cpu,
pid, *fields)`` with fields in the stream's kind table order, their absolute
times, and the comm of each pid. Memory stays bounded by a batch whatever the
trace's length; CPU, kind and time terms are applied to a chunk's columns before
any row is made. ftrace text and
trace.dat are imported first, into a temporary msgpack trace beside nothing the
user owns (the system's temporary directory), removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from replayer.errors import UsageError
from replayer.units import parse_time
from replayer.vocab import N_COMMON, KindTable



class Batch:
    """``rows`` (``(kind_id, dts, cpu, pid, *fields)``), ``stamps`` (their absolute
    times) and ``comms`` (pid → comm, for every row of the batch)."""

    __slots__ = ("rows", "stamps", "comms")

    def __init__(self, rows, stamps, comms: dict) -> None:
        self.rows, self.stamps, self.comms = rows, stamps, comms

    def __len__(self) -> int:
        return len(self.rows)

    def writer_rows(self) -> list[tuple]:
        """``(ts, kind, cpu, pid, fields, comm)`` each, as :meth:`TraceWriter.add_many`
        takes them."""
        get = self.comms.get
        return [(ts, r[0], r[2], r[3], r[4:], get(r[3])) for r, ts in zip(self.rows, self.stamps)]


@dataclass
class Selection:
    """What to keep: a window (``+T`` is relative to the trace's first event) and
    ``cpu=``/``kind=``/``mm=``/``pid=`` terms in the filter syntax of ``ptviz events``."""

    since: str | None = None
    until: str | None = None
    terms: str = ""

    @property
    def everything(self) -> bool:
        return self.since is None and self.until is None and not self.terms.strip()


def _moment(text: str | None, start: int | None, flag: str) -> int | None:
    if text is None:
        return None
    if text.startswith("+"):
        return (start or 0) + parse_time(text[1:], flag)
    return parse_time(text, flag)


class Stream:
    """A source's header (without format, version and kinds), kind table, notes,
    event count (for progress; the source's, before filtering) and row batches."""

    def __init__(self, header: dict[str, Any], kinds: KindTable, notes: list[str],
                 total: int, first_ts: int | None,
                 batches: Callable[["_Columns"], Iterator[Batch]]) -> None:
        self.header, self.kinds, self.notes = header, kinds, notes
        self.total, self.first_ts = total, first_ts
        self._batches = batches
        self.kept = 0
        #: The :class:`TraceReader` underneath, when there is one (a replay needs it).
        self.reader = None

    def rows(self, selection: Selection) -> Iterator[Batch]:
        """The batches, each cut to the window and filtered (empty ones skipped)."""
        from replayer.filters import parse_filter
        t0 = _moment(selection.since, self.first_ts, "--since")
        t1 = _moment(selection.until, self.first_ts, "--until")
        if t0 is not None and t1 is not None and t1 < t0:
            raise UsageError(f"--until {selection.until} is before --since {selection.since}")
        flt = parse_filter(selection.terms, [k.name for k in self.kinds])
        if flt.words or flt.pfns is not None:
            raise UsageError("convert filters take cpu=, kind=, mm= and pid= terms")
        columns = _Columns(flt, self.kinds, t0, t1)
        keep = _row_test(flt, self.kinds)
        for batch in self._batches(columns):
            if keep is not None:
                kept = [(r, ts) for r, ts in zip(batch.rows, batch.stamps) if keep(r)]
                batch = Batch([r for r, _ in kept], [ts for _, ts in kept], batch.comms)
            if len(batch):
                self.kept += len(batch)
                yield batch


class _Columns:
    """The window and the CPU and kind terms, as a mask over a chunk's columns."""

    def __init__(self, flt, kinds: KindTable, t0: int | None, t1: int | None) -> None:
        self.t0, self.t1 = t0, t1
        self.cpus = None if flt.cpus is None else np.array(sorted(flt.cpus), np.int64)
        self.kinds = None if flt.kinds is None else np.array(
            [s.id for s in kinds if s.name in flt.kinds], np.int64)

    @property
    def everything(self) -> bool:
        return self.t0 is None and self.t1 is None and self.cpus is None and self.kinds is None

    def mask(self, kinds: np.ndarray, cpus: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        keep = np.ones(len(kinds), bool)
        if self.t0 is not None:
            keep &= stamps >= self.t0
        if self.t1 is not None:
            keep &= stamps <= self.t1
        if self.cpus is not None:
            keep &= np.isin(cpus, self.cpus)
        if self.kinds is not None:
            keep &= np.isin(kinds, self.kinds)
        return keep

    def rows(self, rows: list, stamps: list) -> tuple[list, list]:
        """The same for rows made already (JSON Lines)."""
        if self.everything or not rows:
            return rows, stamps
        keep = self.mask(np.array([r[0] for r in rows]), np.array([r[2] for r in rows]),
                         np.array(stamps, np.int64))
        at = np.flatnonzero(keep).tolist()
        return [rows[i] for i in at], [stamps[i] for i in at]


def _row_test(flt, kinds: KindTable) -> Callable[[tuple], bool] | None:
    """The pid and mm terms, as one predicate on a row; None when there are none."""
    tests: list[Callable[[tuple], bool]] = []
    if flt.pids is not None:
        tests.append(lambda r, s=flt.pids: r[3] in s)
    if flt.mms is not None:
        at = {s.id: N_COMMON + s.fields.index("mm") for s in kinds if "mm" in s.fields}
        tests.append(lambda r, s=flt.mms: r[0] in at and r[at[r[0]]] in s)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda r: all(t(r) for t in tests)


def from_reader(reader) -> Stream:
    """A ptviz msgpack trace (a :class:`TraceReader`), chunk by chunk."""
    header = {k: v for k, v in reader.header.items() if k not in ("format", "version", "kinds")}
    span = reader.time_span

    def batches(columns: _Columns) -> Iterator[Batch]:
        for c in reader.chunk_span(columns.t0, columns.t1):
            chunk = reader.read_chunk(c)
            stamps = chunk.timestamps()
            if columns.everything:
                yield Batch(chunk.rows, stamps, chunk.comms)
                continue
            at = np.flatnonzero(columns.mask(chunk.kinds, chunk.cpus,
                                             np.frombuffer(stamps, np.int64)))
            if len(at):
                yield Batch(chunk.rows_at(at), [stamps[i] for i in at.tolist()], chunk.comms)
    stream = Stream(header, reader.kinds, list(reader.notes), reader.event_count,
                    span[0] if span else None, batches)
    stream.reader = reader
    return stream


@contextlib.contextmanager
def open_stream(path: str, fmt: str, import_header: dict[str, Any] | None = None,
                on_import: Callable[[dict], None] | None = None) -> Iterator[Stream]:
    """The :class:`Stream` of ``path`` in format ``fmt`` (a name of
    :mod:`.formats`). ftrace text and trace.dat are imported with ``import_header``
    first (``on_import`` gets the import's statistics)."""
    from replayer.traceio import TraceReader
    if fmt == "msgpack":
        with TraceReader(path) as reader:
            yield from_reader(reader)
        return
    if fmt == "jsonl":
        from .jsonl import read_jsonl
        with read_jsonl(path) as stream:
            yield stream
        return
    from ..ftrace.importer import import_file
    with tempfile.TemporaryDirectory(prefix="ptviz-convert-") as tmp:
        imported = os.path.join(tmp, "imported.msgpack")
        stats = import_file(path, imported, dict(import_header or {}))
        if on_import is not None:
            on_import(stats)
        with TraceReader(imported, name=path) as reader:
            yield from_reader(reader)
