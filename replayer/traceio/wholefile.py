"""What a whole trace file holds, as :class:`.reader.TraceReader` answers it: event
count, time span and counts per kind and CPU (from the footer index, or by
decoding every chunk), and the checks that read every frame of the file.

A mixin of the reader: it uses the reader's index (``chunks``), footer and
``read_chunk``; nothing here reads a chunk another way.
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from ..errors import CorruptTrace
from . import framing


class WholeFile:
    """Whole-file facts and checks of a :class:`.reader.TraceReader` (its base)."""

    @property
    def event_count(self) -> int:
        return sum(c.count for c in self.chunks)

    @property
    def time_span(self) -> tuple[int, int] | None:
        if not self.chunks:
            return None
        return min(c.min_ts for c in self.chunks), max(c.max_ts for c in self.chunks)

    def counts(self) -> tuple[dict[str, int], dict[int, int]]:
        """Events per kind name and per CPU: from the footer (trusted as it is), else
        by decoding every chunk (:meth:`verify_counts`)."""
        if self._footer is None:
            return self.verify_counts()
        return self._footer_counts()

    def _footer_counts(self) -> tuple[dict[str, int], dict[int, int]]:
        kinds, cpus = self._footer["kind_counts"], self._footer["cpu_counts"]
        return ({self._file_kind_names[kind]: n for kind, n in kinds if n},
                {cpu: n for cpu, n in cpus if n})

    def verify_counts(self, progress: Callable[[int, int], None] | None = None
                      ) -> tuple[dict[str, int], dict[int, int]]:
        """Decode and check every chunk, count events per kind name and per CPU, and
        check the footer's counts agree. O(events), in numpy per chunk.

        Raises :class:`CorruptTrace` at the first bad chunk or a footer that lies.
        """
        by_kind = np.zeros(1 << 16, np.int64)
        by_cpu = np.zeros(1 << 16, np.int64)
        done = 0
        for i in range(len(self.chunks)):
            chunk = self.read_chunk(i)
            by_kind += np.bincount(chunk.kinds, minlength=1 << 16)
            by_cpu += np.bincount(chunk.cpus, minlength=1 << 16)
            done += len(chunk)
            if progress is not None:
                progress(done, self.event_count)
        counted = ({self.kinds.by_id[k].name: int(by_kind[k]) for k in np.flatnonzero(by_kind)},
                   {int(c): int(by_cpu[c]) for c in np.flatnonzero(by_cpu)})
        if self._footer is not None and counted != self._footer_counts():
            raise CorruptTrace("the footer's counts per kind or per CPU disagree with the "
                               "chunks", self.path, "footer")
        return counted

    def verify_checksums(self) -> None:
        """CRC-check every chunk frame without decoding it; raises on the first damage.

        O(file size), I/O bound: what ``ptviz info`` does before trusting the footer.
        """
        for info in self.chunks:
            where = f"chunk {info.index} at byte {info.offset}"
            frame = self._frame(info.offset, framing.CHUNK)
            if frame is None:
                raise CorruptTrace("chunk runs past the end of the file", self.path, where)
            data = self._pread(info.offset + framing.FRAME_HEAD.size, frame[1])
            if zlib.crc32(data) != frame[2]:
                raise CorruptTrace("checksum mismatch (damaged file)", self.path, where)

    def verify(self) -> None:
        """Check every frame's CRC and every chunk's rows; raises on the first damage. O(file)."""
        for i in range(len(self.chunks)):
            self.read_chunk(i)

