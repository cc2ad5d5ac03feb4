"""The replayed state at one instant, and the append-only history of table pages.

:class:`ReplayState` holds only dicts of immutable values and ints, so a
checkpoint is a shallow copy of each dict (C speed, O(live state)), and
restoring one is another. :class:`TableLog` is the columnar history of every
table page ever allocated: set-once timestamps and event indices per step,
indexed by table id (``tid``, allocation order). The state says which step a
live table has reached; the log says when each step happened.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

# Lifecycle stages of an allocated table. Empty/non-empty is the `present` count.
# A freed table leaves the state's dicts; its history stays in the TableLog.
ATTACHED, DETACHED, QUEUED, RCU_PENDING = 0, 1, 2, 3

# Classes a PTE table falls in (SPEC §5), plus the ones that are not news.
CLASSES = ("reclaimed", "freed_unmap", "freed_collapse", "empty_attached", "in_flight",
           "lost", "live")

# 0: not detached. The causes of vocab.DETACH_CAUSES, in its order.
DETACH_CODES = {"reclaim": 1, "munmap": 2, "exit": 3, "collapse": 4, "huge_zap": 5, "other": 6}
DETACH_NAMES = {v: k for k, v in DETACH_CODES.items()}
FREE_CODES = {"rcu": 1, "ipi_sync": 2, "direct": 3}
FREE_NAMES = {v: k for k, v in FREE_CODES.items()}
VIA_CODES = {"batch": 1, "single": 2}
VIA_NAMES = {v: k for k, v in VIA_CODES.items()}

_DICTS = ("tid_of", "stage", "present", "empty_since", "mm_tables", "mm_bytes", "mm_peak",
          "mm_pids", "mm_comm", "mm_exit", "walkers", "ipi_inflight", "rcu_pending",
          "gp_open", "sync_open", "tlb_flushes", "ipis_sent", "ipis_received", "lost",
          "mm_freed", "pid_mm", "provenance")
_INTS = ("index", "ts", "next_tid", "pt_bytes", "pt_peak", "gp_done_after", "orphans",
         "freed_reclaimed", "freed_unmap", "freed_collapse", "rcu_invoked", "markers")


class ReplayState:
    """Everything true at one instant of the trace.

    Tables (keyed by pfn; a pfn is one table at a time):
      ``tid_of`` pfn → tid of the allocated table; ``stage`` pfn → lifecycle stage;
      ``present`` pfn → present entries (PTE tables); ``empty_since`` pfn → ts, for
      attached PTE tables with no entry (the "leaked" ones when it stays so).
    Per mm: ``mm_tables`` (mm, level) → attached tables of that level;
      ``mm_bytes`` (VmPTE), ``mm_peak``, ``mm_pids`` (tuple), ``mm_comm``,
      ``mm_exit`` (ts), ``mm_freed`` mm → (reclaimed, freed_unmap, freed_collapse).
    Per CPU: ``walkers`` cpu → (begin_ts, walker, protect, mm, pfns, begin_index);
      ``ipi_inflight`` cpu → tuple of (send_ts, reason, from_cpu, send_index);
      ``sync_open`` cpu → (method, targets, ts, index); counters ``tlb_flushes``,
      ``ipis_sent``, ``ipis_received``, ``lost``.
    RCU: ``rcu_pending`` cb → (queue_ts, func, pfns, queue_index); ``gp_open``
      gp → (start_ts, start_index); ``gp_done_after`` = largest start index of a
      grace period that has ended (a callback queued before it may run).
    ``pid_mm``: task → mm, learnt from mm_new, zaps and allocations (for markers).
    ``provenance``: (kind, inferred) → count of table steps, so a report can say
      which steps the kernel showed and which the importer inferred; the key
      ("table_detach_guessed", True) counts inferred detaches with no known cause.
    Global: ``pt_bytes`` (PageTables), ``pt_peak``, and counts of freed PTE
      tables by class.
    ``index`` is the number of events applied; ``ts`` the last one's time.
    """

    __slots__ = _DICTS + _INTS

    def __init__(self) -> None:
        for name in _DICTS:
            setattr(self, name, {})
        for name in _INTS:
            setattr(self, name, 0)
        self.gp_done_after = -1
        self.ts = -(1 << 63)

    def copy(self) -> "ReplayState":
        """A checkpoint: O(size of the live state), every dict copied in C."""
        new = ReplayState.__new__(ReplayState)
        for name in _DICTS:
            setattr(new, name, getattr(self, name).copy())
        for name in _INTS:
            setattr(new, name, getattr(self, name))
        return new

    def size(self) -> int:
        """Entries in all its dicts: what a :meth:`copy` costs. O(1)."""
        return sum(len(getattr(self, name)) for name in _DICTS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplayState) and all(
            getattr(self, n) == getattr(other, n) for n in _DICTS + _INTS)

    def differences(self, other: "ReplayState") -> list[str]:
        """Names of the fields that differ (for test failure messages)."""
        return [n for n in _DICTS + _INTS if getattr(self, n) != getattr(other, n)]

    @property
    def empty_attached(self) -> int:
        return len(self.empty_since)

    @property
    def rcu_pending_count(self) -> int:
        return len(self.rcu_pending)


# Slots of one table's record in the TableLog (int64 each).
(T_PFN, T_MM, T_ADDR, T_LEVEL, T_ALLOC_TS, T_ALLOC_IDX, T_DETACH_TS, T_DETACH_IDX,
 T_QUEUE_TS, T_QUEUE_IDX, T_RCU_TS, T_RCU_IDX, T_FREE_TS, T_FREE_IDX, T_DETACH_CAUSE,
 T_VIA, T_FREE_PATH, T_LEAK_TS) = range(18)
T_WIDTH = 18
_I64_MAX, _WRAP = (1 << 63) - 1, 1 << 64
_STEPS_UNSET = (-1,) * (T_WIDTH - T_ALLOC_IDX - 1)


class TableLog:
    """Append-only history of table pages: one int64 record of ``T_WIDTH`` slots
    per table, indexed by tid (allocation order), in one int64 buffer.

    Steps not reached are -1. ``mm`` is stored as an index into :attr:`mms`.
    ``T_LEAK_TS``: for a PTE table that munmap or exit detached after it had sat
    empty but attached (the memory PT_RECLAIM would have got back), since when.
    Memory: 144 bytes per table page, whatever its life, plus 16 for the index by
    pfn, plus the spare room the buffer grows into (none when the trace's footer
    counted its allocations: the replay makes the log that size at once). ``append``
    is one C-level copy; :meth:`tids_of` (and ``find``) is O(log n) in C plus a scan
    of the tables appended since the index was built, which is rebuilt (O(n log n))
    once those are more than an eighth.

    The buffer is a numpy array (its pages come huge where the kernel allows: an
    ``array('q')`` grown by the load page-faulted every 4 KiB of it) that doubles
    when full: the records are copied to a new one, and a reader holding the old
    one (a view, on another thread) keeps reading what it held. :attr:`data`, the
    records so far as a flat ``memoryview`` of int64 (format ``q``), is such a view.
    """

    __slots__ = ("_buf", "_mv", "_n", "mms", "mm_index", "_index", "_tail")

    def __init__(self, expected_tables: int = 0) -> None:
        """``expected_tables``: room made at once (the allocations a trace's footer
        counts); past it the buffer doubles. A count too large to reserve (a footer
        that lies) reserves nothing: the log grows as tables come."""
        import numpy as np
        try:
            self._buf = np.empty(expected_tables * T_WIDTH, np.int64)
        except (MemoryError, ValueError):
            self._buf = np.empty(0, np.int64)
        self._mv = memoryview(self._buf).cast("B").cast("q")
        self._n = 0                   # slots in use (records * T_WIDTH)
        self.mms: list[int] = []
        self.mm_index: dict[int, int] = {}
        # (pfns sorted, their tids, tables indexed): one tuple, replaced whole, so a
        # reader on another thread (the UI, while the load appends) sees one index.
        self._index: tuple[Any, Any, int] | None = None
        # The same for the tables appended since (pfns, tids, up to, from).
        self._tail: tuple[Any, Any, int, int] | None = None

    @property
    def data(self) -> memoryview:
        """The records so far, flat: a view of the buffer as it is now (slices of a
        memoryview are views too; ``bytes``/``tobytes`` or a numpy copy make copies)."""
        return self._mv[:self._n]

    def __len__(self) -> int:
        return self._n // T_WIDTH

    @property
    def capacity(self) -> int:
        """Records the buffer holds before it next grows."""
        return len(self._buf) // T_WIDTH

    def _reserve(self, tables: int) -> None:
        """Room for ``tables`` more records past the last."""
        import numpy as np
        need = self._n + tables * T_WIDTH
        if need <= len(self._buf):
            return
        buf = np.empty(max(need, 2 * len(self._buf), 1024 * T_WIDTH), np.int64)
        buf[:self._n] = self._buf[:self._n]
        # Swapped buffer first, then the view of it: a reader takes ``data`` (the view)
        # and sees the old buffer or the new one, each holding every record so far.
        self._buf = buf
        self._mv = memoryview(buf).cast("B").cast("q")

    def spare(self, tables: int):
        """The buffer's records 0 .. ``len(self) + tables`` as a (n, T_WIDTH) numpy view,
        room made for ``tables`` new records past the last (whose slots hold anything):
        the bulk fold fills them, then :meth:`publish` makes them part of the log (a
        reader never sees one half written)."""
        self._reserve(tables)
        return self._buf[:self._n + tables * T_WIDTH].reshape(-1, T_WIDTH)

    def publish(self, tables: int) -> None:
        self._n += tables * T_WIDTH

    def append(self, pfn: int, mm: int, level: int, addr: int, ts: int, idx: int) -> int:
        tid = self._n // T_WIDTH
        m = self.mm_index.get(mm)
        if m is None:
            m = self.mm_index[mm] = len(self.mms)
            self.mms.append(mm)
        self._reserve(1)
        # Addresses are unsigned 64-bit; the int64 slot holds them two's-complement
        # (a sparc64 or kernel-half address has the top bit set).
        self._mv[self._n:self._n + T_WIDTH] = array("q", (
            pfn, m, addr - _WRAP if addr > _I64_MAX else addr, level, ts, idx) + _STEPS_UNSET)
        self._n += T_WIDTH
        return tid

    def get(self, tid: int, slot: int) -> int:
        return self._mv[tid * T_WIDTH + slot]

    def mm(self, tid: int) -> int:
        return self.mms[self._mv[tid * T_WIDTH + T_MM]]

    def level(self, tid: int) -> int:
        return self._mv[tid * T_WIDTH + T_LEVEL]

    def set(self, tid: int, slot: int, value: int) -> None:
        self._mv[tid * T_WIDTH + slot] = value

    def set_step(self, tid: int, ts_slot: int, ts: int, idx: int) -> None:
        base = tid * T_WIDTH
        mv = self._mv
        mv[base + ts_slot] = ts
        mv[base + ts_slot + 1] = idx

    def tids_of(self, pfn: int) -> list[int]:
        """The tids of the tables that lived at ``pfn``, in allocation order."""
        import numpy as np
        n = len(self)
        index = self._index
        if index is None or n - index[2] > max(1024, index[2] // 8):
            index = self._index = _sorted_pfns(self.data, 0, n)
        if not -_WRAP // 2 <= pfn <= _I64_MAX:
            return []
        tids = _lookup(index, pfn)
        done = index[2]
        if done < n:
            # The tables appended since: a second index of those, rebuilt each 1,024
            # new tables (a scan of them all per call made a walker reading pfns the
            # log does not hold cost O(n / 8) each), then a scan of the last few.
            tail = self._tail
            if tail is None or tail[3] != done or n - tail[2] > 1024:
                tail = self._tail = _sorted_pfns(self.data, done, n) + (done,)
            tids += _lookup(tail, pfn)
            if tail[2] < n:
                rest = np.frombuffer(self.data[tail[2] * T_WIDTH:n * T_WIDTH], np.int64)
                tids += (np.flatnonzero(rest[T_PFN::T_WIDTH] == pfn) + tail[2]).tolist()
        return tids

    @property
    def generations(self) -> dict[int, list[int]]:
        """pfn → tids in allocation order, for every pfn. O(n); :meth:`tids_of` asks
        for one."""
        out: dict[int, list[int]] = {}
        for tid, pfn in enumerate(self.data[T_PFN::T_WIDTH]):
            out.setdefault(pfn, []).append(tid)
        return out

    def find(self, pfn: int, generation: int) -> int | None:
        """tid of the ``generation``-th table (0-based) that lived at ``pfn``."""
        tids = self.tids_of(pfn)
        return tids[generation] if 0 <= generation < len(tids) else None

    def generation(self, tid: int) -> int:
        return self.tids_of(self.get(tid, T_PFN)).index(tid)

    def record(self, tid: int) -> dict[str, Any]:
        """One table's record by name (codes decoded)."""
        r = self.data[tid * T_WIDTH:(tid + 1) * T_WIDTH].tolist()
        names = ("pfn", "mm", "addr", "level", "alloc_ts", "alloc_idx", "detach_ts",
                 "detach_idx", "queue_ts", "queue_idx", "rcu_ts", "rcu_idx", "free_ts",
                 "free_idx")
        out: dict[str, Any] = dict(zip(names, r))
        out["mm"] = self.mms[r[T_MM]]
        out["addr"] = r[T_ADDR] % _WRAP
        out["generation"] = self.generation(tid)
        out["detach_cause"] = DETACH_NAMES.get(r[T_DETACH_CAUSE])
        out["via"] = VIA_NAMES.get(r[T_VIA])
        out["free_path"] = FREE_NAMES.get(r[T_FREE_PATH])
        out["leaked_since"] = r[T_LEAK_TS] if r[T_LEAK_TS] >= 0 else None
        return out

    def nbytes(self) -> int:
        return 8 * self._n


