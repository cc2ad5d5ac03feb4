"""A consumer's private position in a replay: ``state_at`` with its own cache.

The replay's data after its load (checkpoints, the table log, the trace) is
shared and never changed by a query; what a query changes is its own cache of
the last state it built. One :class:`Cursor` per thread makes concurrent
queries correct without a lock; :meth:`Replay.state_at` keeps one behind a
lock for callers that do not care.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

from .fold import Folder
from .traceio.chunk import GROUP_EVENTS, ChunkSlice, merge_chunks
from .state import ReplayState

if TYPE_CHECKING:  # pragma: no cover
    from .replay import Replay


class Cursor:
    """``state_at`` for one consumer. Not for sharing between threads: make one per
    thread with :meth:`Replay.cursor`. Answers for the part of the trace loaded so
    far while the replay is still loading."""

    __slots__ = ("_replay", "_cache", "_cache_max_ts")

    def __init__(self, replay: "Replay") -> None:
        self._replay = replay
        self._cache: ReplayState | None = None
        self._cache_max_ts = 0

    def state_at(self, t: int) -> ReplayState:
        """The state after every event up to time ``t`` (the longest prefix of the
        trace whose timestamps are all ≤ t). Do not mutate the result.

        Cost: one checkpoint restore (O(live state)) plus folding at most one
        checkpoint interval of events; consecutive forward calls continue from
        the previous answer.
        """
        replay = self._replay
        if replay.loaded and replay.last_ts is not None and t >= replay.last_ts:
            return replay.final
        # Only chunks whose fold is complete: their tables are in the shared log.
        loaded = replay.loaded_chunks
        k = bisect_right(replay._cp_max_ts, t) - 1
        cp = replay.checkpoints[max(k, 0)]
        cached = self._cache
        if cached is not None and cp.index <= cached.index and cached.ts <= t \
                and self._cache_max_ts <= t:
            state, start_index, start_max = cached, cached.index, self._cache_max_ts
        else:
            state, start_index, start_max = cp.state.copy(), cp.index, cp.max_ts
        folder = Folder(replay.sizes, state, replay.log, None, recording=False,
                        fast=replay.folder.fast)
        max_ts = start_max
        firsts = replay._chunk_first_index
        c = bisect_right(firsts, start_index, 0, loaded) - 1
        while 0 <= c < loaded:
            # The chunks from here to the first one reaching past t, folded a group at a
            # time as the load folds them (every event before start_index is ≤ t).
            first, parts, size = c, [], 0
            while c < loaded and size < GROUP_EVENTS:
                parts.append(replay.chunk(c))
                size += len(parts[-1])
                c += 1
                if parts[-1].info.max_ts > t:
                    break
            chunk = merge_chunks(parts)
            skip = start_index - firsts[first]
            stamps = chunk.timestamps()
            later = np.flatnonzero(np.frombuffer(stamps, np.int64)[skip:] > t)
            end = skip + int(later[0]) if len(later) else len(chunk)
            if end > skip:
                # A column chunk is folded through a slice of its columns: no row is
                # made but those the fold visits (raw events' texts stay packed).
                part = ChunkSlice(chunk, skip, end) if chunk.has_columns else \
                    chunk.rows[skip:end]
                folder.fold(part, stamps[skip:end], start_index, chunk.kinds[skip:end],
                            chunk.cpus[skip:end])
                max_ts = max(max_ts, int(np.frombuffer(stamps, np.int64)[skip:end].max()))
                start_index = firsts[first] + end
            if end < len(chunk):
                break
        self._cache, self._cache_max_ts = state.copy(), max_ts
        return state
