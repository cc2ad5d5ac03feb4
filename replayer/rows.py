"""Events by index and by time: what a list view around a cursor asks for.

A mixin of :class:`replayer.replay.Replay`. Decoded chunks come from the
replay's small LRU cache (:meth:`Replay.chunk`), so a view stepping through
neighbouring rows decodes each chunk once. Indexes are global event indexes in
trace order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterator

import numpy as np

from .traceio import Event
from .traceio.events import row_to_event


class RowQueries:
    def event_at(self, index: int) -> Event:
        """The event with global index ``index``: one chunk (usually cached)."""
        c, j = self._locate(index)
        chunk = self.chunk(c)
        row = chunk.rows[j]
        return row_to_event(row, chunk.timestamps()[j], self.reader.kinds.by_id[row[0]],
                            chunk.comms.get(row[3]))

    def rows(self, i0: int, i1: int) -> list[tuple[int, Event]]:
        """``(index, Event)`` for ``i0 <= index < i1`` (clipped to what is loaded):
        O(i1 - i0) plus one decode per chunk not in the cache."""
        i0, i1 = max(0, i0), min(i1, self.loaded_events)
        out: list[tuple[int, Event]] = []
        by_id = self.reader.kinds.by_id
        index = i0
        while index < i1:
            c, j = self._locate(index)
            chunk = self.chunk(c)
            stamps, rows, comms = chunk.timestamps(), chunk.rows, chunk.comms
            stop = min(len(rows), j + i1 - index)
            for k in range(j, stop):
                row = rows[k]
                out.append((index + k - j, row_to_event(row, stamps[k], by_id[row[0]],
                                                         comms.get(row[3]))))
            index += stop - j
        return out

    def rows_at(self, indexes: list[int]) -> list[tuple[int, Event]]:
        """``(index, Event)`` for each of ``indexes`` (ascending, loaded): each chunk
        decoded once (or found in the cache). O(len(indexes)) plus the chunks."""
        out: list[tuple[int, Event]] = []
        by_id = self.reader.kinds.by_id
        chunk_no, base, end = -1, 0, 0
        chunk = stamps = None
        for index in indexes:
            if not base <= index < end:
                chunk_no, j = self._locate(index)
                chunk = self.chunk(chunk_no)
                stamps = chunk.timestamps()
                base = index - j
                end = base + len(chunk.rows)
            row = chunk.rows[index - base]
            out.append((index, row_to_event(row, stamps[index - base], by_id[row[0]],
                                            chunk.comms.get(row[3]))))
        return out

    def index_at(self, t: int) -> int:
        """The index of the first event at or after ``t`` in trace order: where a list
        view opens for time ``t`` (``loaded_events`` when every event is earlier).

        For a trace not in time order, the first index at which the running
        maximum of the timestamps reaches ``t``. O(log chunks + one chunk).
        """
        loaded = self.loaded_chunks
        c = bisect_left(self._chunk_prefix_max, t, 0, loaded)
        if c >= loaded:
            # Every event of those chunks is earlier: the end of the last of them (not
            # loaded_events, which a loading thread may have moved on, or not yet).
            return self._chunk_first_index[loaded - 1] + len(self.chunk(loaded - 1)) \
                if loaded else 0
        stamps = np.frombuffer(self.chunk(c).timestamps(), np.int64)
        before = self._chunk_prefix_max[c - 1] if c else -(1 << 63)
        running = np.maximum(np.maximum.accumulate(stamps), before)
        return self._chunk_first_index[c] + int(np.searchsorted(running, t, side="left"))

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
            if c >= self.loaded_chunks:
                break
            chunk = self.chunk(c)
            base = self._chunk_first_index[c]
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

    def _locate(self, index: int) -> tuple[int, int]:
        """(chunk, position in it) of a loaded event; IndexError beyond."""
        if not 0 <= index < self.loaded_events:
            raise IndexError(index)
        c = bisect_right(self._chunk_first_index, index, 0, self.loaded_chunks) - 1
        return c, index - self._chunk_first_index[c]
