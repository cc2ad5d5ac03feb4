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
from operator import itemgetter
from typing import Any, Callable, Iterator

import numpy as np

from replayer.errors import UsageError
from replayer.vocab import N_COMMON, KindTable



class Batch:
    """``rows`` (``(kind_id, dts, cpu, pid, *fields)``), ``stamps`` (their absolute
    times), ``comms`` (pid → comm, for every row of the batch) and ``indexes`` (each
    row's index in the whole trace, as ``ptviz events`` numbers them). ``chunk``: the
    whole chunk the batch is, when it came whole from a msgpack trace; its rows are
    then made on first use only, so a writer that reads the chunk's columns
    (:mod:`.jsonl_columns`) never makes them."""

    __slots__ = ("_rows", "stamps", "comms", "indexes", "_columns", "chunk")

    def __init__(self, rows, stamps, comms: dict, indexes, columns=None, chunk=None) -> None:
        self._rows, self.stamps, self.comms, self.indexes = rows, stamps, comms, indexes
        self._columns = columns
        self.chunk = chunk

    @property
    def rows(self):
        if self._rows is None:
            self._rows = self.chunk.rows
        return self._rows

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows' kinds and CPUs as arrays (a chunk's own, when it came whole)."""
        if self._columns is None:
            rows = self.rows
            self._columns = (np.fromiter(map(itemgetter(0), rows), np.int64, len(rows)),
                             np.fromiter(map(itemgetter(2), rows), np.int64, len(rows)))
        return self._columns

    def __len__(self) -> int:
        return len(self.stamps)

    def writer_rows(self) -> list[tuple]:
        """``(ts, kind, cpu, pid, fields, comm)`` each, as :meth:`TraceWriter.add_many`
        takes them."""
        get = self.comms.get
        return [(ts, r[0], r[2], r[3], r[4:], get(r[3])) for r, ts in zip(self.rows, self.stamps)]

    def only(self, keep: np.ndarray) -> "Batch":
        """The rows where ``keep`` holds."""
        at = np.flatnonzero(keep).tolist()
        rows, stamps, indexes = self.rows, self.stamps, self.indexes
        return Batch([rows[i] for i in at], [stamps[i] for i in at], self.comms,
                     [indexes[i] for i in at])


@dataclass
class Selection:
    """What to keep: a window (``+T`` is relative to the trace's first event) and
    ``cpu=``/``kind=``/``mm=``/``pid=`` terms in the filter syntax of ``ptviz events``."""

    since: str | None = None
    until: str | None = None
    terms: str = ""
    #: The window as absolute ns, once the times are resolved against the trace
    #: (``ptviz.cli.moments``: ``+T`` and ``marker:TEXT`` need it).
    t0: int | None = None
    t1: int | None = None

    @property
    def everything(self) -> bool:
        return self.since is None and self.until is None and not self.terms.strip()


class Stream:
    """A source's header (without format, version and kinds), kind table, notes,
    event count (for progress; the source's, before filtering) and row batches."""

    def __init__(self, header: dict[str, Any], kinds: KindTable, notes: list[str],
                 total: int, first_ts: int | None,
                 batches: Callable[["_Columns"], Iterator[Batch]]) -> None:
        self.header, self.kinds, self.notes = header, kinds, notes
        self.total, self.first_ts = total, first_ts
        self._batches = batches
        self.last_ts: int | None = None
        #: The :class:`TraceReader` underneath, when there is one (a replay needs it).
        self.reader = None
        #: Whether the source filters by a chunk's columns (msgpack) before making rows.
        self.columnar = False

    def markers(self) -> list[tuple[int, str]]:
        """``(ts, text)`` of every marker, in trace order (a pass over the trace)."""
        marker = self.kinds.get("marker").id
        out = []
        for batch in self._batches(_Columns(None, self.kinds, None, None)):
            out += [(ts, r[N_COMMON]) for r, ts in zip(batch.rows, batch.stamps)
                    if r[0] == marker]
        return out

    def resolve(self, selection: Selection):
        """``(columns, filter)``: the window (``columns.t0``/``t1``, absolute ns or
        None) and the terms (a :class:`replayer.filters.EventFilter`)."""
        from replayer.filters import parse_filter
        t0, t1 = selection.t0, selection.t1
        if t0 is not None and t1 is not None and t1 < t0:
            raise UsageError(f"--until {selection.until} is before --since {selection.since}")
        flt = parse_filter(selection.terms, [k.name for k in self.kinds])
        if flt.words or flt.pfns is not None:
            raise UsageError("convert filters take cpu=, kind=, mm= and pid= terms")
        return _Columns(flt, self.kinds, t0, t1), flt

    def marked(self, selection: Selection) -> Iterator[tuple[Batch, np.ndarray]]:
        """Every batch from the trace's start to the window's end, each with which of
        its rows the window and terms keep: for writers that need the state before
        the window (Chrome JSON's counters) and for ``mm=`` (a table's queue and free
        carry no mm: its allocation decides, wherever it lies)."""
        columns, flt = self.resolve(selection)
        lives = _Lives(flt.mms, self.kinds) if flt.mms is not None else None
        pids = flt.pids
        for batch in self._batches(_Columns(None, self.kinds, None, columns.t1)):
            keep = columns.mask(*batch.columns(), np.asarray(batch.stamps, np.int64))
            if pids is not None:          # rows made only for these terms
                keep &= _pid_mask(batch.rows, pids)
            if lives is not None:
                rows = batch.rows
                keep &= np.fromiter(map(lives.passes, rows), bool, len(rows))
            yield batch, keep

    def rows(self, selection: Selection) -> Iterator[Batch]:
        """The batches, cut to the window and filtered (empty ones skipped). CPU, kind
        and time terms on a msgpack trace's columns, before any row is made."""
        columns, flt = self.resolve(selection)
        if flt.mms is not None or not self.columnar:
            for batch, keep in self.marked(selection):
                if keep.all():
                    yield batch
                elif keep.any():
                    yield batch.only(keep)
            return
        pids = flt.pids
        for batch in self._batches(columns):
            if pids is not None:
                batch = batch.only(_pid_mask(batch.rows, pids))
            if len(batch):
                yield batch


def _pid_mask(rows, pids: frozenset) -> np.ndarray:
    """Which rows are of these tasks."""
    return np.fromiter((r[3] in pids for r in rows), bool, len(rows))


class _Lives:
    """``mm=`` on one row at a time, in trace order: events with an mm are kept by it;
    the steps of a table's life without one (queue, RCU, free, a walker's read) by
    whether its allocation was. O(1) per row; memory: the kept mms' live tables."""

    def __init__(self, mms: frozenset, kinds: KindTable) -> None:
        self.mms = mms
        self.pfns: set = set()
        self.mm_at = {s.id: N_COMMON + s.fields.index("mm") for s in kinds if "mm" in s.fields}
        self.pfn_at = {s.id: N_COMMON + s.fields.index("pfn") for s in kinds
                       if "pfn" in s.fields}
        self.alloc, self.free = (kinds.get(n).id for n in ("table_alloc", "table_free"))
        rcu = kinds.get("rcu_queue")
        self.rcu, self.rcu_pfns = rcu.id, N_COMMON + rcu.fields.index("pfns")

    def passes(self, row: tuple) -> bool:
        kind = row[0]
        j = self.mm_at.get(kind)
        mm = row[j] if j is not None else None
        if kind == self.alloc:
            pfn = row[self.pfn_at[kind]]
            if mm in self.mms:
                self.pfns.add(pfn)
                return True
            self.pfns.discard(pfn)
            return False
        if mm is not None:
            return mm in self.mms
        j = self.pfn_at.get(kind)
        if j is not None:
            hit = row[j] in self.pfns
            if kind == self.free:
                self.pfns.discard(row[j])
            return hit
        if kind == self.rcu:
            return any(p in self.pfns for p in row[self.rcu_pfns] or ())
        return False


class _Columns:
    """The window and the CPU and kind terms, as a mask over a chunk's columns."""

    def __init__(self, flt, kinds: KindTable, t0: int | None, t1: int | None) -> None:
        self.t0, self.t1 = t0, t1
        self.cpus = None if flt is None or flt.cpus is None else \
            np.array(sorted(flt.cpus), np.int64)
        self.kinds = None if flt is None or flt.kinds is None else np.array(
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


def from_reader(reader) -> Stream:
    """A ptviz msgpack trace (a :class:`TraceReader`), chunk by chunk."""
    header = {k: v for k, v in reader.header.items() if k not in ("format", "version", "kinds")}
    span = reader.time_span

    first = np.cumsum([0] + [c.count for c in reader.chunks]).tolist()

    def batches(columns: _Columns) -> Iterator[Batch]:
        for c in reader.chunk_span(columns.t0, columns.t1):
            chunk = reader.read_chunk(c)
            stamps = chunk.timestamps()
            if columns.everything:
                yield Batch(None, stamps, chunk.comms, range(first[c], first[c] + len(chunk)),
                            (chunk.kinds, chunk.cpus), chunk)
                continue
            at = np.flatnonzero(columns.mask(chunk.kinds, chunk.cpus,
                                             np.frombuffer(stamps, np.int64)))
            if len(at):
                yield Batch(chunk.rows_at(at), [stamps[i] for i in at.tolist()], chunk.comms,
                            (at + first[c]).tolist())
    stream = Stream(header, reader.kinds, list(reader.notes), reader.event_count,
                    span[0] if span else None, batches)
    stream.reader = reader
    stream.columnar = True
    stream.last_ts = span[1] if span else None
    return stream


@contextlib.contextmanager
def open_stream(path: str, fmt: str, import_header: dict[str, Any] | None = None,
                on_import: Callable[[dict], None] | None = None,
                name: str | None = None) -> Iterator[Stream]:
    """The :class:`Stream` of ``path`` in format ``fmt`` (a name of
    :mod:`.formats`). ftrace text and trace.dat are imported with ``import_header``
    first (``on_import`` gets the import's statistics)."""
    from replayer.traceio import TraceReader
    if fmt == "msgpack":
        with TraceReader(path, name=name or path) as reader:
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
        with TraceReader(imported, name=name or path) as reader:
            yield from_reader(reader)
