"""A chunk as the reader hands it out: its index entry, rows and checked columns."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

_EMPTY_U16 = np.zeros(0, np.uint16)


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """One footer index entry: where a chunk is and what time it covers."""

    index: int
    offset: int
    min_ts: int
    max_ts: int
    count: int


class Chunk:
    """A decoded chunk: positional rows with delta timestamps, plus comms.

    ``rows[i]`` is ``(kind, dts, cpu, pid, *fields)`` with ``kind`` already in
    this reader's :class:`KindTable` ids; ``timestamps()`` gives absolute ones.
    """

    __slots__ = ("info", "base_ts", "rows", "comms", "kinds", "cpus", "dts", "_ts")

    def __init__(self, info: ChunkInfo, base_ts: int, rows: tuple, comms: dict) -> None:
        self.info = info
        self.base_ts = base_ts
        self.rows = rows
        self.comms = comms
        #: Each row's kind and CPU as numpy uint16 columns, filled by the reader's checks.
        self.kinds = _EMPTY_U16
        self.cpus = _EMPTY_U16
        #: The rows' time deltas as ``array('q')``, filled by the reader's checks.
        self.dts = array("q")
        self._ts: array | None = None

    def timestamps(self) -> array:
        """Absolute timestamps as ``array('q')`` (plain ints when indexed); computed
        once, O(n) in C."""
        if self._ts is None:
            stamps = np.cumsum(np.frombuffer(self.dts, np.int64))
            stamps += self.base_ts
            self._ts = array("q", stamps.tobytes())
        return self._ts

    def __len__(self) -> int:
        return len(self.rows)
