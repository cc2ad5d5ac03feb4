"""One small filter syntax for events, shared by ``ptviz events`` and the UI's filter bar.

    cpu=1,3 kind=table_free,tlb_flush mm=0x4635 pfn=0x17d80a pid=17973 reclaim

Terms are separated by spaces; ``key=v1,v2`` keeps events whose key is one of the
values (numbers in decimal or 0x hex; ``cpu`` also takes ranges, ``cpu=0-3,8``, as
the kernel's cpulists; ``kind`` takes shell patterns, ``kind=table_*``);
different keys must all hold. A word without ``=`` is searched, case-insensitively, in
the event's task name and fields as printed. Events with no ``mm``/``pfn`` field never
pass an ``mm=``/``pfn=`` term; a pfn matches an event's ``pfns`` list too.

:func:`select` finds the matches: CPU and kind terms straight from the timeline's
columns (numpy, no decoding), the others by decoding only the chunks in the window.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from .errors import UsageError
from .traceio import Event

if TYPE_CHECKING:  # pragma: no cover
    from .replay import Replay

KEYS = ("cpu", "kind", "mm", "pfn", "pid")


@dataclass(frozen=True)
class EventFilter:
    cpus: frozenset[int] | None = None
    kinds: frozenset[str] | None = None      # names (patterns already expanded)
    mms: frozenset[int] | None = None
    pfns: frozenset[int] | None = None
    pids: frozenset[int] | None = None
    words: tuple[str, ...] = ()              # lower case

    @property
    def empty(self) -> bool:
        return self == EventFilter()

    @property
    def needs_fields(self) -> bool:
        """Whether events must be decoded (mm, pfn, pid or words), not just columns."""
        return (self.mms is not None or self.pfns is not None or self.pids is not None
                or bool(self.words))

    def matches(self, cpu: int, event: Event) -> bool:
        """Whether a decoded event passes. O(fields)."""
        if self.cpus is not None and cpu not in self.cpus:
            return False
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.pids is not None and event.pid not in self.pids:
            return False
        f = event.fields
        if self.mms is not None and f.get("mm") not in self.mms:
            return False
        if self.pfns is not None and f.get("pfn") not in self.pfns and \
                not self.pfns.intersection(f.get("pfns") or ()):
            return False
        if self.words:
            text = searchable(event)
            return all(w in text for w in self.words)
        return True


def searchable(event: Event) -> str:
    """What a word term looks in: the task, kind and fields, lower case, numbers as
    they are printed (hex for mm, pfn and addresses)."""
    parts = [event.comm or "", str(event.pid if event.pid is not None else ""), event.kind]
    for k, v in event.fields.items():
        if isinstance(v, int) and not isinstance(v, bool) and k in HEX_FIELDS:
            v = f"{v:#x}"
        parts.append(f"{k}={v}")
    return " ".join(parts).lower()


#: Fields shown (and searched) in hex, as the kernel prints them.
HEX_FIELDS = frozenset(("mm", "pfn", "addr", "start", "end", "callback", "pfns", "ptr"))


def _numbers(key: str, text: str, term: str) -> frozenset[int]:
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        try:
            lo, dash, hi = part.partition("-")
            if key == "cpu" and dash and lo:      # a cpulist range, as the kernel prints
                if int(hi, 0) - int(lo, 0) > 1 << 16:
                    raise ValueError
                out.update(range(int(lo, 0), int(hi, 0) + 1))
            else:
                out.add(int(part, 0))
        except ValueError:
            raise UsageError(f"filter {term!r}: {part!r} is not a number "
                             f"({key}= takes decimal or 0x hex)") from None
    if not out:
        raise UsageError(f"filter {term!r}: no value")
    return frozenset(out)


def parse_filter(text: str, kind_names: Iterable[str]) -> EventFilter:
    """``"cpu=1,3 kind=table_*"`` → an :class:`EventFilter`; ``kind_names``: the kinds
    the trace has (patterns are expanded against them, unknown names refused).
    Raises :class:`UsageError` naming the bad term."""
    known = list(kind_names)
    values: dict[str, frozenset] = {}
    words: list[str] = []
    for term in text.split():
        key, eq, value = term.partition("=")
        if not eq:
            words.append(term.lower())
            continue
        key = key.lower()
        if key not in KEYS:
            raise UsageError(f"filter {term!r}: unknown key {key!r}; keys: {', '.join(KEYS)} "
                             f"(or a word to search for)")
        if key == "kind":
            names = set()
            for pattern in filter(None, value.split(",")):
                hit = fnmatch.filter(known, pattern)
                if not hit:
                    raise UsageError(f"filter {term!r}: no event kind {pattern!r}; kinds: "
                                     f"{', '.join(known)}")
                names.update(hit)
            if not names:
                raise UsageError(f"filter {term!r}: no value")
            new = frozenset(names)
        else:
            new = _numbers(key, value, term)
        # The same key twice narrows: both must hold.
        values[key] = values[key] & new if key in values else new
    return EventFilter(cpus=values.get("cpu"), kinds=values.get("kind"), mms=values.get("mm"),
                       pfns=values.get("pfn"), pids=values.get("pid"), words=tuple(words))


def select(replay: "Replay", flt: EventFilter, t0: int | None = None, t1: int | None = None,
           cancelled: Callable[[], bool] = lambda: False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(index, ts, cpu)`` of the loaded events in ``[t0, t1]`` that pass ``flt``, in
    index order (int64 arrays). CPU and kind terms alone: O(events) in numpy over the
    timeline. Other terms: those first, then the events in the window decoded (the
    chunks that hold candidates only), checking ``cancelled`` between chunks."""
    lo = -(1 << 63) if t0 is None else t0
    hi = (1 << 63) - 1 if t1 is None else t1
    kind_ids = None if flt.kinds is None else np.array(
        [s.id for s in replay.reader.kinds if s.name in flt.kinds], np.int64)
    idx_parts, ts_parts, cpu_parts = [], [], []
    cpus = replay.cpus if flt.cpus is None else [c for c in replay.cpus if c in flt.cpus]
    for cpu in cpus:
        col = replay.timeline.column(cpu)
        i0 = int(np.searchsorted(col.ts, lo, side="left"))
        i1 = int(np.searchsorted(col.ts, hi, side="right"))
        ts, idx = col.ts[i0:i1], col.idx[i0:i1]
        if kind_ids is not None:
            keep = np.isin(col.kind[i0:i1], kind_ids)
            ts, idx = ts[keep], idx[keep]
        idx_parts.append(idx.astype(np.int64))
        ts_parts.append(ts)
        cpu_parts.append(np.full(len(ts), cpu, np.int64))
    if not idx_parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    idx, ts, cpu = (np.concatenate(idx_parts), np.concatenate(ts_parts),
                    np.concatenate(cpu_parts))
    order = np.argsort(idx, kind="stable")
    idx, ts, cpu = idx[order], ts[order], cpu[order]
    if not flt.needs_fields or not len(idx):
        return idx, ts, cpu
    keep = np.zeros(len(idx), bool)
    for start in range(0, len(idx), 4096):
        if cancelled():
            break
        block = idx[start:start + 4096].tolist()
        cpus_block = cpu[start:start + 4096].tolist()
        for k, ((_, event), c) in enumerate(zip(replay.rows_at(block), cpus_block)):
            keep[start + k] = flt.matches(c, event)
    return idx[keep], ts[keep], cpu[keep]
