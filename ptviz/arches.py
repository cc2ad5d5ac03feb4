"""Architecture profiles: what a page table costs and how TLBs are shot down.

One module for every part of ptviz that needs an architecture's facts: the simulator,
the recorder (the header of a capture of this machine), the ftrace importer (the
geometry of the captures it reads) and the bench. Every number comes from
``docs/kernel-facts.md``: §1.2 the Kconfig matrix, §1.3 page size / PTRS_PER_PTE /
levels, §1.4 the TLB shootdown mechanism, §2.5 MAX_TABLE_BATCH, §6 VmPTE. Where a
kernel build has choices (page size, levels), the profile names the variant it models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

#: Where the facts cited by ``sources`` (and by ``ptviz simulate --explain``) are written down.
KERNEL_FACTS = "docs/kernel-facts.md"

# MMU_GATHER_RCU_TABLE_FREE per version, docs/kernel-facts.md §1.2 ("RCU-TF in 6.14 / 6.19
# / 7.0"). Versions are compared as (major, minor); 6.14 and earlier share the 6.14 column,
# 6.15..6.19 the 6.19 one, 7.0 and later the 7.0 one.
RCU_TF_614, RCU_TF_619, RCU_TF_70 = "6.14", "6.19", "7.0"
RCU_TF_ALWAYS = MappingProxyType({RCU_TF_614: True, RCU_TF_619: True, RCU_TF_70: True})
RCU_TF_FROM_70 = MappingProxyType({RCU_TF_614: False, RCU_TF_619: False, RCU_TF_70: True})
RCU_TF_NEVER = MappingProxyType({RCU_TF_614: False, RCU_TF_619: False, RCU_TF_70: False})


@dataclass(frozen=True, kw_only=True)
class Arch:
    """One architecture variant. ``pte_table_bytes`` is what a PTE table adds to VmPTE
    (PTRS_PER_PTE × sizeof(pte_t), §6); the page it sits in is ``page_size``."""

    name: str
    summary: str
    word_bits: int                   # BITS_PER_LONG: the size of a pointer in a batch page
    page_size: int
    ptrs_per_pte: int                # PTRS_PER_PTE: entries in one PTE table
    pte_entry_bytes: int             # sizeof(pte_t)
    page_table_levels: int           # CONFIG_PGTABLE_LEVELS (as the profile runs)
    tlb_shootdown: str               # "ipi", "broadcast" (hardware), "mixed"
    has_gup_fast: bool               # HAVE_GUP_FAST: lockless walkers with IRQs off
    rcu_table_free_by_column: Mapping[str, bool]   # MMU_GATHER_RCU_TABLE_FREE by column
    own_tlb_remove_table: bool       # __HAVE_ARCH / HAVE_ARCH_TLB_REMOVE_TABLE
    smp: bool = True
    sources: str = ""                # where in docs/kernel-facts.md the numbers come from
    notes: tuple[str, ...] = field(default=())

    @property
    def pmd_span(self) -> int:
        """Bytes one PTE table maps (PMD_SIZE): PTRS_PER_PTE × PAGE_SIZE (§1.3, [INF])."""
        return self.ptrs_per_pte * self.page_size

    @property
    def pud_span(self) -> int:
        """Bytes one PMD table maps (PUD_SIZE): a full page of 8-byte entries, each a PMD span."""
        return self.pmd_span * (self.page_size // 8)

    @property
    def p4d_span(self) -> int:
        """Bytes one PUD table maps (P4D_SIZE), as ``pud_span`` one level up."""
        return self.pud_span * (self.page_size // 8)

    @property
    def pte_table_bytes(self) -> int:
        return self.ptrs_per_pte * self.pte_entry_bytes

    @property
    def upper_table_bytes(self) -> int:
        """What a PMD/PUD table adds to VmPTE: a full page of entries on every arch here."""
        return self.page_size

    def max_table_batch(self, rcu_table_free: bool) -> int:
        """Tables one mmu_table_batch page holds (§2.5): (PAGE_SIZE − header) / ptr.

        The header is ``rcu_head`` + ``nr`` padded: 24 bytes on 64-bit with RCU,
        12 on 32-bit with RCU, 8 / 4 without (``unsigned int nr`` padded to a pointer).
        """
        ptr = self.word_bits // 8
        header = (24 if ptr == 8 else 12) if rcu_table_free else ptr
        return (self.page_size - header) // ptr

    def rcu_tf(self, column: str) -> bool:
        return self.rcu_table_free_by_column[column]

    def header(self) -> dict[str, Any]:
        """The trace header's ``arch`` entry (its keys are the trace format's)."""
        return {"name": self.name, "page_size": self.page_size,
                "ptrs_per_pte": self.ptrs_per_pte, "pte_size": self.pte_entry_bytes,
                "levels": self.page_table_levels, "pte_table_bytes": self.pte_table_bytes,
                "pmd_table_bytes": self.upper_table_bytes, "pmd_span": self.pmd_span,
                "tlb_flush": self.tlb_shootdown, "gup_fast": self.has_gup_fast,
                "word_bits": self.word_bits}


def _facts(sections: str) -> str:
    return f"{KERNEL_FACTS} {sections}"


ARCHES: dict[str, Arch] = {a.name: a for a in (
    Arch(name="x86_64", summary="x86-64, 4 KiB pages, 4-level paging at run time",
         word_bits=64, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.2 (RCU-TF forced by PT_RECLAIM in 6.14, unconditional from "
                        "a37259732a7d), §1.3, §1.4 (flush_tlb_multi → on_each_cpu_mask)"),
         notes=("AMD INVLPGB broadcast flushes (6.15+) are not modelled",)),
    Arch(name="x86", summary="x86 32-bit, 2-level (no PAE)",
         word_bits=32, page_size=4096, ptrs_per_pte=1024, pte_entry_bytes=4,
         page_table_levels=2, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.2 (RCU-TF `if PARAVIRT` before 6.15: distro configs have "
                        "PARAVIRT=y), §1.3")),
    Arch(name="x86-pae", summary="x86 32-bit with PAE, 3-level",
         word_bits=32, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3 (pgtable-3level_types.h)")),
    Arch(name="arm64", summary="arm64, 4 KiB pages, 48-bit VA (4 levels)",
         word_bits=64, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="broadcast", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3 (PTRS_PER_PTE = 1 << (PAGE_SHIFT-3)), §1.4 (tlbi …is)")),
    Arch(name="arm64-16k", summary="arm64, 16 KiB pages, 48-bit VA (4 levels)",
         word_bits=64, page_size=16384, ptrs_per_pte=2048, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="broadcast", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.3")),
    Arch(name="arm64-64k", summary="arm64, 64 KiB pages, 48-bit VA (3 levels)",
         word_bits=64, page_size=65536, ptrs_per_pte=8192, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="broadcast", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.3")),
    Arch(name="riscv64", summary="riscv64, Sv48 (4 levels), IPI-based remote fences",
         word_bits=64, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="mixed", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.2 (RCU-TF if SMP && MMU), §1.4 (SBI rfence or IPIs)")),
    Arch(name="s390", summary="s390x, 2 KiB PTE tables in a 4 KiB page",
         word_bits=64, page_size=4096, ptrs_per_pte=256, pte_entry_bytes=8,
         page_table_levels=5, tlb_shootdown="broadcast", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.3 (_PAGE_ENTRIES = 256), §1.4 (idte/ipte), "
                        "§6 (VmPTE 2 KB per table)")),
    Arch(name="powerpc64", summary="powerpc64 book3s, radix MMU, 64 KiB pages",
         word_bits=64, page_size=65536, ptrs_per_pte=32, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="mixed", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=True,
         sources=_facts("§1.2 (own __tlb_remove_table), §1.3 (radix-64K index size 5), "
                        "§1.4")),
    Arch(name="powerpc64-hash", summary="powerpc64 book3s, hash MMU, 64 KiB pages",
         word_bits=64, page_size=65536, ptrs_per_pte=256, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=True,
         sources=_facts("§1.2, §1.3 (hash-64K 2^8)")),
    Arch(name="sparc64", summary="sparc64, 8 KiB pages, cross-call TLB flushes",
         word_bits=64, page_size=8192, ptrs_per_pte=1024, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="ipi", has_gup_fast=False,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=True,
         sources=_facts("§1.2 (RCU-TF if SMP; own TRT if SMP), §1.3, §1.4 (smp_cross_call)")),
    Arch(name="loongarch", summary="LoongArch64, 16 KiB pages, 3 levels",
         word_bits=64, page_size=16384, ptrs_per_pte=2048, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_FROM_70, own_tlb_remove_table=False,
         sources=_facts("§1.2 (RCU-TF added by the 7.0 series), §1.3 (16KB_3LEVEL), §1.4")),
    Arch(name="mips64", summary="MIPS64, 4 KiB pages, 3 levels, IPI flushes (no MMID)",
         word_bits=64, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_FROM_70, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3, §1.4")),
    Arch(name="alpha", summary="Alpha, 8 KiB pages, 3 levels",
         word_bits=64, page_size=8192, ptrs_per_pte=1024, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="ipi", has_gup_fast=False,
         rcu_table_free_by_column=RCU_TF_FROM_70, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3, §1.4")),
    Arch(name="parisc64", summary="PA-RISC 64-bit, 4 KiB pages, 3 levels",
         word_bits=64, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="mixed", has_gup_fast=False,
         rcu_table_free_by_column=RCU_TF_FROM_70, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3, §1.4 (pdtlb broadcast, flush_tlb_all for big ranges)")),
    Arch(name="um", summary="User-mode Linux 64-bit, 4 levels, no hardware TLB",
         word_bits=64, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=4, tlb_shootdown="broadcast", has_gup_fast=False,
         rcu_table_free_by_column=RCU_TF_FROM_70, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3, §1.4 (host mmap/munmap sync)")),
    Arch(name="arm",
         summary="arm 32-bit, classic MMU (2 levels, two 256-entry HW tables per page)",
         word_bits=32, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=4,
         page_table_levels=2, tlb_shootdown="ipi", has_gup_fast=False,
         rcu_table_free_by_column=RCU_TF_NEVER, own_tlb_remove_table=False,
         sources=_facts("§1.2 (RCU-TF only if SMP && ARM_LPAE), §1.3, "
                        "§6 (VmPTE 2 KB per table)")),
    Arch(name="arm-lpae", summary="arm 32-bit with LPAE (3 levels)",
         word_bits=32, page_size=4096, ptrs_per_pte=512, pte_entry_bytes=8,
         page_table_levels=3, tlb_shootdown="ipi", has_gup_fast=True,
         rcu_table_free_by_column=RCU_TF_ALWAYS, own_tlb_remove_table=False,
         sources=_facts("§1.2, §1.3, GUP-fast only if ARM_LPAE (§1.2)")),
)}

# `uname -m` names that differ from the profile's.
_UNAME = {"aarch64": "arm64"}


def get(name: str) -> Arch:
    from replayer.errors import UsageError
    arch = ARCHES.get(name)
    if arch is None:
        raise UsageError(f"unknown architecture {name!r}; known: {', '.join(ARCHES)}")
    return arch


def of_machine(machine: str) -> Arch | None:
    """The profile of a machine as ``uname -m`` (``platform.machine()``) names it, if any."""
    return ARCHES.get(_UNAME.get(machine, machine))
