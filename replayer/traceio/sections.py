"""Decoding the parts of a trace around its events: the header's kind table,
the footer index, and a chunk's leading values (for indexing without a footer).
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..errors import CorruptTrace
from ..vocab import KindSpec, KindTable


def chunk_head(body: bytes, path: str, where: str) -> tuple[int, int, int, int]:
    """The four leading ints of a chunk payload, without decoding its rows."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(body), 1))
    unpacker.feed(body)
    try:
        if unpacker.read_array_header() != 6:
            raise ValueError
        head = tuple(unpacker.unpack() for _ in range(4))
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.OutOfData):
        raise CorruptTrace("chunk is not [base, min, max, count, comms, rows]", path,
                           where) from None
    if not all(type(v) is int for v in head):
        raise CorruptTrace("chunk head is not integers", path, where)
    return head  # type: ignore[return-value]


def check_footer(footer: Any, path: str, where: str) -> dict[str, Any]:
    try:
        chunks = footer["chunks"]
        ok = all(len(e) == 4 and all(type(v) is int for v in e) for e in chunks)
        ok = ok and all(len(p) == 2 for p in footer["kind_counts"])
        ok = ok and all(len(p) == 2 for p in footer["cpu_counts"])
    except (TypeError, KeyError):
        ok = False
    if not ok:
        raise CorruptTrace("footer index is malformed", path, where)
    return footer


def kind_table(header: dict, path: str) -> tuple[KindTable, dict | None, dict[int, str]]:
    """Map the file's kind table onto the vocabulary.

    Returns the merged table and, when the file's ids or field orders differ
    from ours, ``{file_id: (spec, field_order)}`` for remapping rows.
    """
    table = KindTable()
    remap: dict[int, tuple[KindSpec, list[int | None]]] = {}
    identity = True
    try:
        entries = [(int(i), str(n), tuple(str(f) for f in fs)) for i, n, fs in header["kinds"]]
    except (KeyError, TypeError, ValueError):
        raise CorruptTrace("header kind table is malformed", path, "header") from None
    for file_id, name, fields in entries:
        if type(file_id) is not int or not name:
            raise CorruptTrace("header kind table is malformed", path, "header")
        spec = table.merge(name, fields)
        order = [fields.index(f) if f in fields else None for f in spec.fields]
        remap[file_id] = (spec, order)
        if spec.id != file_id or order != list(range(len(spec.fields))):
            identity = False
    names = {file_id: name for file_id, name, _ in entries}
    return table, (None if identity else remap), names
