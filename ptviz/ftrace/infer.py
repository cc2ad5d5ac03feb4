"""Stock tracepoints → the page-table story (SPEC §6), every derived fact marked inferred.

* A page-table page is an order-0 ``mm_page_alloc`` with ``GFP_KERNEL_ACCOUNT``
  and ``__GFP_ZERO`` (GFP_PGTABLE_USER, docs/kernel-facts.md §6) in process context. After a task's
  ``page_fault_user`` (or ``page_fault_kernel`` on a user address), the fault's
  allocations are its tables: the last the PTE table, earlier ones upper levels
  (pud_alloc, pmd_alloc, then pte_alloc in __handle_mm_fault); the fault address
  gives the span. A fault is the task's, not the CPU's (it may sleep and move). A
  huge-PMD fault's table after its order-9 page is the deposited PTE table.
* Allocations outside a fault are a fork's copies, an exec's or an mremap's tables,
  or GUP's (:mod:`.infer_tasks`, :mod:`.infer_vmas`).
* A fault sets an entry in the PTE table covering its address.
* ``mm_page_free`` of a table's pfn frees it; the detach is placed at the zap that
  freed it (:mod:`.infer_zaps`). Output is held in a reorder window so that the
  detach goes back to its true time.
* The mm is the thread group (tgid when recorded; else fork events map a thread to
  its process).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from operator import itemgetter
from typing import Any, Callable, Iterable

from replayer import vocab as v
from replayer.errors import ImportFormatError

from .infer_context import ContextSteps
from .infer_probes import ProbeSteps
from .infer_tasks import TaskSteps
from .infer_vmas import VmaSteps
from .infer_zaps import P4D_SPAN, PFN_END, PMD_SPAN, SPANS, USER_END, WINDOW_NS, ZapSteps
from .textparse import COUNT_END, Loss, Record, field, fields, number_field

# A fault's table allocations follow it closely (2-5 µs on 6.18 natively; up to ~250 µs
# under QEMU's TCG); a syscall or fork by the task also ends the fault (dup_mmap, GUP).
FAULT_WINDOW_NS = 2_000_000
#: A fault allocates at most one table per level below the pgd (P4D, PUD, PMD, PTE).
MAX_FAULT_TABLES = 4
#: Syscalls whose own table allocations belong to another mm or another span.
_CLAIMING = ("clone", "clone3", "fork", "vfork", "execve", "execveat", "mremap")


#: What the writer takes of a window item (ts, seq, kind, cpu, pid, fields, comm).
_WRITTEN = itemgetter(0, 2, 3, 4, 5, 6)
_TS = itemgetter(0)


class Inference(ZapSteps, TaskSteps, VmaSteps, ProbeSteps, ContextSteps):
    """Feed records in time order; events come out through ``emit`` in time order."""

    def __init__(self, emit: Callable[[int, int, int, int | None, tuple, str | None], None],
                 pt_reclaim: bool | None = None,
                 emit_many: Callable[[Iterable[tuple]], None] | None = None,
                 exported: Any = None) -> None:
        self._emit = emit
        #: The kind table of a ``ptviz convert --to ftrace`` export: its lines are read
        #: back as the events they name, nothing inferred (None: a kernel capture).
        self._exported = exported
        # ``emit_many`` takes (ts, kind, cpu, pid, fields, comm) tuples in a batch
        # (TraceWriter.add_many): a drain writes without a call per event.
        self._emit_many = emit_many or (lambda events: [emit(*e) for e in events])
        #: Whether the kernel reclaims empty PTE tables on MADV_DONTNEED (None: unknown,
        #: treated as possible).
        self.pt_reclaim = pt_reclaim
        # The reorder window: events come out at their own time almost always (a FIFO);
        # the few placed earlier (a detach at its zap) wait in a heap. Both drain in
        # (ts, seq) order. O(1) per in-order event, O(log n) per placed one. The FIFO
        # is a list read from ``_fifo_head`` on: a drain takes its due part as one
        # slice (found by bisection, it is sorted), not an item at a time.
        self._fifo: list[tuple] = []
        self._fifo_head = 0
        self._fifo_ts = -(1 << 63)
        self._heap: list[tuple] = []
        self._seq = 0
        self._drain_at = -(1 << 63)
        self._handlers: dict[str, Any] = {}        # event name → its step (_handler)
        self._last_ts = 0
        self._lost: dict[int, int | None] = {}      # cpu → events dropped before its next
        self.tgid_of: dict[int, int] = {}
        self.mm_of: dict[int, int] = {}            # tgid → mm id (tgid | generation << 32)
        self._mm_gen: dict[int, int] = {}
        # pid → [cpu, addr, ts, allocs, mm, comm, huge page ts, last activity ts]: by
        # task, not CPU, as a fault can sleep (reclaim, clearing a huge page) and resume
        # on another CPU.
        self.fault: dict[int, list] = {}
        self.tables: dict[int, dict[str, Any]] = {}  # pfn → {mm, level, addr, n}
        self.spans: dict[tuple[int, int], int] = {}  # (mm, pmd index) → pte pfn
        # mm → its recent zaps: (ts, start, end, cause, cpu, pid, comm)
        self.zaps: dict[int, tuple[list, list]] = {}   # mm → (zaps, their times)
        self.madvise: dict[int, tuple] = {}         # pid → (ts, start, end, cause)
        self.in_teardown: dict[int, str] = {}       # pid → "munmap" | "exit" while in it
        self.counts = {"tables": 0, "frees": 0, "raw": 0, "detach_at_zap": 0,
                       "detach_guessed": 0, "detach_at_burst": 0, "detach_near_zap": 0,
                       "reclaims": 0, "maybe_reclaims_passed": 0}
        self._init_probes()
        self._init_context()
        self._init_tasks()
        self._init_vmas()

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
        """Write the window's events before ``before`` (all with None), in (ts, seq)
        order: the FIFO's due slice, merged with the heap's due items by one sort
        (two sorted runs: timsort merges them in linear time; seq is unique, so
        the order is the same as popping the smaller head each time)."""
        heap, fifo, head = self._heap, self._fifo, self._fifo_head
        if before is None:
            end = len(fifo)
            placed = sorted(heap)
            heap.clear()
        else:
            end = bisect_left(fifo, before, head, key=_TS)
            placed = []
            while heap and heap[0][0] < before:
                placed.append(heapq.heappop(heap))
        if end == head and not placed:
            return
        out = fifo[head:end]
        if placed:
            out += placed
            out.sort()
        # Forget the slice taken; the list is compacted when its dead head is most of it
        # (deleting a prefix moves the rest: once per half, not per drain).
        if 2 * end >= len(fifo):
            del fifo[:end]
            end = 0
        self._fifo_head = end
        self._emit_many(map(_WRITTEN, out))

    def finish(self) -> None:
        for pid in list(self.fault):
            self._close_fault(pid)
        for cpu in list(self._lost):          # no later record on that CPU
            self._emit_lost(cpu, self._last_ts)
        self._drain(None)

    def _emit_lost(self, cpu: int, ts: int) -> None:
        self.out(ts, v.LOST, cpu, None, (self._lost.pop(cpu),), None)

    def _raw(self, rec: Record) -> None:
        """An event with no mapping: kept whole, as its name and payload text. Most
        lines of a capture end here: :meth:`out` is written out inline."""
        ts = rec.ts
        self._seq += 1
        item = (ts, self._seq, v.RAW, rec.cpu, rec.pid, (rec.name, {"text": rec.payload}),
                rec.comm)
        if ts >= self._fifo_ts:
            self._fifo_ts = ts
            self._fifo.append(item)
        else:
            heapq.heappush(self._heap, item)

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
        if self._exported is not None:
            self._from_export(rec)
            return
        if self._lost and rec.cpu in self._lost:
            self._emit_lost(rec.cpu, ts)
        if ts >= self._drain_at:            # drain once per ms of trace, not per line
            self._close_stale_faults(ts)
            self._drain(ts - WINDOW_NS)
            self._drain_at = ts + 1_000_000
        try:
            handler = self._handlers[rec.name]
        except KeyError:
            handler = self._handlers[rec.name] = self._handler(rec.name)
        handler(rec)

    def _handler(self, name: str) -> Callable[[Record], None]:
        """What :meth:`feed` does with events called ``name``: their ``_on_`` step, or
        a probe's or a raw event's; for a syscall, after what every syscall ends.
        Chosen once per name (feed runs once per line)."""
        own = getattr(self, "_on_" + name, None)
        step = own if own is not None else self._unnamed
        if name[:4] != "sys_":
            return step
        claiming = name.endswith(_CLAIMING)

        def syscall(rec: Record) -> None:
            if rec.pid in self.fault:
                self._close_fault(rec.pid)   # a syscall means the fault is over (fork!)
            if rec.pid in self.orphans and not claiming:
                self._settle_orphans(rec)    # no fork/exec/mremap claimed them: GUP
            step(rec)
        return syscall

    def _unnamed(self, rec: Record) -> None:
        """An event no step is named for: a probe's, or kept raw."""
        if rec.payload[:1] == "(" and self._probe(rec):
            return
        self.counts["raw"] += 1
        self._raw(rec)

    def _from_export(self, rec: Record) -> None:
        """A line of ptviz's own ftrace export (:mod:`ptviz.convert.ftrace_text`):
        ``ptviz_KIND`` lines are that event, ``tracing_mark_write`` a marker, any other
        line the raw event it was. A ptviz_ line that does not parse is a bad line."""
        from ptviz.convert.ftrace_text import PREFIX, parse_payload
        pid, comm = rec.pid, rec.comm
        if comm == "<none>" and pid == 0:
            pid = comm = None
        elif comm == "<...>":
            comm = None
        name = rec.name
        if name.startswith(PREFIX):
            try:
                values = parse_payload(rec.payload)
                pid = values.pop("_pid", pid)
                comm = values.pop("_comm", comm)
                kind = name[len(PREFIX):]
                spec = self._exported.get(values.pop("_kind") if kind == "event" else kind)
                if spec is None or set(values) - set(spec.fields):
                    raise ValueError(f"{name}: not a kind or field of the header")
            except (ValueError, KeyError) as exc:
                raise ImportFormatError(f"a ptviz line that does not parse ({exc})",
                                        None, f"line {rec.lineno}") from None
            self.out(rec.ts, spec.id, rec.cpu, pid, tuple(values.get(f) for f in spec.fields),
                     comm)
        elif name == "tracing_mark_write":
            self.out(rec.ts, v.MARKER, rec.cpu, pid, (rec.payload,), comm)
        else:
            self.out(rec.ts, v.RAW, rec.cpu, pid, (name, {"text": rec.payload}), comm)

    def _close_stale_faults(self, now: int) -> None:
        """Close the faults no event has touched for a second: their tables go out
        while the reorder window still holds their time. O(open faults) (one per task
        at most), once per ms of trace."""
        for pid in [p for p, f in self.fault.items() if now - f[7] > WINDOW_NS // 2]:
            self._close_fault(pid)

    def _close_fault(self, pid: int | None) -> None:
        fault = self.fault.pop(pid, None)
        if fault is None:
            return
        cpu, addr, ts, allocs, mm, comm, huge, _ = fault
        if allocs or huge is not None:
            self._fault_tables(pid, fault)
        pfn = self.spans.get((mm, addr // PMD_SPAN))
        if huge is None and pfn is not None and pfn in self.tables:
            # after the fault's own tables
            at = (max(ts, max([t for t, _ in allocs])) if allocs else ts) + 1
            table = self.tables[pfn]
            table["n"] += 1
            table["last"] = at
            self.out(at, v.PTE_SET, cpu, pid, (mm, pfn, 1, True), comm)

    def _fault_tables(self, pid: int | None, fault: list) -> None:
        """The tables a closing fault allocated (most faults allocate none: this is
        apart so that they skip it)."""
        cpu, addr, ts, allocs, mm, comm, huge, _ = fault
        if huge is not None:
            # A huge-PMD fault: the tables allocated before the huge page are the upper
            # levels (the PMD table last), the one after it the PTE table deposited
            # under the huge PMD (pgtable_trans_huge_deposit): in VmPTE, no entries.
            deposit = [a for a in allocs if a[0] > huge]
            allocs = [a for a in allocs if a[0] <= huge]
            for t, pfn in deposit[:1]:
                self._new_table(t, cpu, pid, comm, mm, v.LEVEL_PTE, pfn,
                                addr - addr % PMD_SPAN, deposited=True)
                self._deposit(mm, addr // PMD_SPAN, pfn)
                self.copies["deposited"] += 1
            levels = [v.LEVEL_PMD, v.LEVEL_PUD, v.LEVEL_P4D]
        else:
            levels = [v.LEVEL_PTE, v.LEVEL_PMD, v.LEVEL_PUD, v.LEVEL_P4D]
        for (t, pfn), level in zip(reversed(allocs), levels):
            seen = level == v.LEVEL_PTE and pfn in self.confirmed   # pte_alloc_one returned it
            self.confirmed.discard(pfn)
            self._new_table(t, cpu, pid, comm, mm, level, pfn,
                            addr - addr % SPANS.get(level, P4D_SPAN), seen=seen)

    def _disown_fault_tables(self, pid: int) -> None:
        """More tables than a fault can allocate (one per level below the pgd): they
        are a fork's copies or another call's the trace does not show (no syscall
        events), the fault having ended unseen (a file page needs no allocation). They
        go to the orphans, as if no fault had been open; the fault keeps its page."""
        fault = self.fault[pid]
        cpu, comm = fault[0], fault[5]
        self.orphans.setdefault(pid, []).extend((ts, pfn, cpu, comm) for ts, pfn in fault[3])
        fault[3] = []
        self._close_fault(pid)

    def _on_page_fault_user(self, rec: Record) -> None:
        self._close_fault(rec.pid)
        self._settle_orphans(rec)
        addr = number_field(rec.payload, "address=", USER_END)
        if addr is not None and rec.pid is not None:
            self.fault[rec.pid] = [rec.cpu, addr, rec.ts, [], self._mm(rec), rec.comm, None,
                                   rec.ts]
        self._raw(rec)

    def _on_page_fault_kernel(self, rec: Record) -> None:
        """The kernel touching a user address (copy_to_user, the ELF loader) faults
        the same way: its tables are the task's. Kernel addresses are not ours."""
        addr = number_field(rec.payload, "address=", USER_END)
        if addr is None or rec.pid is None:
            self._raw(rec)
            return
        self._on_page_fault_user(rec)

    def _on_mm_page_alloc(self, rec: Record) -> None:
        p = rec.payload
        pfn, gfp = number_field(p, "pfn=", PFN_END), field(p, "gfp_flags=") or ""
        if self.pages.learning:
            self._learn_page(fields(p), pfn)
        if pfn is not None and pfn in self.tables:
            self._free(rec, pfn, "direct")        # a free we did not see; pfn reused
        # GFP_PGTABLE_USER (docs/kernel-facts.md §6), in process context: a page table of
        # some mm, or with order 1 a pgd with PTI (no table is order 1). The order is
        # read only then (most allocations are user pages).
        is_table = False
        if "GFP_KERNEL_ACCOUNT" in gfp and "__GFP_ZERO" in gfp and \
                "s" not in rec.flags[2:3] and rec.pid is not None:
            order = field(p, "order=")
            is_table = order == "0"
            if order == "1":
                self.pgd_at.setdefault(rec.pid, rec.ts)
        fault = self.fault.get(rec.pid)
        if fault is not None:
            # A fault's tables come within ms of each other; after a huge page, its
            # deposit comes whenever clearing the 2 MiB is done (preemptible: ms more).
            if is_table and pfn is not None and \
                    (fault[6] is not None or rec.ts - fault[7] <= FAULT_WINDOW_NS):
                fault[3].append((rec.ts, pfn))
                fault[7] = rec.ts
                if fault[6] is not None:          # the deposit is the fault's last table
                    self._close_fault(rec.pid)
                elif len(fault[3]) > MAX_FAULT_TABLES:
                    self._disown_fault_tables(rec.pid)
                return
            if "TRANSHUGE" in gfp and fault[6] is None and \
                    rec.ts - fault[7] <= FAULT_WINDOW_NS:
                fault[6] = fault[7] = rec.ts      # the huge page: its deposit follows
                self._raw(rec)
                return
            self._close_fault(rec.pid)            # the data page: the fault's tables are known
        if is_table and pfn is not None:
            self._orphan(rec, pfn)                 # fork, exec, mremap or GUP: see TaskSteps
            return
        self._raw(rec)

    def _on_tracing_mark_write(self, rec: Record) -> None:
        if rec.pid is not None:                 # a line without a task column has no mm
            self._settle_orphans(rec)
            self._mm(rec)
        self.out(rec.ts, v.MARKER, rec.cpu, rec.pid, (rec.payload,), rec.comm)
