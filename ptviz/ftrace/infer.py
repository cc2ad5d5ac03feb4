"""Stock tracepoints → the page-table story (SPEC §6), every derived fact marked inferred.

* A page-table page is an order-0 ``mm_page_alloc`` with ``GFP_KERNEL_ACCOUNT``
  and ``__GFP_ZERO`` (GFP_PGTABLE_USER, KF §6) by a task right after its
  ``page_fault_user`` on the same CPU; the last such allocation of one fault is
  the PTE table, earlier ones are upper levels (pud_alloc, pmd_alloc, then
  pte_alloc in __handle_mm_fault). The fault address gives the span.
* A fault sets an entry in the PTE table covering its address.
* ``mm_page_free`` of such a pfn frees the table (softirq context ⇒ the RCU
  callback, else a direct free) and ends the pfn's life as a table.
* The detach (where VmPTE drops) is placed at the zap that covered the table:
  an MADV_DONTNEED covering its whole span (PT_RECLAIM), a munmap, or the
  process's exit; without one, just before the free. The free may come tens
  of ms later, so output is held in a reorder window and the detach inserted
  at its true time.
* The mm is the thread group (tgid when recorded; else fork events map a
  thread to its process).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, Callable

from replayer import vocab as v

from .infer_context import ContextSteps
from .infer_probes import ProbeSteps
from .textparse import COUNT_END, I64_END, PID_END, U64_END, Loss, Record, field, fields
from .textparse import number as _int

WINDOW_NS = 2_000_000_000          # RCU frees of tables come ~15-30 ms after the detach
# A fault's table allocations follow it closely (2-5 µs on 6.18 natively; up to ~250 µs
# under QEMU's TCG); a syscall or fork by the task also ends the fault (dup_mmap, GUP).
FAULT_WINDOW_NS = 2_000_000
MADV = {4: "dontneed", 8: "free", 24: "dontneed"}   # MADV_DONTNEED, _FREE, _DONTNEED_LOCKED
PMD_SPAN, PUD_SPAN, P4D_SPAN = 1 << 21, 1 << 30, 1 << 39
_SPANS = {v.LEVEL_PTE: PMD_SPAN, v.LEVEL_PMD: PUD_SPAN, v.LEVEL_PUD: P4D_SPAN}
# A user fault address is in the lower half on the architectures ftrace captures come
# from (x86_64, arm64, riscv64: the upper half is the kernel's); one above is no user
# page table's.
USER_END = I64_END
PFN_END = I64_END


class Inference(ProbeSteps, ContextSteps):
    """Feed records in time order; events come out through ``emit`` in time order."""

    def __init__(self, emit: Callable[[int, int, int, int | None, tuple, str | None], None],
                 pt_reclaim: bool | None = None) -> None:
        self._emit = emit
        #: Whether the kernel reclaims empty PTE tables on MADV_DONTNEED (None: unknown,
        #: treated as possible).
        self.pt_reclaim = pt_reclaim
        # The reorder window: events come out at their own time almost always (a FIFO);
        # the few placed earlier (a detach at its zap) wait in a heap. Both drain in
        # (ts, seq) order. O(1) per in-order event, O(log n) per placed one.
        self._fifo: deque[tuple] = deque()
        self._fifo_ts = -(1 << 63)
        self._heap: list[tuple] = []
        self._seq = 0
        self._drain_at = -(1 << 63)
        self._handlers: dict[str, Any] = {}        # event name → bound handler or None
        self._last_ts = 0
        self._lost: dict[int, int | None] = {}      # cpu → events dropped before its next
        self.tgid_of: dict[int, int] = {}
        self.mm_of: dict[int, int] = {}            # tgid → mm id (tgid | generation << 32)
        self._mm_gen: dict[int, int] = {}
        self.fault: dict[int, list] = {}            # cpu → [pid, addr, ts, allocs]
        self.tables: dict[int, dict[str, Any]] = {}  # pfn → {mm, level, addr, n}
        self.spans: dict[tuple[int, int], int] = {}  # (mm, pmd index) → pte pfn
        self.zaps: dict[int, list] = {}             # mm → recent [ts, start, end, cause]
        self.madvise: dict[int, tuple] = {}         # pid → (ts, start, end, cause)
        self.in_teardown: dict[int, str] = {}       # pid → "munmap" | "exit" while in it
        self.counts = {"tables": 0, "frees": 0, "raw": 0, "detach_at_zap": 0,
                       "detach_guessed": 0}
        self._init_probes()
        self._init_context()

    # -- output through the reorder window -------------------------------------
    def out(self, ts: int, kind: int, cpu: int, pid: int | None, fields_: tuple,
            comm: str | None) -> None:
        self._seq += 1
        item = (ts, self._seq, kind, cpu, pid, fields_, comm)
        if ts >= self._fifo_ts:
            self._fifo_ts = ts
            self._fifo.append(item)
        else:
            heapq.heappush(self._heap, item)

    def _drain(self, before: int | None) -> None:
        heap, fifo, emit = self._heap, self._fifo, self._emit
        limit = (1 << 64) if before is None else before
        while True:
            if heap and (not fifo or heap[0] < fifo[0]):
                if heap[0][0] >= limit:
                    return
                ts, _, kind, cpu, pid, f, comm = heapq.heappop(heap)
            elif fifo and fifo[0][0] < limit:
                ts, _, kind, cpu, pid, f, comm = fifo.popleft()
            else:
                return
            emit(ts, kind, cpu, pid, f, comm)

    def finish(self) -> None:
        for cpu in list(self.fault):
            self._close_fault(cpu)
        for cpu in list(self._lost):          # no later record on that CPU
            self._emit_lost(cpu, self._last_ts)
        self._drain(None)

    def _emit_lost(self, cpu: int, ts: int) -> None:
        self.out(ts, v.LOST, cpu, None, (self._lost.pop(cpu),), None)

    def _raw(self, rec: Record) -> None:
        """An event with no mapping: kept whole, as its name and payload text."""
        self.out(rec.ts, v.RAW, rec.cpu, rec.pid, (rec.name, {"text": rec.payload}), rec.comm)

    # -- identities ----------------------------------------------------------
    def _mm(self, rec: Record) -> int:
        tgid = rec.tgid if rec.tgid is not None else self.tgid_of.get(rec.pid, rec.pid)
        self.tgid_of[rec.pid] = tgid
        mm = self.mm_of.get(tgid)
        if mm is None:
            mm = self.mm_of[tgid] = tgid | (self._mm_gen.get(tgid, 0) << 32)
            self.out(rec.ts, v.MM_NEW, rec.cpu, rec.pid, (mm, tgid, rec.comm), rec.comm)
        return mm

    # -- the stream ----------------------------------------------------------
    def feed(self, rec: Record | Loss) -> None:
        if isinstance(rec, Loss):
            # The events were dropped on that CPU before its next record (the kernel
            # prints the marker just before it): the loss is placed there, so that the
            # window it opens on that CPU ends at the right event. Several are summed;
            # a count that does not fit the field is unknown (None).
            total = self._lost.get(rec.cpu, 0)
            total = None if total is None or rec.count is None else total + rec.count
            self._lost[rec.cpu] = total if total is not None and total < COUNT_END else None
            return
        ts = self._last_ts = rec.ts
        if self._lost and rec.cpu in self._lost:
            self._emit_lost(rec.cpu, ts)
        if ts >= self._drain_at:            # drain once per ms of trace, not per line
            self._drain(ts - WINDOW_NS)
            self._drain_at = ts + 1_000_000
        name = rec.name
        try:
            handler = self._handlers[name]
        except KeyError:
            handler = self._handlers[name] = getattr(self, "_on_" + name, None)
        if name[:4] == "sys_":
            fault = self.fault.get(rec.cpu)
            if fault is not None and fault[0] == rec.pid:
                self._close_fault(rec.cpu)   # a syscall means the fault is over (fork!)
        if handler is not None:
            handler(rec)
        elif rec.payload[:1] == "(" and self._probe(rec):
            pass
        else:
            self.counts["raw"] += 1
            self._raw(rec)

    def _close_fault(self, cpu: int) -> None:
        fault = self.fault.pop(cpu, None)
        if fault is None:
            return
        pid, addr, ts, allocs, mm, comm = fault
        levels = [v.LEVEL_PTE, v.LEVEL_PMD, v.LEVEL_PUD, v.LEVEL_P4D]
        for (t, pfn), level in zip(reversed(allocs), levels):
            base = addr - addr % _SPANS.get(level, P4D_SPAN)
            self.tables[pfn] = {"mm": mm, "level": level, "addr": base, "n": 0, "last": t}
            seen = False
            if level == v.LEVEL_PTE:
                self.spans[(mm, addr // PMD_SPAN)] = pfn
                seen = pfn in self.confirmed          # a pte_alloc_one probe returned it
                self.confirmed.discard(pfn)
            self.counts["tables"] += 1
            self.out(t, v.TABLE_ALLOC, cpu, pid, (mm, level, pfn, base, not seen), comm)
        pfn = self.spans.get((mm, addr // PMD_SPAN))
        if pfn is not None and pfn in self.tables:
            at = max([ts] + [t for t, _ in allocs]) + 1   # after the fault's own tables
            table = self.tables[pfn]
            table["n"] += 1
            table["last"] = at
            self.out(at, v.PTE_SET, cpu, pid, (mm, pfn, 1, True), comm)

    def _on_page_fault_user(self, rec: Record) -> None:
        self._close_fault(rec.cpu)
        addr = _int(field(rec.payload, "address="), hi=USER_END)
        if addr is not None and rec.pid is not None:
            self.fault[rec.cpu] = [rec.pid, addr, rec.ts, [], self._mm(rec), rec.comm]
        self._raw(rec)

    def _on_mm_page_alloc(self, rec: Record) -> None:
        p = rec.payload
        pfn, gfp = _int(field(p, "pfn="), hi=PFN_END), field(p, "gfp_flags=") or ""
        if self.pages.learning:
            self._learn_page(fields(p), pfn)
        fault = self.fault.get(rec.cpu)
        is_table = ("GFP_KERNEL_ACCOUNT" in gfp and "__GFP_ZERO" in gfp
                    and field(p, "order=") == "0" and "s" not in rec.flags[2:3])
        if pfn is not None and pfn in self.tables:
            self._free(rec, pfn, "direct")        # a free we did not see; pfn reused
        if is_table and fault is not None and fault[0] == rec.pid and pfn is not None \
                and rec.ts - fault[2] <= FAULT_WINDOW_NS:
            fault[3].append((rec.ts, pfn))
            return
        if fault is not None and fault[0] == rec.pid:
            self._close_fault(rec.cpu)            # the data page: the fault's tables are known
        self._raw(rec)

    def _on_mm_page_free(self, rec: Record) -> None:
        # The most frequent line of a capture: the pfn without a full field parse.
        p = rec.payload
        pfn = _int(field(p, "pfn="), hi=PFN_END)
        if self.pages.learning:
            self._learn_page(fields(p), pfn)
        if pfn is not None and pfn in self.tables:
            self._free(rec, pfn, "rcu" if "s" in rec.flags[2:3] else "direct")
            return
        self._raw(rec)

    _on_mm_page_free_batched = _on_mm_page_free

    def _free(self, rec: Record, pfn: int, path: str) -> None:
        t = self.tables.pop(pfn)
        mm, level, base = t["mm"], t["level"], t["addr"]
        if level == v.LEVEL_PTE and self.spans.get((mm, base // PMD_SPAN)) == pfn:
            del self.spans[(mm, base // PMD_SPAN)]
        if t.get("queued"):
            self._unqueued_at_free(pfn)
        if t.get("detached"):        # a probe saw the detach: this is the table's free
            self.out(rec.ts, v.TABLE_FREE, rec.cpu, rec.pid, (pfn, path, False), rec.comm)
            self.counts["frees"] += 1
            return
        span = _SPANS.get(level, P4D_SPAN)
        # The earliest zap after the table's last fault that could have detached it:
        # a munmap or exit covering it, or (with PT_RECLAIM) an MADV_DONTNEED covering
        # its whole span (KF §2.2).
        detachers = ("munmap", "exit") + (("dontneed",) if self.pt_reclaim is not False
                                          and level == v.LEVEL_PTE else ())
        zap = None
        for z in self.zaps.get(mm, ()):
            ts, start, end, cause = z
            covers = start <= base and base + span <= end or cause == "exit"
            if covers and cause in detachers and t["last"] <= ts and ts > rec.ts - WINDOW_NS:
                zap = z
                break
        if zap is not None:
            at, cause = zap[0] + 1, {"dontneed": "reclaim"}.get(zap[3], zap[3])
            self.counts["detach_at_zap"] += 1
        else:
            at, cause = rec.ts - 1, "other"
            self.counts["detach_guessed"] += 1
        if level == v.LEVEL_PTE and t["n"]:
            self.out(at, v.PTE_CLEAR, rec.cpu, rec.pid, (mm, pfn, t["n"], True), rec.comm)
        self.out(at, v.TABLE_DETACH, rec.cpu, rec.pid, (mm, pfn, cause, True), rec.comm)
        self.out(rec.ts, v.TABLE_FREE, rec.cpu, rec.pid, (pfn, path, True), rec.comm)
        self.counts["frees"] += 1

    def _note_zap(self, mm: int, ts: int, start: int, end: int, cause: str) -> None:
        """Remember a zap of ``mm`` (the last 64) for placing detaches at frees."""
        zaps = self.zaps.setdefault(mm, [])
        zaps.append([ts, start, end, cause])
        del zaps[:-64]

    def _tgid(self, rec: Record) -> int:
        return self.tgid_of.get(rec.pid, rec.tgid if rec.tgid is not None else rec.pid)

    def _end_mm(self, rec: Record, tgid: int) -> None:
        """The process's mm is gone (exit, exec): later events start a new one."""
        mm = self.mm_of.pop(tgid)
        self._note_zap(mm, rec.ts, 0, 1 << 64, "exit")
        self.out(rec.ts, v.MM_EXIT, rec.cpu, rec.pid, (mm,), rec.comm)
        self._mm_gen[tgid] = self._mm_gen.get(tgid, 0) + 1

    def _zap(self, rec: Record, start: int, end: int, cause: str) -> None:
        mm = self._mm(rec)
        self._note_zap(mm, rec.ts, start, end, cause)
        self.out(rec.ts, v.ZAP_BEGIN, rec.cpu, rec.pid, (mm, start, end, cause, True), rec.comm)
        # Every entry of a PTE table whose whole span the zap covers is now none; the
        # table stays attached unless PT_RECLAIM or free_pgtables detaches it (seen at
        # its free). O(tables of this mm).
        for (owner, index), pfn in list(self.spans.items()):
            table = self.tables.get(pfn)
            if owner != mm or table is None or not table["n"]:
                continue
            if start <= index * PMD_SPAN and (index + 1) * PMD_SPAN <= end:
                self.out(rec.ts, v.PTE_CLEAR, rec.cpu, rec.pid, (mm, pfn, table["n"], True),
                         rec.comm)
                table["n"] = 0

    def _on_sys_madvise(self, rec: Record) -> None:
        """The syscall tracer's layout: ``sys_madvise(start: …)`` or ``sys_madvise -> ret``."""
        if rec.payload.startswith("->"):
            self._madvise_exit(rec)
        else:
            self._madvise_enter(rec)

    def _madvise_enter(self, rec: Record) -> None:
        f = fields(rec.payload)
        start, length, behavior = (_int(f.get("start"), True), _int(f.get("len_in"), True),
                                   _int(f.get("behavior"), True))
        cause = MADV.get(behavior)
        if start is None or length is None or cause is None or rec.pid is None \
                or start + length >= U64_END:
            self._raw(rec)
            return
        self.madvise[rec.pid] = (rec.ts, start, start + length, cause)
        self._zap(rec, start, start + length, cause)

    def _madvise_exit(self, rec: Record) -> None:
        begin = self.madvise.pop(rec.pid, None)
        if begin is not None:
            self.out(rec.ts, v.ZAP_END, rec.cpu, rec.pid, (self._mm(rec), *begin[1:], True),
                     rec.comm)

    # trace-cmd report names the syscall events and prints the format files' fmt
    # ("start: 0x…, len_in: 0x…, behavior: 0x…" / "0x0").
    _on_sys_enter_madvise = _madvise_enter
    _on_sys_exit_madvise = _madvise_exit

    def _on_sys_munmap(self, rec: Record) -> None:
        if rec.payload.startswith("->"):
            self._munmap_exit(rec)
        else:
            self._munmap_enter(rec)

    def _munmap_enter(self, rec: Record) -> None:
        f = fields(rec.payload)
        addr, length = _int(f.get("addr"), True), _int(f.get("len"), True)
        if addr is not None and length is not None and rec.pid is not None \
                and addr + length < U64_END:
            self.in_teardown[rec.pid] = "munmap"
            self._zap(rec, addr, addr + length, "munmap")
        else:
            self._raw(rec)

    def _munmap_exit(self, rec: Record) -> None:
        if self.in_teardown.get(rec.pid) == "munmap":
            del self.in_teardown[rec.pid]
        self._raw(rec)

    _on_sys_enter_munmap = _munmap_enter
    _on_sys_exit_munmap = _munmap_exit

    def _on_sys_exit_group(self, rec: Record) -> None:
        self._teardown(rec)                     # exit_mmap follows (if the last user)
        self._raw(rec)

    def _teardown(self, rec: Record) -> None:
        """The task's mm is about to be torn down (exit_group, execve): tables freed from
        here on were detached by it. sched_process_exit comes after exit_mm on older
        kernels, too late to place those detaches."""
        self.in_teardown[rec.pid] = "exit"
        mm = self.mm_of.get(self._tgid(rec))
        if mm is not None:
            self._note_zap(mm, rec.ts, 0, 1 << 64, "exit")

    _on_sys_enter_exit_group = _on_sys_exit_group

    def _on_sched_process_exit(self, rec: Record) -> None:
        tgid = self._tgid(rec)
        if rec.pid == tgid and tgid in self.mm_of:
            self.in_teardown[rec.pid] = "exit"
            self._end_mm(rec, tgid)
        self._raw(rec)

    def _on_sys_execve(self, rec: Record) -> None:
        self._teardown(rec)                     # exec_mmap drops the old mm
        self._raw(rec)

    _on_sys_enter_execve = _on_sys_execve

    def _on_sched_process_exec(self, rec: Record) -> None:
        """The task runs in a new mm: the old one (if it was the last user) is gone."""
        self.in_teardown.pop(rec.pid, None)
        tgid = self._tgid(rec)
        self._close_fault(rec.cpu)
        if tgid in self.mm_of:
            self._end_mm(rec, tgid)
        self._raw(rec)

    def _on_sched_process_fork(self, rec: Record) -> None:
        self._close_fault(rec.cpu)
        f = fields(rec.payload)
        child = _int(f.get("child_pid"), hi=PID_END)
        # Without tgids, a child whose pid is new is a process; threads need record-tgid.
        if child is not None and child not in self.tgid_of:
            self.tgid_of[child] = child
        self._raw(rec)

    def _on_tracing_mark_write(self, rec: Record) -> None:
        if rec.pid is not None:                 # a line without a task column has no mm
            self._mm(rec)
        self.out(rec.ts, v.MARKER, rec.cpu, rec.pid, (rec.payload,), rec.comm)
