"""Rewriting a ptviz trace in another format version (``ptviz convert``'s upgrade)."""

from __future__ import annotations

import os
from typing import Callable

from .reader import TraceReader
from .writer import TraceWriter


def rewrite(reader: TraceReader, out: str | os.PathLike, version: int, force: bool = False,
            progress: Callable[[int, int], None] | None = None,
            chunk_events: int | None = None) -> int:
    """Copy every event of ``reader`` into a new trace of format ``version`` at
    ``out``, chunk by chunk: the same header, kind table (foreign kinds and fields
    included), chunks, comms, events and notes. Returns the events written. O(events);
    memory: one chunk. ``chunk_events``: cut chunks every that many events instead of
    where the source's end."""
    header = {k: v for k, v in reader.header.items() if k not in ("format", "version", "kinds")}
    done = 0
    # Chunks end where the source's do (end_chunk), never earlier.
    largest = max((c.count for c in reader.chunks), default=1)
    with TraceWriter(out, header, kinds=reader.kinds, force=force, version=version,
                     chunk_events=chunk_events or largest + 1) as writer:
        for c in range(len(reader.chunks)):
            chunk = reader.read_chunk(c)
            comms = chunk.comms
            add = writer.add
            for row, ts in zip(chunk.rows, chunk.timestamps()):
                add(ts, row[0], row[2], row[3], row[4:], comms.get(row[3]))
            if not chunk_events:
                writer.end_chunk()
            done += len(chunk)
            if progress is not None:
                progress(done, reader.event_count)
        writer.notes.extend(reader.notes)
    return done
