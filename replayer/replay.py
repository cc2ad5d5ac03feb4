"""The replay: one pass over a trace, then fast answers about any instant.

    replay = Replay.load("trace.msgpack")
    replay.state_at(t)                  # ReplayState at t: one restore + a short fold
    replay.buckets({0, 1}, t0, t1, 200) # per-CPU event counts per bucket and class
    replay.counter("table_bytes", t0, t1, 200)
    replay.events(t0, t1, cpus={1}, kinds={"table_free"})
    replay.table_history(pfn, generation)

The public API the UI and the reports use; nothing here imports a UI.
"""

from __future__ import annotations

import gc
import os
from bisect import bisect_right
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from .errors import BadInput
from .fold import ArchSizes, Folder
from .losses import LostWindows
from .series import SeriesSet
from .state import Finding, ReplayState, TableLog
from .timeline import Timeline
from .traceio import Event, TraceReader
from .traceio.events import row_to_event

#: Events between checkpoints, at least; more when the live state is large, so
#: that a restore (O(live state)) and the replay after it stay in proportion.
CHECKPOINT_EVENTS = 8192
#: Tail allowed for a detached table to be freed before it counts as lost, when
#: the trace has no grace-period events to measure one (RCU frees of page tables
#: were seen 15–30 ms after the detach on real kernels).
DEFAULT_GP_TAIL_NS = 100_000_000

Progress = Callable[[int, int], None]  # (events done, events total)


class Checkpoint:
    __slots__ = ("index", "chunk", "max_ts", "state")

    def __init__(self, index: int, chunk: int, max_ts: int, state: ReplayState) -> None:
        self.index, self.chunk, self.max_ts, self.state = index, chunk, max_ts, state