def _sorted_pfns(data: memoryview, lo: int, hi: int) -> tuple[Any, Any, int]:
    """(pfns of tables ``lo:hi`` sorted, their tids, ``hi``): a copy of that span's."""
    import numpy as np
    pfns = np.frombuffer(data[lo * T_WIDTH:hi * T_WIDTH], np.int64)[T_PFN::T_WIDTH]
    order = np.argsort(pfns, kind="stable")
    return pfns[order], order + lo, hi


def _lookup(index: tuple, pfn: int) -> list[int]:
    import numpy as np
    pfns, tids = index[0], index[1]
    return tids[np.searchsorted(pfns, pfn):np.searchsorted(pfns, pfn, "right")].tolist()


@dataclass(frozen=True, slots=True)
class Finding:
    """A safety-check result. ``events`` are the global indices of the events that prove it."""

    kind: str
    ts: int
    cpu: int | None
    pfn: int | None
    mm: int | None
    message: str
    events: tuple[int, ...] = ()
    #: When the evidence starts (None: at ``ts``), and whether only events of
    #: ``cpu`` could clear it; what :mod:`replayer.losses` needs to tell whether
    #: a hole in the trace may hide the event that would make it false.
    since: int | None = None
    on_cpu: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ts": self.ts, "cpu": self.cpu, "pfn": self.pfn,
                "mm": self.mm, "message": self.message, "events": list(self.events)}


FINDING_KINDS = ("use_after_free", "double_free", "free_attached", "free_nonempty",
                 "rcu_early", "ipi_unanswered", "events_lost")
