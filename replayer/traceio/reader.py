"""Reader of ptviz traces (format v1, see FORMAT.md).

Opening reads the preamble, the header and the footer index (or, when the
footer is missing, walks the frame heads once and warns). Chunks are read on
demand, so seeking by time touches only the chunks whose time range overlaps.
"""

from __future__ import annotations

import bisect
import os
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Iterator

import numpy as np

from ..errors import (BadMagic, CorruptTrace, EmptyFile, MissingFile, TruncatedTrace,
                      UnsupportedVersion)
from ..vocab import N_COMMON
from . import framing
from .events import Event, row_to_event
from .sections import check_footer, chunk_head, kind_table

_dts_of = itemgetter(1)
_EMPTY_U16 = np.zeros(0, np.uint16)
_kind_of = itemgetter(0)
_cpu_of = itemgetter(2)


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

    __slots__ = ("info", "base_ts", "rows", "comms", "kinds", "cpus", "_ts")

    def __init__(self, info: ChunkInfo, base_ts: int, rows: tuple, comms: dict) -> None:
        self.info = info
        self.base_ts = base_ts
        self.rows = rows
        self.comms = comms
        #: Each row's kind and CPU as numpy uint16 columns, filled by the reader's checks.
        self.kinds = _EMPTY_U16
        self.cpus = _EMPTY_U16
        self._ts: array | None = None

    def timestamps(self) -> array:
        """Absolute timestamps as ``array('q')`` (plain ints when indexed); computed
        once, O(n) in C. Raises OverflowError/TypeError/ValueError on non-int64 deltas."""
        if self._ts is None:
            dts = np.fromiter(map(_dts_of, self.rows), np.int64, len(self.rows))
            stamps = np.cumsum(dts)
            stamps += self.base_ts
            self._ts = array("q", stamps.tobytes())
        return self._ts

    def __len__(self) -> int:
        return len(self.rows)


