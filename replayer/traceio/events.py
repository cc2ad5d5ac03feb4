"""A convenient, slow view of one event, for tools, tests and converters.

Hot paths (the replayer, the simulator) work on positional rows and never
build these; everything that wants names does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..vocab import KindSpec, KindTable, N_COMMON


@dataclass(slots=True)
class Event:
    """One event with its fields by name. Arrays in fields are tuples."""

    ts: int
    kind: str
    cpu: int
    pid: int | None = None
    comm: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def row_to_event(row: tuple, ts: int, spec: KindSpec, comm: str | None) -> Event:
    """Name the fields of a positional row whose timestamp is already absolute."""
    return Event(ts, spec.name, row[2], row[3], comm, dict(zip(spec.fields, row[N_COMMON:])))


def event_fields(event: Event, kinds: KindTable) -> tuple[int, tuple]:
    """The kind id and positional field tuple for ``event``; missing fields are ``None``.

    Raises ``ValueError`` for a kind the table does not hold or a field it does not name.
    """
    spec = kinds.get(event.kind)
    if spec is None:
        raise ValueError(f"event kind {event.kind!r} is not in the kind table")
    unknown = set(event.fields) - set(spec.fields)
    if unknown:
        raise ValueError(f"{event.kind}: unknown field(s) {sorted(unknown)}")
    return spec.id, tuple(event.fields.get(f) for f in spec.fields)