class Replay:
    """A replayed trace. Build with :meth:`load`; then query.

    Memory: the per-CPU columns (11 bytes per event), the table log (~100 bytes
    per table page), counter series, and the checkpoints (each O(live state)).
    Decoded rows are not kept: :meth:`events` re-reads the chunks it needs.
    """

    def __init__(self, reader: TraceReader) -> None:
        self.reader = reader
        self.header = reader.header
        self.path = reader.path
        self.sizes = ArchSizes(reader.header.get("arch"))
        self.log = TableLog()
        self.series = SeriesSet()
        self.timeline = Timeline()
        self.checkpoints: list[Checkpoint] = []
        self._cp_max_ts: list[int] = []
        self._chunk_first_index: list[int] = []
        self.folder = Folder(self.sizes, ReplayState(), self.log, self.series, recording=True)
        self.event_count = 0
        #: Findings set aside because a hole in the trace may hide what clears them.
        self.suppressed: dict[str, int] = {}
        self.lost_windows: LostWindows | None = None
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._cache: ReplayState | None = None
        self._cache_max_ts = 0

    @classmethod
    def load(cls, source: str | os.PathLike | TraceReader, progress: Progress | None = None,
             cancelled: Callable[[], bool] | None = None,
             checkpoint_events: int = CHECKPOINT_EVENTS) -> "Replay":
        """Replay the whole trace once: O(events). ``progress`` is called per chunk."""
        reader = source if isinstance(source, TraceReader) else TraceReader(source)
        replay = cls(reader)
        # Row tuples never form cycles; pausing the collector saves ~10% of a load.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            replay._run(progress, cancelled, checkpoint_events)
        finally:
            if was_enabled:
                gc.enable()
        return replay

    def _run(self, progress: Progress | None, cancelled: Callable[[], bool] | None,
             checkpoint_events: int) -> None:
        reader, folder, timeline = self.reader, self.folder, self.timeline
        total = reader.event_count
        index = 0
        max_ts = -(1 << 63)
        self._checkpoint(0, 0, max_ts)
        since = 0
        for c in range(len(reader.chunks)):
            chunk = reader.read_chunk(c)
            rows, stamps = chunk.rows, chunk.timestamps()
            self._chunk_first_index.append(index)
            timeline.add(stamps, chunk.kinds, chunk.cpus)
            # The reader has checked every field's type and range: an exception from
            # here on is a bug in ptviz, and keeps its traceback.
            folder.fold(rows, stamps, index, chunk.kinds, chunk.cpus)
            index += len(rows)
            since += len(rows)
            if rows:
                max_ts = max(max_ts, max(stamps))
                if self.first_ts is None:
                    self.first_ts = min(stamps)
                else:
                    self.first_ts = min(self.first_ts, min(stamps))
            live = len(folder.state.tid_of) + len(folder.state.rcu_pending)
            if since >= max(checkpoint_events, 4 * live) and c + 1 < len(reader.chunks):
                self._checkpoint(index, c + 1, max_ts)
                since = 0
            if progress is not None:
                progress(index, total)
            if cancelled is not None and cancelled():
                raise InterruptedError("replay cancelled")
        self.event_count = index
        self.last_ts = max_ts if index else None
        timeline.finish()
        self.series.compact()
        self._end_checks()

    #: An IPI not answered this long before the end of the trace was never answered.
    IPI_ANSWER_NS = 10_000_000

    def _end_checks(self) -> None:
        """Findings only the end of the trace can prove; then those a hole in the
        trace may have caused are set aside (:mod:`.losses`)."""
        findings = self.folder.findings
        if self.has_gp_events:
            for finding in self.folder.early_callbacks:
                findings.add(finding)
        if self.has_ipi_events and self.last_ts is not None:
            for target, pending in sorted(self.final.ipi_inflight.items()):
                for send_ts, reason, sender, index in pending:
                    if self.last_ts - send_ts >= self.IPI_ANSWER_NS:
                        findings.add(Finding(
                            "ipi_unanswered", send_ts, target, None, None,
                            f"{reason} IPI from CPU {sender} to CPU {target} was never "
                            f"handled", (index,), since=send_ts, on_cpu=True))
        self.lost_windows = LostWindows.from_losses(
            self.folder.losses, self.timeline,
            self.last_ts if self.reader.truncated_at is not None else None)
        hidden = [f for f in findings if self.lost_windows.suppresses(f)]
        for finding in hidden:
            findings.remove(finding)
            self.suppressed[finding.kind] = self.suppressed.get(finding.kind, 0) + 1

    def _checkpoint(self, index: int, chunk: int, max_ts: int) -> None:
        self.checkpoints.append(Checkpoint(index, chunk, max_ts, self.folder.state.copy()))
        self._cp_max_ts.append(max_ts)

    # -- the final result ----------------------------------------------------
    @property
    def final(self) -> ReplayState:
        """The state after the last event (do not mutate)."""
        return self.folder.state

    @property
    def findings(self) -> list[Finding]:
        """Every finding, in time order."""
        return list(self.folder.findings)

    def findings_between(self, t0: int, t1: int) -> list[Finding]:
        """Findings with ``t0 <= ts <= t1``: O(log n + k)."""
        return list(self.folder.findings.irange_key((t0,), (t1, (1 << 63,))))

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
    def state_at(self, t: int) -> ReplayState:
        """The state after every event up to time ``t`` (the longest prefix of
        the trace whose timestamps are all ≤ t). Do not mutate the result.

        Cost: one checkpoint restore (O(live state)) plus folding at most one
        checkpoint interval of events; consecutive forward calls continue from
        the previous answer.
        """
        if self.last_ts is not None and t >= self.last_ts:
            return self.final
        k = bisect_right(self._cp_max_ts, t) - 1
        cp = self.checkpoints[max(k, 0)]
        cached = self._cache
        if cached is not None and cp.index <= cached.index and cached.ts <= t \
                and self._cache_max_ts <= t:
            state, start_index, start_max = cached, cached.index, self._cache_max_ts
        else:
            state, start_index, start_max = cp.state.copy(), cp.index, cp.max_ts
        folder = Folder(self.sizes, state, self.log, None, recording=False)
        max_ts = start_max
        c = bisect_right(self._chunk_first_index, start_index) - 1
        while 0 <= c < len(self.reader.chunks):
            chunk = self.reader.read_chunk(c)
            first = self._chunk_first_index[c]
            skip = start_index - first
            rows, stamps = chunk.rows, chunk.timestamps()
            end = skip
            for ts in islice(stamps, skip, None):
                if ts > t:
                    break
                end += 1
            if end > skip:
                folder.fold(rows[skip:end], stamps[skip:end], start_index)
                max_ts = max(max_ts, max(stamps[skip:end]))
                start_index = first + end
            if end < len(rows):
                break
            c += 1
        self._cache, self._cache_max_ts = state.copy(), max_ts
        return state

    # -- queries for the UI ----------------------------------------------------
    def buckets(self, cpus: Iterable[int], t0: int, t1: int, n: int):
        """``{cpu: array[n, len(TIMELINE_CLASSES)]}`` event counts over ``[t0, t1)``."""
        return self.timeline.buckets(cpus, t0, t1, n)

    def counter(self, name: str, t0: int, t1: int, n: int) -> list[int]:
        """A counter sampled into ``n`` buckets (max per bucket; IPIs as counts).

        Names: ``table_bytes``, ``empty_attached``, ``rcu_pending``, ``ipis``,
        ``table_bytes:0x<mm>``. Unknown names raise :class:`BadInput`.
        """
        series = self.series.get(name)
        if series is None:
            raise BadInput(f"unknown counter {name!r}; known: {', '.join(self.series.names())}")
        return series.sample(t0, t1, n)

    def events(self, t0: int | None = None, t1: int | None = None, *,
               cpus: set[int] | None = None, kinds: set[str] | None = None,
               mm: int | None = None, pfn: int | None = None,
               pid: int | None = None) -> Iterator[tuple[int, Event]]:
        """``(index, Event)`` for events in ``[t0, t1]`` passing every given filter.

        Reads only the chunks overlapping the window; O(events in them).
        """
        reader = self.reader
        lo = -(1 << 63) if t0 is None else t0
        hi = (1 << 63) - 1 if t1 is None else t1
        kind_ids = None if kinds is None else {
            s.id for s in reader.kinds if s.name in kinds}
        for c in reader.chunk_span(t0, t1):
            chunk = reader.read_chunk(c)
            base = self._chunk_first_index[c] if c < len(self._chunk_first_index) else 0
            for j, (row, ts) in enumerate(zip(chunk.rows, chunk.timestamps())):
                if not lo <= ts <= hi:
                    continue
                if kind_ids is not None and row[0] not in kind_ids:
                    continue
                if cpus is not None and row[2] not in cpus:
                    continue
                if pid is not None and row[3] != pid:
                    continue
                ev = row_to_event(row, ts, reader.kinds.by_id[row[0]], chunk.comms.get(row[3]))
                if mm is not None and ev.fields.get("mm") != mm:
                    continue
                if pfn is not None and ev.fields.get("pfn") != pfn and \
                        pfn not in (ev.fields.get("pfns") or ()):
                    continue
                yield base + j, ev

    def event_at(self, index: int) -> Event:
        """The event with global index ``index``: one chunk read."""
        c = bisect_right(self._chunk_first_index, index) - 1
        if c < 0 or index >= self.event_count:
            raise IndexError(index)
        chunk = self.reader.read_chunk(c)
        j = index - self._chunk_first_index[c]
        row = chunk.rows[j]
        return row_to_event(row, chunk.timestamps()[j], self.reader.kinds.by_id[row[0]],
                            chunk.comms.get(row[3]))

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
