"""The replay: one pass over a trace, then fast answers about any instant.

    with Replay.load("trace.msgpack") as replay:
        replay.state_at(t)                  # ReplayState at t: one restore + a short fold
        replay.buckets({0, 1}, t0, t1, 200) # per-CPU event counts per bucket and class
        replay.counter("page_table_bytes", t0, t1, 200)
        replay.next_event(t, {cls}, cpus)   # the next TLB flush on CPU 3
        replay.rows(i0, i1), replay.index_at(t), replay.tables(state)
        replay.table_history(pfn, generation)

A UI opens first and loads in a worker thread (:meth:`Replay.open`, then
:meth:`Replay.run`): every query answers for the part loaded so far, so a first
frame can be drawn before the load ends. Queries from several threads are
correct: each thread that seeks makes its own :meth:`cursor`.

The public API the UI and the reports use; nothing here imports a UI.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable

from .cursor import Cursor
from .errors import BadInput, Cancelled
from .fold import ArchSizes, Folder
from .end_checks import IPI_ANSWER_NS, end_checks
from .losses import LostWindows
from .rows import RowQueries
from .series import SeriesSet
from .state import CLASSES, Finding, ReplayState, TableLog
from .tables import TableArrays, table_arrays
from .timeline import Timeline
from .traceio import TraceReader
from .traceio.chunk import GROUP_EVENTS, Chunk, merge_chunks

#: Events between checkpoints, at least; more when the state is large (3 per entry),
#: so that a restore (O(state)) and the replay after it stay in proportion, and the
#: checkpoints' memory stays O(events).
CHECKPOINT_EVENTS = 16384
#: Tail allowed for a detached table to be freed before it counts as lost, when
#: the trace has no grace-period events to measure one (RCU frees of page tables
#: were seen 15–30 ms after the detach on real kernels).
DEFAULT_GP_TAIL_NS = 100_000_000
#: Decoded chunks kept for queries (a chunk of 4096 rows is about 1 MB).
CHUNK_CACHE = 16

Progress = Callable[[int, int], None]  # (events done, events total)


def _expected_counts(reader: TraceReader) -> tuple[dict[str, int], dict[int, int]]:
    """Events per kind name and per CPU as the footer says, to size the table log and
    the timeline's buffers; a footer claiming more events than the file has bytes is
    not believed (an event takes a byte at least)."""
    if not reader.has_footer:
        return {}, {}
    by_kind, by_cpu = reader.counts()
    if sum(by_cpu.values()) > reader.size:
        return {}, {}
    return by_kind, by_cpu


class Checkpoint:
    __slots__ = ("index", "chunk", "max_ts", "state")

    def __init__(self, index: int, chunk: int, max_ts: int, state: ReplayState) -> None:
        self.index, self.chunk, self.max_ts, self.state = index, chunk, max_ts, state


class Replay(RowQueries):
    """A replayed trace. Build with :meth:`load` (or :meth:`open`, then :meth:`run`
    in a worker); then query. A context manager: leaving it closes the trace.

    Memory: the per-CPU columns (15 bytes per event), the table log (144 bytes
    per table page), counter series, and the checkpoints (each O(live state)).
    Decoded rows are not kept beyond a small cache: :meth:`events` re-reads.
    """

    def __init__(self, reader: TraceReader, checkpoint_events: int = CHECKPOINT_EVENTS,
                 reference: bool = False) -> None:
        self.reader = reader
        self.header = reader.header
        self.path = reader.path
        self.sizes = ArchSizes(reader.header.get("arch"))
        by_kind, by_cpu = _expected_counts(reader)
        # A table per allocation: a log made that size at once copies nothing as it
        # fills, and keeps no spare room.
        self.log = TableLog(by_kind.get("table_alloc", 0))
        self.series = SeriesSet()
        self.timeline = Timeline(by_cpu)
        self.checkpoints: list[Checkpoint] = []
        self._cp_max_ts: list[int] = []
        self._chunk_first_index: list[int] = []
        self._chunk_prefix_max: list[int] = []
        #: ``reference``: fold every row (the per-event fold the fast path is tested
        #: against); else rows that provably change nothing are skipped.
        self.folder = Folder(self.sizes, ReplayState(), self.log, self.series, recording=True,
                             fast=not reference)
        self.checkpoint_events = checkpoint_events
        #: Events and chunks whose fold is complete (what queries may use meanwhile).
        self.loaded_events = 0
        self.loaded_chunks = 0
        #: True once :meth:`run` finished: totals, findings and ``final`` are whole.
        self.loaded = False
        self._failed: BaseException | None = None
        self.event_count = 0
        #: Findings set aside because a hole in the trace may hide what clears them.
        self.suppressed: dict[str, int] = {}
        self.lost_windows: LostWindows | None = None
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._chunks_lock = threading.Lock()
        self._cursor = Cursor(self)
        self._cursor_lock = threading.Lock()
        # The empty state, before the first event: queries have somewhere to start
        # even before the load does.
        self._checkpoint(0, 0, -(1 << 63))

    @classmethod
    def open(cls, source: str | os.PathLike | TraceReader,
             checkpoint_events: int = CHECKPOINT_EVENTS, reference: bool = False) -> "Replay":
        """A replay of ``source`` with nothing loaded yet: call :meth:`run`."""
        reader = source if isinstance(source, TraceReader) else TraceReader(source)
        return cls(reader, checkpoint_events, reference)

    @classmethod
    def load(cls, source: str | os.PathLike | TraceReader, progress: Progress | None = None,
             cancelled: Callable[[], bool] | None = None,
             checkpoint_events: int = CHECKPOINT_EVENTS, reference: bool = False
             ) -> "Replay":
        """Open and replay the whole trace once: O(events). ``progress`` is called per
        chunk; ``cancelled`` too, and :class:`Cancelled` is raised when it says so.
        ``reference``: visit every row (slower; what the fast fold is tested against)."""
        replay = cls.open(source, checkpoint_events, reference)
        try:
            replay.run(progress, cancelled)
        except BaseException:
            if not isinstance(source, TraceReader):
                replay.close()
            raise
        return replay

    def run(self, progress: Progress | None = None,
            cancelled: Callable[[], bool] | None = None) -> None:
        """Fold every chunk, then the end-of-trace checks. Safe to call in a worker
        thread while other threads query. Raises :class:`Cancelled`; a call after that
        goes on where it stopped, one after the load does nothing."""
        if self.loaded:
            return
        if self._failed is not None:     # stopped inside a group: going on would redo it
            raise RuntimeError("this replay failed loading; open it again") from self._failed
        # Row tuples never form cycles; pausing the collector saves ~10% of a load.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._run(progress, cancelled)
        except Cancelled:
            raise                   # between groups: the state is whole
        except BaseException as exc:
            self._failed = exc
            raise
        finally:
            if was_enabled:
                gc.enable()

    def _run(self, progress: Progress | None, cancelled: Callable[[], bool] | None) -> None:
        reader, folder, timeline = self.reader, self.folder, self.timeline
        total = reader.event_count
        # Where the last run stopped (Cancelled, between groups), or the start.
        c, index = self.loaded_chunks, self.loaded_events
        max_ts = self._chunk_prefix_max[-1] if self._chunk_prefix_max else -(1 << 63)
        since = index - self.checkpoints[-1].index
        n_chunks = len(reader.chunks)
        while c < n_chunks:
            # Chunks are read once (not through the cache) and folded a group at a time.
            # The reader has checked every field's type and range: an exception from
            # here on is a bug in ptviz, and keeps its traceback.
            # The reference fold takes one chunk at a time, as a seek did before groups.
            parts = [reader.read_chunk(c)]
            size = len(parts[0])
            # After a group folded almost all in bulk, the next is four times as long
            # (numpy's cost is per call), and so is the spacing of checkpoints: a seek
            # from one folds in bulk too. Rows visited one by one keep seeks short.
            wide = 4 if folder.fast and folder.regular else 1
            spacing = max(wide * self.checkpoint_events, 3 * folder.state.size())
            group = wide * GROUP_EVENTS if folder.fast else 0
            while c + len(parts) < n_chunks and size < min(group, spacing - since):
                parts.append(reader.read_chunk(c + len(parts)))
                size += len(parts[-1])
            chunk = merge_chunks(parts)
            stamps = chunk.timestamps()
            # The reference fold visits every row, made the v1 way.
            folder.fold(chunk if folder.fast else chunk.rows, stamps, index, chunk.kinds,
                        chunk.cpus)
            timeline.add(stamps, chunk.kinds, chunk.cpus, index, folder.marks)
            folder.marks.clear()
            for part in parts:
                if len(part):
                    # The chunk's index entry holds its range, and the reader checked it.
                    max_ts = max(max_ts, part.info.max_ts)
                    low = part.info.min_ts
                    self.first_ts = low if self.first_ts is None else min(self.first_ts, low)
                self._chunk_first_index.append(index)
                self._chunk_prefix_max.append(max_ts)
                index += len(part)
            since += size
            c += len(parts)
            # Chunks before events: a query reading the events, then the chunks,
            # always finds the chunk that holds its last event.
            self.loaded_chunks = c
            self.loaded_events = index
            # A checkpoint copies the whole state (tables, and every mm and task seen):
            # spaced by its size, checkpoints cost at most ~1/3 entry per event.
            if since >= max(wide * self.checkpoint_events, 3 * folder.state.size()) and \
                    c < n_chunks:
                self._checkpoint(index, c, max_ts)
                since = 0
            if progress is not None:
                progress(index, total)
            if cancelled is not None and cancelled():
                raise Cancelled("replay cancelled")
        self.event_count = index
        self.last_ts = max_ts if index else None
        timeline.finish()
        self.series.compact()
        folder.release_series()
        end_checks(self)
        self.loaded = True

    #: An IPI not answered this long before the end of the trace was never answered.
    IPI_ANSWER_NS = IPI_ANSWER_NS
    def _checkpoint(self, index: int, chunk: int, max_ts: int) -> None:
        # The state first: a reader that finds the time finds the state too.
        self.checkpoints.append(Checkpoint(index, chunk, max_ts, self.folder.state.copy()))
        self._cp_max_ts.append(max_ts)

    def chunk(self, c: int) -> Chunk:
        """Decoded chunk ``c`` from a small LRU cache (thread-safe)."""
        with self._chunks_lock:
            chunk = self._chunks.get(c)
            if chunk is not None:
                self._chunks.move_to_end(c)
                return chunk
        chunk = self.reader.read_chunk(c)
        chunk.timestamps()
        with self._chunks_lock:
            self._chunks[c] = chunk
            while len(self._chunks) > CHUNK_CACHE:
                self._chunks.popitem(last=False)
        return chunk

    # -- the final result ----------------------------------------------------
    @property
    def final(self) -> ReplayState:
        """The state after the last event (do not mutate; whole once ``loaded``)."""
        return self.folder.state

    @property
    def findings(self) -> list[Finding]:
        """Every finding, in time order (once ``loaded``)."""
        return list(self.folder.findings)

    def findings_between(self, t0: int, t1: int) -> list[Finding]:
        """Findings with ``t0 <= ts <= t1``: O(log n + k)."""
        return list(self.folder.findings.irange_key((t0,), (t1, (1 << 63,))))

    @property
    def markers(self) -> list[dict[str, Any]]:
        """Markers in trace order: ``ts``, ``cpu``, ``pid``, ``text``, ``mm`` of the
        writing task when known, ``vmpte_bytes`` of that mm then, ``index``."""
        return self.folder.markers

    @property
    def syncs(self) -> list[tuple[int, str, int, int, int]]:
        """Walker syncs: ``(cpu, method, begin_ts, end_ts, targets)``."""
        return self.folder.syncs

    @property
    def warnings(self) -> list[str]:
        return self.reader.warnings

    @property
    def cpus(self) -> list[int]:
        return sorted(self.timeline.cpus)

    @property
    def has_gp_events(self) -> bool:
        """Whether the trace has grace-period events (ftrace without rcu:* has none)."""
        return self.folder.gp_ends_seen > 0

    @property
    def has_ipi_events(self) -> bool:
        """Whether IPI handling is traced at all (else no IPI can be called unanswered)."""
        return bool(self.final.ipis_received)

    @property
    def gp_tail_ns(self) -> int:
        """How long a detached table may wait for its free before it counts as lost."""
        durations = self.folder.gp_durations
        return max(durations) if durations else DEFAULT_GP_TAIL_NS

    # -- seeking -------------------------------------------------------------
    def cursor(self) -> Cursor:
        """A private :class:`Cursor` for one thread's ``state_at`` queries."""
        return Cursor(self)

    def state_at(self, t: int) -> ReplayState:
        """The state after every event up to time ``t``: see :meth:`Cursor.state_at`.
        Thread-safe (one shared cursor behind a lock); a thread that seeks a lot
        should make its own :meth:`cursor`."""
        with self._cursor_lock:
            return self._cursor.state_at(t)

    def tables(self, state: ReplayState | None = None, cls: str | None = None,
               mm: int | None = None) -> TableArrays:
        """PTE table pages as columns, classified as at ``state`` (the end by default),
        optionally only one class name and one mm. O(tables)."""
        tables = table_arrays(self, state if state is not None else self.final,
                              self.last_ts)
        if cls is not None:
            if cls not in CLASSES:
                raise BadInput(f"unknown table class {cls!r}; known: {', '.join(CLASSES)}")
            tables = tables.where(tables.cls == CLASSES.index(cls))
        if mm is not None:
            tables = tables.where(tables.mm == mm)
        return tables

    # -- queries for the UI ----------------------------------------------------
    def buckets(self, cpus: Iterable[int], t0: int, t1: int, n: int):
        """``{cpu: array[n, len(TIMELINE_CLASSES)]}`` event counts over ``[t0, t1)``."""
        return self.timeline.buckets(cpus, t0, t1, n)

    def bucket_events(self, cpu: int, t0: int, t1: int):
        """Global indexes of ``cpu``'s events in ``[t0, t1)``, in time order."""
        return self.timeline.bucket_events(cpu, t0, t1)

    def next_event(self, t: int, classes: Iterable[int], cpus: Iterable[int],
                   forward: bool = True, index: int | None = None
                   ) -> tuple[int, int, int] | None:
        """``(ts, index, cpu)`` of the nearest event after ``t`` (before, backwards)
        of one of ``classes`` (timeline class indexes) on one of ``cpus``; with
        ``index``, after (before) the event ``(t, index)`` — how to step through
        events that share a time."""
        return self.timeline.next_event(t, classes, cpus, forward, index)

    def counter(self, name: str, t0: int, t1: int, n: int) -> list[int]:
        """A counter sampled into ``n`` buckets (max per bucket; IPIs as counts).

        Names: ``page_table_bytes`` (PageTables), ``empty_attached``, ``rcu_pending``,
        ``ipis``, ``vmpte_bytes:0x<mm>`` (one mm's VmPTE). Unknown names raise
        :class:`BadInput`.
        """
        series = self.series.get(name)
        if series is None:
            raise BadInput(f"unknown counter {name!r}; known: {', '.join(self.series.names())}")
        return series.sample(t0, t1, n)

    def table_history(self, pfn: int, generation: int = 0) -> list[dict[str, Any]]:
        """The steps of one table page's life, each with its time and event index."""
        tid = self.log.find(pfn, generation)
        if tid is None:
            raise KeyError(f"no table {pfn:#x} generation {generation}")
        rec = self.log.record(tid)
        steps = [{"step": "alloc", "ts": rec["alloc_ts"], "index": rec["alloc_idx"],
                  "detail": f"level {rec['level']} at {rec['addr']:#x}"}]
        for step, detail in (("detach", rec["detach_cause"]), ("queue", rec["via"]),
                             ("rcu", None), ("free", rec["free_path"])):
            if rec[f"{step}_idx"] >= 0:
                steps.append({"step": step, "ts": rec[f"{step}_ts"],
                              "index": rec[f"{step}_idx"], "detail": detail})
        return steps

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "Replay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
