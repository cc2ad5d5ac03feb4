"""Tasks and their address spaces: threads or processes, fork's copied tables, exec.

A mixin of :class:`.infer.Inference`. The kernel facts (docs/kernel-facts.md §2,
mm/memory.c, kernel/fork.c):

* ``sched_process_fork`` fires for every clone, threads included. A thread shares its
  parent's mm (CLONE_VM); a process gets a new mm, whose pgd ``mm_init`` allocates
  inside the parent's fork (GFP_PGTABLE_USER; order 1 with PTI on x86_64), while a
  thread's clone allocates no page table. What decides, in this order: the TGID column
  of the task's own lines; ``task_newtask``'s clone_flags; ``sys_enter_clone``'s; and
  whether the parent allocated a pgd in its fork.
* ``dup_mmap`` → ``copy_page_range`` allocates the child's page tables inside the
  parent's fork, outside any fault, for the VMAs that need copying. They count in the
  child's VmPTE and go at its exec or exit.
* exec builds a new mm (pgd, the stack's tables through GUP, the ELF loader's faults)
  inside ``execve`` and drops the old one (``exec_mmap`` → ``mmput`` → ``exit_mmap``).

Table pages a task allocates outside a fault ("orphans": GUP, fork, exec, mremap) wait
in a per-task list until the call they belong to says whose they are.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from replayer import vocab as v

from .infer_zaps import PMD_SPAN
from .textparse import PID_END, U64_END, Record, fields
from .textparse import number as _int

CLONE_VM, CLONE_VFORK, CLONE_THREAD = 0x100, 0x4000, 0x10000
ALL_END = U64_END - 1        # an exit's zap covers the whole address space


class TaskSteps:
    def _init_tasks(self) -> None:
        self.orphans: dict[int, list[tuple[int, int, int, str]]] = {}  # pid → allocations
        self.calls: dict[int, str] = {}            # pid → the fork/exec call it is inside
        self.newtask_flags: dict[int, int] = {}    # child pid → task_newtask's clone_flags
        self.enter_flags: dict[int, int] = {}      # parent pid → sys_enter_clone's flags
        self.exec_mm: dict[int, int] = {}          # pid → the mm its execve is building
        self.borrowed: set[int] = set()            # vfork-like children: the parent's mm
        # mm → (time, cause) of its last burst of orphans: "exit" (of the old mm, at an
        # exec) when it held a pgd
        self.bursts: dict[int, tuple[int, str]] = {}
        # pid → when it allocated a pgd of the size no table has (order 1: x86-64 with
        # PTI, pgd_alloc's PGD_ALLOCATION_ORDER), since its orphans were last settled
        self.pgd_at: dict[int, int] = {}
        self._announced: set[int] = set()
        #: How each fork was told thread from process, and copy counts, for the notes.
        self.decided: Counter[str] = Counter()
        self.copies: Counter[str] = Counter()
        self.seen_exec_events = False
        self.tearing: set[int] = set()             # mms whose exit zap has begun
        # clones taken for threads only because the fork allocated no pgd, until their
        # first tables: a vfork child exec'ing shows as a burst (see _vfork_exec)
        self.unsure_threads: set[int] = set()

    # -- identities ----------------------------------------------------------------
    def _mm(self, rec: Record) -> int:
        """The mm a record's task runs in (the new one while its execve builds it)."""
        building = self.exec_mm.get(rec.pid)
        if building is not None:
            self._announce(rec, building, self._tgid(rec))
            return building
        tgid = rec.tgid if rec.tgid is not None else self.tgid_of.get(rec.pid, rec.pid)
        self.tgid_of[rec.pid] = tgid
        mm = self.mm_of.get(tgid)
        if mm is None:
            mm = self.mm_of[tgid] = self._mm_id(tgid)
        if mm not in self._announced:           # (asked for every fault: no call)
            self._announce(rec, mm, tgid)
        return mm

    def _mm_id(self, tgid: int, ahead: int = 0) -> int:
        """A thread group's mm of its current generation (``ahead``: a later one)."""
        return tgid | ((self._mm_gen.get(tgid, 0) + ahead) << 32)

    def _announce(self, rec: Record, mm: int, tgid: int, comm: str | None = None) -> None:
        if mm not in self._announced:
            self._announced.add(mm)
            comm = comm if comm is not None else rec.comm
            self.out(rec.ts, v.MM_NEW, rec.cpu, rec.pid, (mm, tgid, comm), comm)

    def _tgid(self, rec: Record) -> int:
        return self.tgid_of.get(rec.pid, rec.tgid if rec.tgid is not None else rec.pid)

    # -- orphans: page tables allocated outside a fault -----------------------------
    def _orphan(self, rec: Record, pfn: int) -> None:
        self.orphans.setdefault(rec.pid, []).append((rec.ts, pfn, rec.cpu, rec.comm))

    def _settle_orphans(self, rec: Record) -> None:
        """The task moved on without a fork, exec or mremap claiming its orphans: they
        are its own mm's (GUP into a fresh region, a fault the trace did not show) — or,
        when the task is a fork child that has not faulted yet and exec is not traced,
        the new mm of the exec that fork+exec always makes (a pgd, the stack's tables)."""
        if rec.pid in self.calls:               # inside fork, exec or mremap: theirs
            return
        if rec.pid not in self.orphans and rec.pid not in self.pgd_at and \
                rec.pid not in self.unsure_threads:
            return                              # nothing to settle (every fault asks)
        pgd = self.pgd_at.pop(rec.pid, None)
        pending = self.orphans.pop(rec.pid, None)
        unsure = rec.pid in self.unsure_threads
        self.unsure_threads.discard(rec.pid)
        if not pending or rec.pid is None:
            return
        if unsure and (len(pending) > 1 or pgd is not None):
            self._vfork_exec(rec, pending, pgd)
            return
        mm = self._mm(rec)
        for ts, pfn, cpu, comm in pending:
            self._new_table(ts, cpu, rec.pid, comm, mm, v.LEVEL_PTE, pfn, None)
        self.copies["outside_fault"] += len(pending)
        if (len(pending) > 1 or pgd is not None) and not self.seen_exec_events:
            # Several at once: maybe an exec the trace cannot show (a pgd and the
            # stack's tables), or an mremap's (the destination's tables). Tables of this
            # mm freed later with no zap went then; with a pgd among them, by an exec.
            self.bursts[mm] = (pending[0][0] if pgd is None else min(pgd, pending[0][0]),
                               "exit" if pgd is not None else "other")

    def _vfork_exec(self, rec: Record, new: list, pgd: int | None) -> None:
        """A clone taken for a thread (no pgd in the fork, and nothing else to tell by)
        whose first page tables come in a burst outside any fault, before it faults at
        all: a vfork or posix_spawn child exec'ing — the new mm's pgd and the tables
        copy_strings builds for the new stack (GUP). A thread's first tables come from
        faults on its stack. It leaves its parent's mm for its own."""
        child = rec.pid
        self.tgid_of[child] = child
        mm = self.mm_of[child] = self._mm_id(child)
        self._announce(rec, mm, child)
        if pgd is None:
            new = new[1:]                       # the first is the new mm's pgd
        for ts, pfn, cpu, comm in new:
            self._new_table(ts, cpu, child, comm, mm, v.LEVEL_PTE, pfn, None,
                            exec_end=rec.ts)
        self.copies["exec"] += len(new)
        self.copies["vfork_exec"] += 1

    def _new_table(self, ts: int, cpu: int, pid: int | None, comm: str | None, mm: int,
                   level: int, pfn: int, addr: int | None, seen: bool = False,
                   **extra: Any) -> None:
        """Register and emit a table page. ``addr`` None: its span is not known (only
        its mm's end then detaches it); such a PTE table was allocated to map something,
        so it gets one entry (it is not an empty one)."""
        self.tables[pfn] = {"mm": mm, "level": level, "addr": addr or 0, "n": 0,
                            "last": ts, "span_known": addr is not None, **extra}
        if level == v.LEVEL_PTE and addr is not None and not extra.get("deposited"):
            self.spans[(mm, addr // PMD_SPAN)] = pfn
        self.counts["tables"] += 1
        self.out(ts, v.TABLE_ALLOC, cpu, pid, (mm, level, pfn, addr or 0, not seen), comm)
        if addr is None and level == v.LEVEL_PTE:
            self.tables[pfn]["n"] = 1
            self.out(ts, v.PTE_SET, cpu, pid, (mm, pfn, 1, True), comm)

    # -- fork -------------------------------------------------------------------------
    def _on_task_newtask(self, rec: Record) -> None:
        f = fields(rec.payload)
        child = _int(f.get("pid"), hi=PID_END)
        flags = _int(f.get("clone_flags"), hex_digits=True, hi=U64_END)
        if child is not None and flags is not None:
            self.newtask_flags[child] = flags
        self._raw(rec)

    def _fork_enter(self, rec: Record) -> None:
        self._close_fault(rec.pid)
        self._settle_orphans(rec)
        self.calls[rec.pid] = "fork"
        # clone(2) passes its flags (clone3 only a pointer); printed in hex.
        flags = _int(fields(rec.payload).get("clone_flags"), hex_digits=True, hi=U64_END)
        if flags is not None:
            self.enter_flags[rec.pid] = flags
        self._raw(rec)

    def _fork_exit(self, rec: Record) -> None:
        self.calls.pop(rec.pid, None)
        self.enter_flags.pop(rec.pid, None)
        self._settle_orphans(rec)
        self._raw(rec)

    _on_sys_enter_clone = _on_sys_enter_clone3 = _on_sys_enter_fork = _fork_enter
    _on_sys_enter_vfork = _fork_enter
    _on_sys_exit_clone = _on_sys_exit_clone3 = _on_sys_exit_fork = _fork_exit
    _on_sys_exit_vfork = _fork_exit

    def _on_sys_clone(self, rec: Record) -> None:
        """The syscall tracer's layout: ``sys_clone(…)`` or ``sys_clone -> ret``."""
        (self._fork_exit if rec.payload.startswith("->") else self._fork_enter)(rec)

    _on_sys_clone3 = _on_sys_fork = _on_sys_vfork = _on_sys_clone

    def _on_sched_process_fork(self, rec: Record) -> None:
        self._close_fault(rec.pid)
        f = fields(rec.payload)
        child = _int(f.get("child_pid"), hi=PID_END)
        if child is None or rec.pid is None:
            self._raw(rec)
            return
        copies = self.orphans.pop(rec.pid, [])
        pgd = self.pgd_at.pop(rec.pid, None)
        flags, how = self.newtask_flags.pop(child, None), "task_newtask"
        if flags is None:
            flags, how = self.enter_flags.get(rec.pid), "sys_enter_clone"
        if flags is None:
            # No flags traced: a new mm allocates its pgd inside the fork, a thread's
            # clone no page table at all.
            flags, how = (0 if copies or pgd is not None else CLONE_VM | CLONE_THREAD), "pgd"
        self.decided[how] += 1
        if flags & CLONE_VM and flags & CLONE_THREAD:         # a thread
            self.tgid_of[child] = self._tgid(rec)
            if how == "pgd":            # or a vfork child: its exec will tell
                self.unsure_threads.add(child)
        elif flags & CLONE_VM:          # vfork, posix_spawn: its own group, our mm
            self.tgid_of[child] = child
            self.mm_of[child] = self._mm(rec)
            self.borrowed.add(child)
        else:
            self.tgid_of[child] = child
            self._fork_copies(rec, child, f.get("child_comm") or rec.comm,
                              copies if pgd is not None else copies[1:])
            copies = []
        if copies:                      # a thread's parent allocated meanwhile: GUP
            self.orphans[rec.pid] = copies
        self._raw(rec)

    def _fork_copies(self, rec: Record, child: int, comm: str, tables: list) -> None:
        """The child's mm and the tables ``dup_mmap`` copied into it (``tables``: the
        pgd left out). They match the parent's tables one to one when their numbers
        agree (same levels and spans), else their levels and spans are unknown."""
        parent = self._mm(rec)
        mm = self.mm_of[child] = self._mm_id(child)
        self._announce(rec, mm, child, comm)
        if not tables:
            return
        mine = sorted((t["addr"], -t["level"], t["level"], pfn)
                      for pfn, t in self.tables.items()
                      if t["mm"] == parent and t.get("span_known", True)
                      and not t.get("deposited"))
        matched = len(mine) == len(tables)
        self.copies["fork_matched" if matched else "fork_unknown"] += len(tables)
        # Emitted as the child's (the parent's CPU did the work): the event's task is
        # the one whose mm it is, as a marker's mm is learnt from it.
        for k, (ts, pfn, cpu, _) in enumerate(tables):
            level, addr = (mine[k][2], mine[k][0]) if matched else (v.LEVEL_PTE, None)
            self._new_table(ts, cpu, child, comm, mm, level, pfn, addr)
            n = self.tables[mine[k][3]]["n"] if matched else 0
            if n:                       # dup_mmap copies the present entries too
                self.tables[pfn]["n"] = n
                self.out(ts, v.PTE_SET, cpu, child, (mm, pfn, n, True), comm)

    # -- exec -------------------------------------------------------------------------
    def _exec_enter(self, rec: Record) -> None:
        """``execve``: the old mm is torn down inside the call; what the call allocates
        (pgd, the stack's tables through GUP, the ELF loader's faults) is the new mm's."""
        self.seen_exec_events = True
        self._teardown(rec)       # exec_mmap → mmput → exit_mmap: an exit of the old mm
        self._settle_orphans(rec)
        tgid = self._tgid(rec)
        if rec.pid not in self.borrowed:
            self.exec_mm[rec.pid] = self._mm_id(tgid, ahead=1 if tgid in self.mm_of else 0)
        else:
            self.exec_mm[rec.pid] = self._mm_id(tgid, ahead=1)
        self.calls[rec.pid] = "execve"
        self._raw(rec)

    def _exec_exit(self, rec: Record) -> None:
        ret = _int(rec.payload.lstrip("-> ").strip(), hex_digits=True, hi=U64_END)
        if ret is not None and ret != 0:            # -errno: the old image goes on
            self.calls.pop(rec.pid, None)
            self.exec_mm.pop(rec.pid, None)
            self.in_teardown.pop(rec.pid, None)
            self._settle_orphans(rec)
        elif rec.pid in self.exec_mm:
            self._exec_done(rec)
        self.calls.pop(rec.pid, None)
        self._raw(rec)

    _on_sys_enter_execve = _on_sys_enter_execveat = _exec_enter
    _on_sys_exit_execve = _on_sys_exit_execveat = _exec_exit

    def _on_sys_execve(self, rec: Record) -> None:
        """The syscall tracer's layout: ``sys_execve(…)`` or ``sys_execve -> ret``."""
        (self._exec_exit if rec.payload.startswith("->") else self._exec_enter)(rec)

    _on_sys_execveat = _on_sys_execve

    def _on_sched_process_exec(self, rec: Record) -> None:
        """The task runs in its new mm: the old one (if it was the last user) is gone."""
        self.seen_exec_events = True
        self._exec_done(rec)
        self._raw(rec)

    def _exec_done(self, rec: Record) -> None:
        self.calls.pop(rec.pid, None)
        self.in_teardown.pop(rec.pid, None)
        self._close_fault(rec.pid)
        tgid = self._tgid(rec)
        building = self.exec_mm.pop(rec.pid, None)
        if rec.pid in self.borrowed:            # a vfork child leaves its parent's mm
            self.borrowed.discard(rec.pid)
            self._mm_gen[tgid] = self._mm_gen.get(tgid, 0) + 1
            self.mm_of.pop(tgid, None)
        elif tgid in self.mm_of and self.mm_of[tgid] != building:
            self._end_mm(rec, tgid)
        new = self.orphans.pop(rec.pid, [])
        if building is None:                     # the call's start was not traced
            mm = self._mm(rec)
        else:
            mm = self.mm_of[tgid] = building
            self._announce(rec, building, tgid)
            if self.pgd_at.pop(rec.pid, None) is None:
                new = new[1:]                   # the first is the new mm's pgd
        # The call's own tables: the stack's, built at the top of the address space and
        # moved down by setup_arg_pages, which frees the first ones (free_pgd_range)
        # before the new image runs: one freed later with no zap went at the exec.
        for ts, pfn, cpu, comm in new:
            self._new_table(ts, cpu, rec.pid, comm, mm, v.LEVEL_PTE, pfn, None,
                            exec_end=rec.ts)
        self.copies["exec"] += len(new)

    # -- exit -------------------------------------------------------------------------
    def _on_sys_exit_group(self, rec: Record) -> None:
        self._teardown(rec)                     # exit_mmap follows (if the last user)
        self._raw(rec)

    _on_sys_enter_exit_group = _on_sys_exit_group

    def _teardown(self, rec: Record) -> None:
        """The task's mm is about to be torn down (exit_group, execve): tables freed from
        here on were detached by it. sched_process_exit comes after exit_mm on older
        kernels, too late to place those detaches."""
        self.in_teardown[rec.pid] = "exit"
        mm = None if rec.pid in self.borrowed else self.mm_of.get(self._tgid(rec))
        if mm is not None:
            self._note_zap(mm, rec, 0, 1 << 64, "exit")
            self._teardown_zap(rec, mm)

    def _on_exit_mmap(self, rec: Record) -> None:
        """mmap:exit_mmap fires as exit_mmap ends (its tables freed, or queued for RCU),
        in the task that dropped the mm's last reference: almost always its own exit or
        exec. With no exit_group or execve in the trace to say so first, the teardown
        is known from here: frees still to come (RCU) go with it. (An mmput from another
        task — a /proc reader outliving its target — would be taken for that task's.)"""
        if rec.pid not in self.in_teardown and self.calls.get(rec.pid) != "execve":
            self._teardown(rec)
        self._raw(rec)

    def _teardown_zap(self, rec: Record, mm: int) -> None:
        """exit_mmap's unmap_vmas: a zap of the whole address space, shown as one (the
        replay tells a table emptied by an earlier zap and taken by this one: leaked)."""
        if mm not in self.tearing:
            self.tearing.add(mm)
            self.out(rec.ts, v.ZAP_BEGIN, rec.cpu, rec.pid, (mm, 0, ALL_END, "exit", True),
                     rec.comm)

    def _on_sched_process_exit(self, rec: Record) -> None:
        tgid = self._tgid(rec)
        if rec.pid in self.borrowed:
            self.borrowed.discard(rec.pid)
        elif rec.pid == tgid and tgid in self.mm_of:
            self.in_teardown[rec.pid] = "exit"
            self._end_mm(rec, tgid)
        self._raw(rec)

    def _end_mm(self, rec: Record, tgid: int) -> None:
        """The process's mm is gone (exit, exec): later events start a new one."""
        mm = self.mm_of.pop(tgid)
        self._note_zap(mm, rec, 0, 1 << 64, "exit")
        self._teardown_zap(rec, mm)
        self.tearing.discard(mm)
        self.out(rec.ts, v.ZAP_END, rec.cpu, rec.pid, (mm, 0, ALL_END, "exit", True), rec.comm)
        self.out(rec.ts, v.MM_EXIT, rec.cpu, rec.pid, (mm,), rec.comm)
        self._mm_gen[tgid] = self._mm_gen.get(tgid, 0) + 1
