"""What an import inferred and could not know, in words, for the report's notes.

The importer writes these into the trace's footer (:attr:`TraceWriter.notes`); the
report lists them with the notes it derives from the steps' provenance.
"""

from __future__ import annotations

from typing import Any

from .infer_zaps import NEAR_ZAP_NS

#: How a fork was told thread from process, in the words of the note.
_DECIDED_BY = {
    "task_newtask": "task_newtask's clone_flags (CLONE_VM)",
    "sys_enter_clone": "sys_enter_clone's clone_flags (no task_newtask in the trace)",
    "pgd": "whether the parent allocated a pgd inside the fork (a new mm does, a thread "
           "does not): the trace has no clone flags",
}


def traced_names(enabled: Any) -> set[str] | None:
    """The event names a recording enabled (``["syscalls/sys_enter_mremap", …]`` →
    ``{"sys_enter_mremap", …}``); None when the list is not one of names."""
    if not isinstance(enabled, (list, tuple)) or not all(isinstance(e, str) for e in enabled):
        return None
    return {e.rsplit("/", 1)[-1] for e in enabled}


def import_notes(inf: Any, has_tgid: bool, traced: set[str] | None = None) -> list[str]:
    """The notes for an :class:`~ptviz.ftrace.infer.Inference` that has finished.

    ``traced`` is the set of event names the recording enabled, when known (``ptviz
    record`` says); otherwise an event is taken as traced when the capture holds one,
    and the notes say that an absent one may just not have happened.
    """
    seen = set(inf._handlers)                 # every event name the capture holds
    known = traced is not None
    traced = traced if known else seen
    maybe = "" if known else " (or it was traced and never happened)"
    notes: list[str] = []
    forks = sum(inf.decided.values())
    if forks:
        how = "; ".join(f"{n} by {_DECIDED_BY[k]}" for k, n in sorted(inf.decided.items()))
        tgid = ("the TGID column names each task's process; " if has_tgid else
                "no TGID column (record-tgid was off): ")
        notes.append(f"threads and processes: {tgid}{forks} clone(s) were told apart: {how}")
    if inf.copies["vfork_exec"]:
        notes.append(f"{inf.copies['vfork_exec']} of the clones taken for threads were vfork or "
                     f"posix_spawn children: their first page tables came in a burst outside "
                     f"any fault, as an exec builds them, and they got their own mm from there")
    copied = inf.copies["fork_matched"] + inf.copies["fork_unknown"]
    if copied:
        notes.append(
            f"{copied} page-table pages a fork copied into its child (dup_mmap) were "
            f"inferred from the parent's allocations inside the fork"
            + (f"; {inf.copies['fork_unknown']} of them with levels and spans unknown (they "
               f"go only with the child's exec or exit)" if inf.copies["fork_unknown"] else
               "; each matched to the parent's table at the same level and span"))
    if inf.copies["exec"]:
        notes.append(f"{inf.copies['exec']} page-table pages were built by an execve for its "
                     f"new image (the stack's, through GUP); those freed later with no zap "
                     f"were taken to have gone at the exec (setup_arg_pages moves the stack)")
    if not inf.seen_exec_events and (inf.counts["detach_at_burst"] or inf.copies["outside_fault"]):
        notes.append(
            "exec is not in the trace (no sched_process_exec or syscalls:sys_enter_execve): "
            f"{inf.counts['detach_at_burst']} tables freed with no zap were taken to have gone "
            "at an earlier burst of page-table allocations outside a fault, as an exec makes "
            "(its pgd and the stack's tables); the new image's tables are counted with the old "
            "process's until then")
    if inf.copies["outside_fault"]:
        notes.append(f"{inf.copies['outside_fault']} page-table pages were allocated outside "
                     f"any traced fault or call (GUP, a kernel fault); their spans are unknown")
    if "page_fault_kernel" not in traced and inf.copies["outside_fault"]:
        notes.append("faults the kernel takes on user addresses (exceptions:page_fault_kernel) "
                     f"are not in the trace{maybe}: the tables they allocate count as "
                     "allocated outside a fault")
    facts = inf.vma_facts
    if facts["reclaim_vma_unknown"]:
        notes.append(f"{facts['reclaim_vma_unknown']} reclaims at MADV_DONTNEED were assumed to "
                     f"happen inside one VMA: the mapping was made before the trace, or by "
                     f"calls it does not show (mmap, mprotect, mremap, brk)")
    if facts["reclaim_denied_split"]:
        notes.append(f"{facts['reclaim_denied_split']} MADV_DONTNEED zaps could not reclaim a "
                     f"table because its 2 MiB span spans several VMAs (mprotect split it): "
                     f"PT_RECLAIM needs one VMA's zap to cover the whole span")
    if not {"sys_enter_mprotect", "sys_mprotect"} & traced and inf.counts["reclaims"]:
        notes.append(f"mprotect is not in the trace{maybe}: VMAs it splits are not known, and a "
                     "reclaim at MADV_DONTNEED is assumed possible wherever one mapping covered "
                     "the table's span")
    if not {"sys_enter_mremap", "sys_mremap"} & traced and \
            inf.counts["detach_guessed"] + inf.counts["detach_near_zap"]:
        notes.append(f"mremap is not in the trace{maybe}: a moved mapping keeps its tables at the old "
                     "address in ptviz, so zaps at the new one do not cover them (the detaches "
                     "placed just before their free may be such tables)")
    if inf.counts["maybe_reclaims_passed"]:
        notes.append(f"{inf.counts['maybe_reclaims_passed']} tables an earlier MADV_DONTNEED "
                     f"could have reclaimed were freed only after a munmap or exit that "
                     f"surely took them, and were placed there: with PT_RECLAIM unknown, "
                     f"the kernel may not have it")
    if inf.counts["detach_near_zap"]:
        notes.append(f"{inf.counts['detach_near_zap']} tables freed with no zap covering them "
                     f"were placed at a zap of their mm at most "
                     f"{NEAR_ZAP_NS // 1_000_000} ms before the free: the mapping had likely "
                     f"moved where the trace does not show (an untraced mremap)")
    if facts["tables_moved"]:
        notes.append(f"{facts['tables_moved']} PTE tables moved with an mremap to a destination "
                     f"congruent modulo 2 MiB (move_normal_pmd: no allocation, no free)")
    deposited = inf.copies["deposited"]
    if deposited:
        notes.append(f"{deposited} PTE tables deposited under huge PMDs (THP) were counted in "
                     f"VmPTE, as the kernel does; {facts['huge_split']} withdrawn by a split, "
                     f"the others freed with the zap of their whole huge PMD")
    return notes
