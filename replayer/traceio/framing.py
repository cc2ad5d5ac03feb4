"""Byte-level layout of a ptviz trace: preamble, frames, trailer.

See ``FORMAT.md`` beside this file for the whole picture. This module owns
the constants and the two primitive operations (encode one frame, decode one
frame head) that the writer and the reader share.
"""

from __future__ import annotations

import struct
import zlib
from binascii import crc_hqx
from typing import Any

import msgpack

from ..errors import CorruptTrace

MAGIC = b"\x89PTVIZ\r\n"      # 0x89 and CRLF catch 7-bit and newline-mangling copies
VERSION = 2                   # what the writer writes unless told otherwise
VERSIONS = (1, 2)             # what this ptviz reads and writes
PREAMBLE = struct.Struct(">8sH")  # magic, format version
FORMAT_NAME = "ptviz-trace"

# Frame head: type, payload length, CRC32 of the payload, CRC16 of the first
# nine bytes. The head check tells a damaged length (corruption) apart from a
# length that runs past the end of the file (truncation).
FRAME_HEAD = struct.Struct(">cIIH")
HEADER, CHUNK, FOOTER = b"H", b"C", b"F"
FRAME_TYPES = {HEADER: "header", CHUNK: "chunk", FOOTER: "footer"}

TRAILER = struct.Struct(">Q8s")   # offset of the footer frame, end magic
END_MAGIC = b"PTVZEND\n"

# Decoding limits: a hostile length cannot make the reader allocate more.
MAX_FRAME = {HEADER: 1 << 20, CHUNK: 128 << 20, FOOTER: 128 << 20}


def encode_frame(kind: bytes, payload: bytes) -> bytes:
    """Frame ``payload``: head (11 bytes) followed by the payload."""
    if len(payload) > MAX_FRAME[kind]:
        raise ValueError(f"{FRAME_TYPES[kind]} frame of {len(payload)} bytes exceeds "
                         f"the format's limit of {MAX_FRAME[kind]}")
    first = struct.pack(">cII", kind, len(payload), zlib.crc32(payload))
    return first + struct.pack(">H", crc_hqx(first, 0xFFFF)) + payload


def decode_frame_head(head: bytes, path: str, offset: int) -> tuple[bytes, int, int]:
    """Check a frame head; return (type, payload length, payload crc32).

    Raises :class:`CorruptTrace` if the head's own checksum, type or length is wrong.
    """
    kind, length, crc, hcrc = FRAME_HEAD.unpack(head)
    if crc_hqx(head[:9], 0xFFFF) != hcrc:
        raise CorruptTrace("frame head checksum mismatch (damaged file)", path, f"byte {offset}")
    if kind not in FRAME_TYPES:
        raise CorruptTrace(f"unknown frame type {kind!r}", path, f"byte {offset}")
    if length > MAX_FRAME[kind]:
        raise CorruptTrace(f"{FRAME_TYPES[kind]} frame claims {length} bytes, over the "
                           f"limit of {MAX_FRAME[kind]}", path, f"byte {offset}")
    return kind, length, crc


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} is not allowed in a ptviz trace")


def unpack_payload(payload: bytes, crc: int, path: str, where: str) -> Any:
    """Verify the CRC and decode a frame payload; never evaluates anything.

    Arrays decode as tuples. Length limits default to the payload size, so a
    claimed length cannot exceed what is really there.
    """
    if zlib.crc32(payload) != crc:
        raise CorruptTrace("checksum mismatch (damaged file)", path, where)
    try:
        return msgpack.unpackb(payload, raw=False, use_list=False,
                               strict_map_key=True, ext_hook=_reject_ext)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.UnpackException) as exc:
        raise CorruptTrace(f"undecodable payload: {exc}", path, where) from None


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)