class TraceReader:
    """Random access to a ptviz trace.

    Attributes: ``header`` (dict), ``kinds`` (:class:`KindTable`), ``chunks``
    (list of :class:`ChunkInfo`), ``has_footer``, ``warnings`` (one-line
    strings naming the file and position), ``chunks_read`` (a counter, for
    seeing what a query cost).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise MissingFile("no such file", self.path) from None
        except IsADirectoryError:
            raise MissingFile("is a directory, not a trace", self.path) from None
        except OSError as exc:
            raise MissingFile(f"cannot open: {exc.strerror}", self.path) from None
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            self.warnings: list[str] = []
            self.chunks_read = 0
            self._footer: dict[str, Any] | None = None
            self._read_preamble()
            self.header, self._header_end = self._read_header()
            self.kinds, self._remap, self._file_kind_names = kind_table(self.header, self.path)
            self.chunks = self._read_index()
        except BaseException:
            self._file.close()
            raise
        self.has_footer = self._footer is not None
        # Row length per kind id; -1 for ids no kind has, so such rows fail the check.
        self._row_len = np.full(1 << 16, -1, np.int64)
        for spec in self.kinds:
            self._row_len[spec.id] = N_COMMON + len(spec.fields)
        self._max_ts = array("q", (c.max_ts for c in self.chunks))
        # Time-ordered chunks (the normal case) allow bisecting the index.
        self._sorted = all(a.max_ts <= b.max_ts and a.min_ts <= b.min_ts
                           for a, b in zip(self.chunks, self.chunks[1:]))

    # -- opening -----------------------------------------------------------
    def _pread(self, offset: int, n: int) -> bytes:
        return os.pread(self._file.fileno(), n, offset)

    def _read_preamble(self) -> None:
        if self.size == 0:
            raise EmptyFile("empty file (0 bytes), not a ptviz trace", self.path, "byte 0")
        head = self._pread(0, framing.PREAMBLE.size)
        if not framing.MAGIC.startswith(head[:8]):
            raise BadMagic("not a ptviz trace (bad magic)", self.path, "byte 0")
        if len(head) < framing.PREAMBLE.size:
            raise TruncatedTrace("file ends inside the preamble", self.path, f"byte {len(head)}")
        _, version = framing.PREAMBLE.unpack(head)
        if version != framing.VERSION:
            raise UnsupportedVersion(f"format version {version} is not supported (this ptviz "
                                     f"reads version {framing.VERSION})", self.path, "byte 8")

    def _frame(self, offset: int, expect: bytes | None = None) -> tuple[bytes, int, int] | None:
        """Frame head at ``offset`` → (type, length, crc), or None if the file ends first."""
        head = self._pread(offset, framing.FRAME_HEAD.size)
        if len(head) < framing.FRAME_HEAD.size:
            return None
        kind, length, crc = framing.decode_frame_head(head, self.path, offset)
        if expect is not None and kind != expect:
            raise CorruptTrace(f"expected a {framing.FRAME_TYPES[expect]} frame, found a "
                               f"{framing.FRAME_TYPES[kind]} frame", self.path, f"byte {offset}")
        if offset + framing.FRAME_HEAD.size + length > self.size:
            return None
        return kind, length, crc

    def _payload(self, offset: int, length: int, crc: int, where: str) -> Any:
        data = self._pread(offset + framing.FRAME_HEAD.size, length)
        return framing.unpack_payload(data, crc, self.path, where)

    def _read_header(self) -> tuple[dict[str, Any], int]:
        offset = framing.PREAMBLE.size
        frame = self._frame(offset, framing.HEADER)
        if frame is None:
            raise TruncatedTrace("file ends inside the header", self.path, f"byte {offset}")
        _, length, crc = frame
        header = self._payload(offset, length, crc, f"header at byte {offset}")
        if not isinstance(header, dict) or header.get("format") != framing.FORMAT_NAME:
            raise CorruptTrace("header is not a ptviz trace header", self.path, f"byte {offset}")
        if header.get("version") != framing.VERSION:
            raise CorruptTrace("header version disagrees with the preamble", self.path,
                               f"byte {offset}")
        return header, offset + framing.FRAME_HEAD.size + length

    def _read_index(self) -> list[ChunkInfo]:
        tail = self.size - framing.TRAILER.size
        if tail >= self._header_end:
            footer_offset, magic = framing.TRAILER.unpack(self._pread(tail, framing.TRAILER.size))
            if magic == framing.END_MAGIC:
                return self._index_from_footer(footer_offset, tail)
        return self._index_by_scan()

    def _index_from_footer(self, offset: int, tail: int) -> list[ChunkInfo]:
        where = f"footer at byte {offset}"
        if not self._header_end <= offset < tail:
            raise CorruptTrace(f"trailer points outside the file ({offset})", self.path,
                               f"byte {tail}")
        frame = self._frame(offset, framing.FOOTER)
        if frame is None or offset + framing.FRAME_HEAD.size + frame[1] != tail:
            raise CorruptTrace("footer frame does not end at the trailer", self.path, where)
        self._footer = check_footer(self._payload(offset, frame[1], frame[2], where),
                                     self.path, where)
        chunks = [ChunkInfo(i, *entry) for i, entry in enumerate(self._footer["chunks"])]
        previous = self._header_end - 1
        for c in chunks:
            if c.offset <= previous or c.offset >= offset or c.count < 0:
                raise CorruptTrace(f"index entry {c.index} is impossible", self.path, where)
            previous = c.offset
        if chunks and chunks[0].offset != self._header_end:
            raise CorruptTrace("index does not start after the header", self.path, where)
        return chunks

    def _index_by_scan(self) -> list[ChunkInfo]:
        """Walk frame heads from the header on; used when there is no footer."""
        chunks: list[ChunkInfo] = []
        offset = self._header_end
        while offset < self.size:
            frame = self._frame(offset)
            if frame is None:
                self.warnings.append(
                    f"{self.path}: byte {offset}: truncated inside chunk {len(chunks)} "
                    f"(no footer index); read {len(chunks)} complete chunk(s)")
                return chunks
            kind, length, crc = frame
            where = f"chunk {len(chunks)} at byte {offset}"
            if kind == framing.CHUNK:
                body = self._pread(offset + framing.FRAME_HEAD.size, length)
                framing.unpack_payload(body, crc, self.path, where)  # verifies the CRC
                base, lo, hi, count = chunk_head(body, self.path, where)
                chunks.append(ChunkInfo(len(chunks), offset, lo, hi, count))
            elif kind == framing.FOOTER:
                end = offset + framing.FRAME_HEAD.size + length
                where = f"footer at byte {offset}"
                self._footer = check_footer(self._payload(offset, length, crc, where),
                                             self.path, where)
                if self.size - end >= framing.TRAILER.size:
                    raise CorruptTrace("damaged trailer after the footer", self.path,
                                       f"byte {end}")
                self.warnings.append(f"{self.path}: byte {end}: truncated inside the trailer; "
                                     f"the footer index is intact")
                return chunks
            else:
                raise CorruptTrace("a second header frame", self.path, f"byte {offset}")
            offset += framing.FRAME_HEAD.size + length
        self.warnings.append(f"{self.path}: byte {offset}: no footer index after chunk "
                             f"{len(chunks) - 1} (the writer did not finish); read "
                             f"{len(chunks)} complete chunk(s)")
        return chunks

    # -- reading chunks ----------------------------------------------------
    def read_chunk(self, i: int) -> Chunk:
        """Decode chunk ``i``: one pread, a CRC check, one msgpack decode, O(n) checks in C."""
        info = self.chunks[i]
        where = f"chunk {i} at byte {info.offset}"
        frame = self._frame(info.offset, framing.CHUNK)
        if frame is None:
            raise CorruptTrace("chunk runs past the end of the file", self.path, where)
        body = self._payload(info.offset, frame[1], frame[2], where)
        self.chunks_read += 1
        if not (isinstance(body, tuple) and len(body) == 6 and isinstance(body[5], tuple)
                and isinstance(body[4], tuple) and len(body[4]) % 2 == 0):
            raise CorruptTrace("chunk is not [base, min, max, count, comms, rows]", self.path,
                               where)
        base, lo, hi, count, comm_pairs, rows = body
        if (lo, hi, count) != (info.min_ts, info.max_ts, info.count) or count != len(rows):
            raise CorruptTrace("chunk disagrees with its index entry", self.path, where)
        if self._remap is not None:
            rows = self._remap_rows(rows, where)
        chunk = Chunk(info, base, rows, dict(zip(comm_pairs[::2], comm_pairs[1::2])))
        self._check_rows(chunk, where)
        return chunk

    def _check_rows(self, chunk: Chunk, where: str) -> None:
        """Every row has its kind's length and int kind/dts/cpu: four passes in C over
        the rows, the comparisons in numpy. O(n)."""
        rows = chunk.rows
        try:
            n = len(rows)
            chunk.kinds = np.fromiter(map(_kind_of, rows), np.uint16, n)
            chunk.cpus = np.fromiter(map(_cpu_of, rows), np.uint16, n)
            lengths = np.fromiter(map(len, rows), np.int64, n)
            ts = np.frombuffer(chunk.timestamps(), np.int64)
        except (TypeError, IndexError, OverflowError, ValueError):
            ok = False
        else:
            ok = bool((self._row_len[chunk.kinds] == lengths).all())
        if not ok:
            raise CorruptTrace("malformed event row: a kind, time or CPU is not a small "
                               "integer, or a row does not match its kind's fields",
                               self.path, where)
        if rows and (int(ts.min()) != chunk.info.min_ts or int(ts.max()) != chunk.info.max_ts):
            raise CorruptTrace("timestamps disagree with the chunk's range", self.path, where)

    def _remap_rows(self, rows: tuple, where: str) -> tuple:
        """Map a foreign kind table's rows onto ours (slow path; rare)."""
        out = []
        remap = self._remap
        try:
            for row in rows:
                spec, order = remap[row[0]]
                fields = row[N_COMMON:]
                out.append((spec.id, row[1], row[2], row[3],
                            *(fields[j] if j is not None else None for j in order)))
        except (KeyError, IndexError, TypeError):
            raise CorruptTrace("event row does not match the kind table", self.path,
                               where) from None
        return tuple(out)

    def chunk_span(self, t0: int | None = None, t1: int | None = None) -> list[int]:
        """Indices of chunks that may hold events with ``t0 <= ts <= t1``.

        O(log n) with the usual time-ordered chunks, O(n) over the index otherwise.
        """
        lo = -(1 << 63) if t0 is None else t0
        hi = (1 << 63) - 1 if t1 is None else t1
        if self._sorted:
            first = bisect.bisect_left(self._max_ts, lo)
            out = []
            for c in self.chunks[first:]:
                if c.min_ts > hi:
                    break
                out.append(c.index)
            return out
        return [c.index for c in self.chunks if c.max_ts >= lo and c.min_ts <= hi]

    def iter_chunks(self, t0: int | None = None, t1: int | None = None) -> Iterator[Chunk]:
        for i in self.chunk_span(t0, t1):
            yield self.read_chunk(i)

    def events(self, t0: int | None = None, t1: int | None = None) -> Iterator[Event]:
        """Events with ``t0 <= ts <= t1`` as :class:`Event` objects (slow path)."""
        lo = -(1 << 63) if t0 is None else t0
        hi = (1 << 63) - 1 if t1 is None else t1
        by_id = self.kinds.by_id
        for chunk in self.iter_chunks(t0, t1):
            comms = chunk.comms
            for row, ts in zip(chunk.rows, chunk.timestamps()):
                if lo <= ts <= hi:
                    yield row_to_event(row, ts, by_id[row[0]], comms.get(row[3]))

    # -- whole-file facts --------------------------------------------------
    @property
    def event_count(self) -> int:
        return sum(c.count for c in self.chunks)

    @property
    def time_span(self) -> tuple[int, int] | None:
        if not self.chunks:
            return None
        return min(c.min_ts for c in self.chunks), max(c.max_ts for c in self.chunks)

    def counts(self) -> tuple[dict[str, int], dict[int, int]]:
        """Events per kind name and per CPU: from the footer, else by decoding every chunk."""
        if self._footer is not None and len(self._footer["chunks"]) == len(self.chunks):
            kinds = self._footer["kind_counts"]
            cpus = self._footer["cpu_counts"]
        else:
            k: Counter[int] = Counter()
            c: Counter[int] = Counter()
            for chunk in self.iter_chunks():
                k.update(map(_kind_of, chunk.rows))
                c.update(map(_cpu_of, chunk.rows))
            return ({self.kinds.by_id[kind].name: n for kind, n in k.items()}, dict(c))
        names = {self._file_kind_names.get(kind, f"kind#{kind}"): n for kind, n in kinds}
        return names, dict(cpus)

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

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TraceReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
