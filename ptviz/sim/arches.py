"""Architecture profiles: what a page table costs and how TLBs are shot down.

Every number comes from ``shared/reference/kernel-facts.md`` (KF below):
§1.2 the Kconfig matrix, §1.3 page size / PTRS_PER_PTE / levels, §1.4 the TLB
shootdown mechanism, §2.5 MAX_TABLE_BATCH. Where a kernel build has choices
(page size, levels), the profile names the variant it models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# MMU_GATHER_RCU_TABLE_FREE per version, KF §1.2 ("RCU-TF in 6.14 / 6.19 / 7.0").
# Versions are compared as (major, minor); 6.14 and earlier share the 6.14 column,
# 6.15..6.19 the 6.19 one, 7.0 and later the 7.0 one.
RCU_TF_614, RCU_TF_619, RCU_TF_70 = "6.14", "6.19", "7.0"


@dataclass(frozen=True)
class Arch:
    """One architecture variant. ``pte_table_bytes`` is what a PTE table adds to VmPTE
    (PTRS_PER_PTE × sizeof(pte_t), KF §6); the page it sits in is ``page_size``."""

    name: str
    summary: str
    word_bits: int
    page_size: int
    ptrs_per_pte: int
    pte_size: int
    levels: int
    tlb_flush: str                   # "ipi", "broadcast" (hardware), "mixed"
    gup_fast: bool
    rcu_table_free: dict[str, bool]  # by column 6.14 / 6.19 / 7.0
    own_tlb_remove_table: bool       # __HAVE_ARCH / HAVE_ARCH_TLB_REMOVE_TABLE
    smp: bool = True
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def pmd_span(self) -> int:
        """Bytes one PTE table maps: PTRS_PER_PTE × PAGE_SIZE (KF §1.3, [INF])."""
        return self.ptrs_per_pte * self.page_size

    @property
    def pte_table_bytes(self) -> int:
        return self.ptrs_per_pte * self.pte_size

    @property
    def upper_table_bytes(self) -> int:
        """What a PMD/PUD table adds to VmPTE: a full page of entries on every arch here."""
        return self.page_size

    def max_table_batch(self, rcu_table_free: bool) -> int:
        """Tables one mmu_table_batch page holds (KF §2.5): (PAGE_SIZE − header) / ptr.

        The header is ``rcu_head`` + ``nr`` padded: 24 bytes on 64-bit with RCU,
        12 on 32-bit with RCU, 8 / 4 without (``unsigned int nr`` padded to a pointer).
        """
        ptr = self.word_bits // 8
        header = (24 if ptr == 8 else 12) if rcu_table_free else ptr
        return (self.page_size - header) // ptr

    def rcu_tf(self, column: str) -> bool:
        return self.rcu_table_free[column]

    def header(self) -> dict[str, Any]:
        """The trace header's ``arch`` entry."""
        return {"name": self.name, "page_size": self.page_size,
                "ptrs_per_pte": self.ptrs_per_pte, "pte_size": self.pte_size,
                "levels": self.levels, "pte_table_bytes": self.pte_table_bytes,
                "pmd_table_bytes": self.upper_table_bytes, "pmd_span": self.pmd_span,
                "tlb_flush": self.tlb_flush, "gup_fast": self.gup_fast,
                "word_bits": self.word_bits}


def _tf(a: bool, b: bool, c: bool) -> dict[str, bool]:
    return {RCU_TF_614: a, RCU_TF_619: b, RCU_TF_70: c}


