"""Reader of ptviz traces (format v1 rows or v2 columns, see FORMAT.md).

Opening reads the preamble, the header and the footer index (or, when the
footer is missing, walks the frame heads once and warns). Chunks are read on
demand, so seeking by time touches only the chunks whose time range overlaps.
"""

from __future__ import annotations

import bisect
import os
from array import array
from typing import Any, Iterator

import numpy as np

from ..errors import (BadMagic, CorruptTrace, EmptyFile, MissingFile, TruncatedTrace,
                      UnsupportedVersion)
from ..vocab import N_COMMON
from . import framing
from .chunk import Chunk, ChunkInfo
from .columns import decode_chunk
from .events import Event, row_to_event
from .sections import check_footer, chunk_head, kind_table
from .validate import I64, RowChecks, check_header, comm_error
from .wholefile import WholeFile


class TraceReader(WholeFile):
    """Random access to a ptviz trace.

    Attributes: ``path`` (the name used in messages), ``header`` (dict),
    ``kinds`` (:class:`KindTable`), ``chunks`` (list of :class:`ChunkInfo`),
    ``has_footer``, ``truncated_at``, ``warnings`` (one-line strings naming
    the file and position), ``chunks_read`` (a counter, for seeing what a
    query cost).
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None) -> None:
        #: What messages call the file: ``name`` when given (the user's capture that
        #: was imported to ``path``), else ``path``.
        self.path = name if name is not None else os.fspath(path)
        try:
            self._file = open(path, "rb")
        except FileNotFoundError:
            raise MissingFile("no such file", self.path) from None
        except IsADirectoryError:
            raise MissingFile("is a directory, not a trace", self.path) from None
        except OSError as exc:
            raise MissingFile(f"cannot open: {exc.strerror}", self.path) from None
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            self.warnings: list[str] = []
            #: Where a file cut short stops being readable (None: nothing is missing).
            self.truncated_at: int | None = None
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
        #: The producer's notes (an importer's inferences), from the footer.
        self.notes: list[str] = list(self._footer.get("notes", ())) if self._footer else []
        # Row length per kind id; -1 for ids no kind has, so such rows fail the check.
        self._row_len = np.full(1 << 16, -1, np.int64)
        for spec in self.kinds:
            self._row_len[spec.id] = N_COMMON + len(spec.fields)
        self._checks = RowChecks({spec.id: spec.types for spec in self.kinds if spec.types})
        self._checked: set[tuple[int, int]] = set()    # (chunk, crc) whose fields passed
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
        if version not in framing.VERSIONS:
            raise UnsupportedVersion(f"format version {version} is not supported (this ptviz "
                                     f"reads versions "
                                     f"{' and '.join(map(str, framing.VERSIONS))})",
                                     self.path, "byte 8")
        #: The file's format version: 1 (a row per event) or 2 (columns).
        self.version = version

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
        if header.get("version") != self.version:
            raise CorruptTrace("header version disagrees with the preamble", self.path,
                               f"byte {offset}")
        check_header(header, self.path)
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
                                     self.path, where, self._file_kind_names)
        chunks = [ChunkInfo(i, *entry) for i, entry in enumerate(self._footer["chunks"])]
        previous = self._header_end - 1
        for c in chunks:
            if c.offset <= previous or c.offset >= offset:
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
                return self._cut_short(chunks, offset, f"truncated inside chunk {len(chunks)} "
                                       f"(no footer index)")
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
                                             self.path, where, self._file_kind_names)
                if self.size - end >= framing.TRAILER.size:
                    raise CorruptTrace("damaged trailer after the footer", self.path,
                                       f"byte {end}")
                self.warnings.append(f"{self.path}: byte {end}: truncated inside the trailer; "
                                     f"the footer index is intact")
                return chunks
            else:
                raise CorruptTrace("a second header frame", self.path, f"byte {offset}")
            offset += framing.FRAME_HEAD.size + length
        where = f" after chunk {len(chunks) - 1}" if chunks else ""
        return self._cut_short(chunks, offset, f"no footer index{where} (the writer did not "
                               f"finish)")

    def _cut_short(self, chunks: list[ChunkInfo], offset: int, what: str) -> list[ChunkInfo]:
        """The chunks of a file whose writer did not finish: what was lost after them
        is unknown, so a file with none is of no use (CI must not pass on it)."""
        if not chunks:
            raise TruncatedTrace(f"{what}: no complete chunk, nothing to read", self.path,
                                 f"byte {offset}")
        self.truncated_at = offset
        self.warnings.append(f"{self.path}: byte {offset}: {what}; read {len(chunks)} "
                             f"complete chunk(s), events after them are missing")
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
        checked = (i, frame[2]) in self._checked     # these very bytes passed before
        if not (isinstance(body, tuple) and len(body) == 6 and isinstance(body[5], tuple)
                and isinstance(body[4], tuple) and len(body[4]) % 2 == 0):
            raise CorruptTrace("chunk is not [base, min, max, count, comms, rows]", self.path,
                               where)
        base, lo, hi, count, comm_pairs, rows = body
        if (lo, hi, count) != (info.min_ts, info.max_ts, info.count):
            raise CorruptTrace("chunk disagrees with its index entry", self.path, where)
        if type(base) is not int or not I64[0] <= base <= I64[1]:
            raise CorruptTrace("chunk base time is not a 64-bit integer", self.path, where)
        why = None if checked else comm_error(comm_pairs)
        if why:
            raise CorruptTrace(why, self.path, where)
        comms = dict(zip(comm_pairs[::2], comm_pairs[1::2]))
        if self.version >= 2:
            chunk = self._columns_chunk(info, base, rows, comms, where, checked)
        else:
            if count != len(rows):
                raise CorruptTrace("chunk disagrees with its index entry", self.path, where)
            if not set(map(type, rows)) <= {tuple}:
                raise CorruptTrace("malformed event row: not an array", self.path, where)
            if self._remap is not None:
                rows = self._remap_rows(rows, where)
            chunk = Chunk(info, base, rows, comms)
            self._check_rows(chunk, where, checked)
        self._check_times(chunk, where)
        self._checked.add((i, frame[2]))
        return chunk

    def _columns_chunk(self, info: ChunkInfo, base: int, body: Any, comms: dict, where: str,
                       fields_checked: bool) -> Chunk:
        """A v2 chunk from its columns (:mod:`.columns`), checked as v1 rows are, in
        numpy: O(rows × fields) in C, no Python per event."""
        try:
            kinds, dts, cpus, pids, fields = decode_chunk(body, info.count, self._remap)
        except ValueError as exc:
            raise CorruptTrace(f"malformed event columns: {exc}", self.path, where) from None
        # decode_chunk has checked that the kinds with rows are those with fields.
        if any(self._row_len[kind] < 0 for kind in fields):
            raise CorruptTrace("malformed event columns: a kind is not in the header",
                               self.path, where)
        for kind, columns in fields.items():
            if len(columns) != self._row_len[kind] - N_COMMON:
                raise CorruptTrace(f"malformed event columns: kind {kind} has {len(columns)} "
                                   f"fields, not {self._row_len[kind] - N_COMMON}", self.path,
                                   where)
        why = None if fields_checked else self._checks.columns_error(pids, fields)
        if why:
            raise CorruptTrace(f"malformed event columns: {why}", self.path, where)
        chunk = Chunk(info, base, None, comms)
        chunk.kinds, chunk.cpus, chunk.dts = kinds, cpus, array("q", dts.tobytes())
        chunk.set_columns(pids, fields)
        return chunk

    def _check_times(self, chunk: Chunk, where: str) -> None:
        ts = np.frombuffer(chunk.timestamps(), np.int64)
        if len(ts) and (int(ts.min()) != chunk.info.min_ts or
                        int(ts.max()) != chunk.info.max_ts):
            raise CorruptTrace("timestamps disagree with the chunk's range", self.path, where)

    def _check_rows(self, chunk: Chunk, where: str, fields_checked: bool) -> None:
        """Every row has its kind's length, and every column its type and range
        (:mod:`.validate`): passes in C over the rows, comparisons in numpy. O(n).
        ``fields_checked``: the same bytes passed before; only the common columns,
        which the caller needs as arrays, are made again."""
        rows = chunk.rows
        try:
            chunk.kinds, chunk.cpus, chunk.dts = RowChecks.columns(rows)
        except IndexError:
            raise CorruptTrace("malformed event row: shorter than kind, time, cpu, pid",
                               self.path, where) from None
        except ValueError as exc:
            raise CorruptTrace(f"malformed event row: {exc}", self.path, where) from None
        lengths = np.fromiter(map(len, rows), np.int64, len(rows))
        if not (self._row_len[chunk.kinds] == lengths).all():
            raise CorruptTrace("malformed event row: a row does not match its kind's fields "
                               "(or its kind is not in the header)", self.path, where)
        why = None if fields_checked else self._checks.fields(rows, chunk.kinds)
        if why:
            raise CorruptTrace(f"malformed event row: {why}", self.path, where)

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

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TraceReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
