"""Each address space's page tables in Chrome JSON: every PTE table page's life as
an async slice on the mm's process, and its VmPTE and empty-table counters.

Fed every event from the trace's start, so that a window opens with the tables
alive and the bytes attached at that moment; emits only once the window is open
and only for the mms the ``mm=`` term keeps. What it counts follows the replay's
rules (SPEC §5): a table's bytes count from its allocation to its detach (its
level's size, from the header's ``arch``), and a PTE table is empty while it is
attached with no present entry. Memory: one small record per live table.
"""

from __future__ import annotations

from typing import Any

from replayer import vocab as v

from .jsonl import to_json

_ALLOC, _SET, _CLEAR, _DETACH, _QUEUE, _FREE = (v.KIND_BY_NAME[n].id for n in (
    "table_alloc", "pte_set", "pte_clear", "table_detach", "table_queue", "table_free"))
# A live table's record.
LIFE, MM, LEVEL, PRESENT, ATTACHED, SHOWN = range(6)


class Lives:
    def __init__(self, writer, sizes, mms: frozenset | None) -> None:
        self.w, self.sizes, self.mms = writer, sizes, mms
        self.tables: dict[int, list] = {}     # pfn → record (LIFE … SHOWN)
        self.mm_bytes: dict[Any, int] = {}
        self.mm_empty: dict[Any, int] = {}
        #: Whether the window has started (the caller opens it with :meth:`start`).
        self.open = False

    def shown(self, mm: Any) -> bool:
        return self.open and (self.mms is None or mm in self.mms)

    def has(self, pfn: Any) -> bool:
        return pfn in self.tables

    def start(self, ts: Any) -> None:
        """The window opens at ``ts``: the counters as they stand, and a begin for each
        PTE table alive (its allocation was before the window)."""
        self.open = True
        for mm in self.mm_bytes:
            if self.shown(mm):
                self._counters(mm, ts)
        for pfn, t in self.tables.items():
            if t[LEVEL] == v.LEVEL_PTE and self.shown(t[MM]):
                self._begin(pfn, t, ts, {"allocated": "before the window"})

    def update(self, kind: int, f: tuple, ts: Any, index: int) -> None:
        if kind == _ALLOC:
            self._alloc(f, ts, index)
        elif kind == _SET or kind == _CLEAR:
            t = self.tables.get(f[1])
            if t is None or type(f[2]) is not int:
                return
            was = t[PRESENT]
            t[PRESENT] = was + f[2] if kind == _SET else max(0, was - f[2])
            if t[ATTACHED] and t[LEVEL] == v.LEVEL_PTE and (was == 0) != (t[PRESENT] == 0):
                self.mm_empty[t[MM]] += 1 if t[PRESENT] == 0 else -1
                self._counters(t[MM], ts)
        elif kind == _DETACH:
            t = self.tables.get(f[1])
            if t is None or not t[ATTACHED]:
                return
            t[ATTACHED] = False
            self._unaccount(t, ts)
            self._step(f[1], t, "detached", ts, index, f[2])
        elif kind == _QUEUE:
            t = self.tables.get(f[0])
            if t is not None:
                self._step(f[0], t, "queued", ts, index, f[1])
        elif kind == _FREE:
            self._close(f[0], ts, {"freed": True, "event": index})

    def _alloc(self, f: tuple, ts: Any, index: int) -> None:
        mm, level, pfn = f[0], f[1], f[2]
        self._close(pfn, ts, {"freed": False, "replaced": True})
        t = self.tables[pfn] = [self.w.flow_id(), mm, level, 0, True, False]
        self.mm_bytes[mm] = self.mm_bytes.get(mm, 0) + self.sizes.table_bytes(level)
        if level == v.LEVEL_PTE:
            self.mm_empty[mm] = self.mm_empty.get(mm, 0) + 1
            if self.shown(mm):
                self._begin(pfn, t, ts, {"addr": to_json(f[3]), "event": index})
        else:
            self.mm_empty.setdefault(mm, 0)
        self._counters(mm, ts)

    def _unaccount(self, t: list, ts: Any) -> None:
        """A table leaves its mm (detached, or freed or replaced while attached)."""
        mm = t[MM]
        self.mm_bytes[mm] -= self.sizes.table_bytes(t[LEVEL])
        if t[LEVEL] == v.LEVEL_PTE and t[PRESENT] == 0:
            self.mm_empty[mm] -= 1
        self._counters(mm, ts)

    def _begin(self, pfn: int, t: list, ts: Any, args: dict) -> None:
        t[SHOWN] = True
        pid = self.w.mm_track(t[MM])
        self.w.emit({"ph": "b", "cat": "pte_table", "name": f"PTE table {pfn:#x}",
                     "id": t[LIFE], "pid": pid, "tid": pid, "ts": ts,
                     "args": {"pfn": f"{pfn:#x}", **args}})

    def _step(self, pfn: int, t: list, what: str, ts: Any, index: int, how: Any) -> None:
        if t[SHOWN]:
            pid = self.w.mm_track(t[MM])
            self.w.emit({"ph": "n", "cat": "pte_table", "name": f"PTE table {pfn:#x}",
                         "id": t[LIFE], "pid": pid, "tid": pid, "ts": ts,
                         "args": {"step": what, "how": to_json(how), "event": index}})

    def _close(self, pfn: Any, ts: Any, args: dict) -> None:
        t = self.tables.pop(pfn, None)
        if t is None:
            return
        if t[ATTACHED]:
            self._unaccount(t, ts)
        if t[SHOWN]:
            pid = self.w.mm_track(t[MM])
            self.w.emit({"ph": "e", "cat": "pte_table", "name": f"PTE table {pfn:#x}",
                         "id": t[LIFE], "pid": pid, "tid": pid, "ts": ts, "args": args})

    def _counters(self, mm: Any, ts: Any) -> None:
        if not self.shown(mm):
            return
        pid = self.w.mm_track(mm)
        self.w.emit({"ph": "C", "name": "VmPTE", "pid": pid, "tid": pid, "ts": ts,
                     "args": {"bytes": self.mm_bytes.get(mm, 0)}})
        self.w.emit({"ph": "C", "name": "PTE tables", "pid": pid, "tid": pid, "ts": ts,
                     "args": {"empty": self.mm_empty.get(mm, 0)}})

    def finish(self, ts: Any) -> None:
        """The lives still open end with the output's last event."""
        for pfn in list(self.tables):
            t = self.tables.pop(pfn)
            if t[SHOWN]:
                pid = self.w.mm_track(t[MM])
                self.w.emit({"ph": "e", "cat": "pte_table", "name": f"PTE table {pfn:#x}",
                             "id": t[LIFE], "pid": pid, "tid": pid, "ts": ts,
                             "args": {"freed": False}})
