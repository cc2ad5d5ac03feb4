"""Each figure of ``ptviz bench``, measured against a baseline taken in the same run.

Wall-clock figures on a shared machine are noisy; ratios to a baseline
measured moments apart on the same file are what to compare across runs.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
import tracemalloc

import msgpack

from replayer.replay import Replay
from replayer.traceio import TraceReader
from replayer.traceio.framing import FRAME_HEAD
from replayer.traceio.writer import V1_CHUNK_EVENTS


def plain_decode_s(path: str, repeats: int = 3) -> float:
    """The yardstick (best of ``repeats``): read every chunk's bytes and
    msgpack-decode them, nothing else, with the events laid out one row per event
    (format v1). A trace in another layout is first copied to v1 beside itself (not
    timed), in v1's chunks of 4,096 events whatever the source's, so a faster layout
    earns its credit instead of moving the yardstick (msgpack decodes larger frames
    more slowly per event)."""
    with TraceReader(path) as reader:
        if reader.version == 1:
            return min(_decode_frames_s(reader) for _ in range(repeats))
        from replayer.traceio.rewrite import rewrite
        rows = path + ".v1-yardstick"
        try:
            rewrite(reader, rows, 1, force=True, chunk_events=V1_CHUNK_EVENTS)
            with TraceReader(rows) as v1:
                return min(_decode_frames_s(v1) for _ in range(repeats))
        finally:
            if os.path.exists(rows):
                os.unlink(rows)


def _decode_frames_s(reader: TraceReader) -> float:
    frames = [(c.offset + FRAME_HEAD.size, reader._frame(c.offset)[1]) for c in reader.chunks]
    fd = reader._file.fileno()
    t0 = time.perf_counter()
    for offset, length in frames:
        msgpack.unpackb(os.pread(fd, length, offset), raw=False, use_list=False)
    return time.perf_counter() - t0


def replay_s(path: str) -> tuple[float, Replay]:
    t0 = time.perf_counter()
    replay = Replay.load(path)
    return time.perf_counter() - t0, replay


def seek_ms(replay: Replay, samples: int = 200, seed: int = 7) -> list[float]:
    """Cold seeks to random times: the cache of the previous answer is dropped each time."""
    rng = random.Random(seed)
    t_first, t_last = replay.first_ts or 0, replay.last_ts or 0
    out = []
    for _ in range(samples):
        t = rng.randrange(t_first, max(t_first + 1, t_last))
        cursor = replay.cursor()        # a new cursor has no previous answer to go on from
        t0 = time.perf_counter()
        cursor.state_at(t)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def loaded_bytes(path: str) -> int:
    """Bytes still allocated by a loaded replay, above what existed before (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    replay = Replay.load(path)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    replay.close()
    return used


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize_seeks(latencies: list[float]) -> tuple[float, float]:
    return statistics.median(latencies), percentile(latencies, 0.95)