ARCHES: dict[str, Arch] = {a.name: a for a in (
    Arch("x86_64", "x86-64, 4 KiB pages, 4-level paging at run time", 64, 4096, 512, 8, 4,
         "ipi", True, _tf(True, True, True), False,
         source="KF §1.2 (RCU-TF forced by PT_RECLAIM in 6.14, unconditional from a37259732a7d), "
                "§1.3, §1.4 (flush_tlb_multi → on_each_cpu_mask)",
         notes=("AMD INVLPGB broadcast flushes (6.15+) are not modelled",)),
    Arch("x86", "x86 32-bit, 2-level (no PAE)", 32, 4096, 1024, 4, 2, "ipi", True,
         _tf(True, True, True), False,
         source="KF §1.2 (RCU-TF `if PARAVIRT` before 6.15: distro configs have PARAVIRT=y), "
                "§1.3"),
    Arch("x86-pae", "x86 32-bit with PAE, 3-level", 32, 4096, 512, 8, 3, "ipi", True,
         _tf(True, True, True), False, source="KF §1.2, §1.3 (pgtable-3level_types.h)"),
    Arch("arm64", "arm64, 4 KiB pages, 48-bit VA (4 levels)", 64, 4096, 512, 8, 4,
         "broadcast", True, _tf(True, True, True), False,
         source="KF §1.2, §1.3 (PTRS_PER_PTE = 1 << (PAGE_SHIFT-3)), §1.4 (tlbi …is)"),
    Arch("arm64-16k", "arm64, 16 KiB pages, 48-bit VA (4 levels)", 64, 16384, 2048, 8, 4,
         "broadcast", True, _tf(True, True, True), False, source="KF §1.3"),
    Arch("arm64-64k", "arm64, 64 KiB pages, 48-bit VA (3 levels)", 64, 65536, 8192, 8, 3,
         "broadcast", True, _tf(True, True, True), False, source="KF §1.3"),
    Arch("riscv64", "riscv64, Sv48 (4 levels), IPI-based remote fences", 64, 4096, 512, 8, 4,
         "mixed", True, _tf(True, True, True), False,
         source="KF §1.2 (RCU-TF if SMP && MMU), §1.4 (SBI rfence or IPIs)"),
    Arch("s390", "s390x, 2 KiB PTE tables in a 4 KiB page", 64, 4096, 256, 8, 5,
         "broadcast", True, _tf(True, True, True), False,
         source="KF §1.3 (_PAGE_ENTRIES = 256), §1.4 (idte/ipte), §6 (VmPTE 2 KB per table)"),
    Arch("powerpc64", "powerpc64 book3s, radix MMU, 64 KiB pages", 64, 65536, 32, 8, 4,
         "mixed", True, _tf(True, True, True), True,
         source="KF §1.2 (own __tlb_remove_table), §1.3 (radix-64K index size 5), §1.4"),
    Arch("powerpc64-hash", "powerpc64 book3s, hash MMU, 64 KiB pages", 64, 65536, 256, 8, 4,
         "ipi", True, _tf(True, True, True), True,
         source="KF §1.2, §1.3 (hash-64K 2^8)"),
    Arch("sparc64", "sparc64, 8 KiB pages, cross-call TLB flushes", 64, 8192, 1024, 8, 4,
         "ipi", False, _tf(True, True, True), True,
         source="KF §1.2 (RCU-TF if SMP; own TRT if SMP), §1.3, §1.4 (smp_cross_call)"),
    Arch("loongarch", "LoongArch64, 16 KiB pages, 3 levels", 64, 16384, 2048, 8, 3, "ipi",
         True, _tf(False, False, True), False,
         source="KF §1.2 (RCU-TF added by the 7.0 series), §1.3 (16KB_3LEVEL), §1.4"),
    Arch("mips64", "MIPS64, 4 KiB pages, 3 levels, IPI flushes (no MMID)", 64, 4096, 512, 8,
         3, "ipi", True, _tf(False, False, True), False, source="KF §1.2, §1.3, §1.4"),
    Arch("alpha", "Alpha, 8 KiB pages, 3 levels", 64, 8192, 1024, 8, 3, "ipi", False,
         _tf(False, False, True), False, source="KF §1.2, §1.3, §1.4"),
    Arch("parisc64", "PA-RISC 64-bit, 4 KiB pages, 3 levels", 64, 4096, 512, 8, 3,
         "mixed", False, _tf(False, False, True), False,
         source="KF §1.2, §1.3, §1.4 (pdtlb broadcast, flush_tlb_all for big ranges)"),
    Arch("um", "User-mode Linux 64-bit, 4 levels, no hardware TLB", 64, 4096, 512, 8, 4,
         "broadcast", False, _tf(False, False, True), False,
         source="KF §1.2, §1.3, §1.4 (host mmap/munmap sync)"),
    Arch("arm", "arm 32-bit, classic MMU (2 levels, two 256-entry HW tables per page)", 32,
         4096, 512, 4, 2, "ipi", False, _tf(False, False, False), False,
         source="KF §1.2 (RCU-TF only if SMP && ARM_LPAE), §1.3, §6 (VmPTE 2 KB per table)"),
    Arch("arm-lpae", "arm 32-bit with LPAE (3 levels)", 32, 4096, 512, 8, 3, "ipi", True,
         _tf(True, True, True), False,
         source="KF §1.2, §1.3, GUP-fast only if ARM_LPAE (§1.2)"),
)}


def get(name: str) -> Arch:
    from replayer.errors import UsageError
    arch = ARCHES.get(name)
    if arch is None:
        raise UsageError(f"unknown architecture {name!r}; known: {', '.join(ARCHES)}")
    return arch
