"""Decoding the parts of a trace around its events: the header's kind table,
the footer index, and a chunk's leading values (for indexing without a footer).
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..errors import CorruptTrace
from .validate import I64
from ..vocab import FIRST_FOREIGN_ID, KindSpec, KindTable


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
    why = _entry_error(head[1:]) if all(type(v) is int for v in head) else "not integers"
    if why or not I64[0] <= head[0] <= I64[1]:
        raise CorruptTrace(f"chunk head is impossible ({why or 'base time'})", path, where)
    return head  # type: ignore[return-value]


def _entry_error(entry: tuple) -> str | None:
    """``(min_ts, max_ts, count)`` of one chunk: why it cannot be, or None."""
    lo, hi, count = entry
    if not (I64[0] <= lo <= hi <= I64[1]):
        return "times out of order or beyond 64 bits"
    if not 1 <= count < 1 << 32:
        return f"count {count}"
    return None


def check_footer(footer: Any, path: str, where: str, kind_ids: dict[int, str]
                 ) -> dict[str, Any]:
    """The footer index, checked for shape and for agreeing with itself: every entry
    possible, and the totals per kind and per CPU adding up to the events. O(chunks)."""
    try:
        chunks = footer["chunks"]
        ok = all(len(e) == 4 and all(type(v) is int for v in e) for e in chunks)
        ok = ok and all(len(p) == 2 and type(p[0]) is type(p[1]) is int
                        for p in footer["kind_counts"] + footer["cpu_counts"])
        ok = ok and type(footer["events"]) is int
    except (TypeError, KeyError):
        ok = False
    if not ok:
        raise CorruptTrace("footer index is malformed", path, where)
    for i, entry in enumerate(chunks):
        why = _entry_error(entry[1:])
        if why or entry[0] < 0:
            raise CorruptTrace(f"index entry {i} is impossible ({why or 'offset'})", path,
                               where)
    events = sum(e[3] for e in chunks)
    for name, pairs, known in (("kind", footer["kind_counts"], kind_ids.__contains__),
                               ("CPU", footer["cpu_counts"], range(1 << 16).__contains__)):
        if any(n < 0 or not known(k) for k, n in pairs):
            raise CorruptTrace(f"footer counts name an unknown {name}", path, where)
        if sum(n for _, n in pairs) != events:
            raise CorruptTrace(f"footer counts per {name} add up to "
                               f"{sum(n for _, n in pairs)}, the chunks hold {events}",
                               path, where)
    if footer["events"] != events:
        raise CorruptTrace(f"footer says {footer['events']} events, its index {events}",
                           path, where)
    notes = footer.get("notes", ())
    if not isinstance(notes, tuple) or not all(type(n) is str for n in notes):
        raise CorruptTrace("footer notes are not a list of strings", path, where)
    return footer


#: Kind ids index uint16 columns; foreign kinds are numbered from 1000 on top of them.
MAX_KIND_ID = (1 << 16) - 1
MAX_KINDS = MAX_KIND_ID - FIRST_FOREIGN_ID


def kind_table(header: dict, path: str) -> tuple[KindTable, dict | None, dict[int, str]]:
    """Map the file's kind table onto the vocabulary.

    Returns the merged table and, when the file's ids or field orders differ
    from ours, ``{file_id: (spec, field_order)}`` for remapping rows.
    """
    table = KindTable()
    remap: dict[int, tuple[KindSpec, list[int | None]]] = {}
    identity = True
    entries = header.get("kinds")
    if not isinstance(entries, tuple) or len(entries) > MAX_KINDS or not all(
            isinstance(e, tuple) and len(e) == 3 and type(e[0]) is int
            and 0 <= e[0] <= MAX_KIND_ID and type(e[1]) is str and e[1]
            and isinstance(e[2], tuple) and all(type(f) is str for f in e[2])
            and len(set(e[2])) == len(e[2]) for e in entries):
        raise CorruptTrace("header kind table is malformed", path, "header")
    if len({e[0] for e in entries}) != len(entries) or len({e[1] for e in entries}) != \
            len(entries):
        raise CorruptTrace("header kind table names an id or a kind twice", path, "header")
    for file_id, name, fields in entries:
        spec = table.merge(name, fields)
        order = [fields.index(f) if f in fields else None for f in spec.fields]
        remap[file_id] = (spec, order)
        if spec.id != file_id or order != list(range(len(spec.fields))):
            identity = False
    names = {file_id: name for file_id, name, _ in entries}
    return table, (None if identity else remap), names
