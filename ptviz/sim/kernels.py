"""Kernel versions → the resolved page-table-freeing configuration, with reasons.

Rules from ``docs/kernel-facts.md``: §1.1 Kconfig history of PT_RECLAIM, §1.2
the per-arch matrix and the x86 paravirt hook, §2.5 the table-free paths, §4 the
synchronize_rcu() replacement after 7.0; §8 says how they map onto versions. Every
reason cites the sections it follows from, as ``docs/kernel-facts.md §N.N``. Every flag
can be overridden (``--set flag=value``), including combinations the kernel
forbids; the explanation then says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from replayer.errors import UsageError
from replayer.units import shown

from ..arches import KERNEL_FACTS as FACTS
from ..arches import RCU_TF_614, RCU_TF_619, RCU_TF_70, Arch

VERSIONS = {"6.13": (6, 13), "6.14": (6, 14), "6.19": (6, 19), "7.0": (7, 0),
            "after-7.0": (7, 1)}
TABLE_FREE = ("page", "semi_rcu", "rcu")
SYNC = ("none", "ipi_broadcast", "ipi_targeted", "synchronize_rcu")
FLAGS = ("pt_reclaim", "mmu_gather_rcu_table_free", "have_arch_tlb_remove_table",
         "table_free", "sync")


@dataclass
class KernelConfig:
    version: str
    pt_reclaim: bool
    mmu_gather_rcu_table_free: bool
    have_arch_tlb_remove_table: bool
    table_free: str          # page | semi_rcu | rcu
    sync: str                # walker sync on the single-table path and for collapse
    collapse_sync: str       # what khugepaged's tlb_remove_table_sync_one() does
    reasons: dict[str, str] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def header(self) -> dict:
        return {"version": self.version, "pt_reclaim": self.pt_reclaim,
                "mmu_gather_rcu_table_free": self.mmu_gather_rcu_table_free,
                "have_arch_tlb_remove_table": self.have_arch_tlb_remove_table,
                "table_free": self.table_free, "sync": self.sync,
                "collapse_sync": self.collapse_sync, "overridden": list(self.overridden)}


# docs/kernel-facts.md §8.1: the facts cover 6.14 to 7.0 and the 2026 series after it;
# 6.13 is the cover letter's "before" (no PT_RECLAIM, the 6.14 column otherwise). 6.15-6.18
# follow the 6.14-6.19 rules, in the 6.19 column of the matrix (x86's unconditional RCU-TF
# came with 6.15's INVLPGB work, §1.2, §1.4); 7.0 came after 6.19 (§1.1), and every later
# 7.x is "after-7.0" (the release of 1fb3d8c20bfa is not confirmed, §7). Older or newer
# kernels changed paths these rules do not describe.
MODELLED = "6.13 to 7.x (6.13, 6.14 … 6.19, 7.0, after-7.0)"
_VERSION = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})(?:\.[0-9]{1,4})?")   # 6.14 or 6.14.3


def parse_version(text: str) -> tuple[int, int]:
    key = {"7.1": "after-7.0", "next": "after-7.0", "later": "after-7.0"}.get(text, text)
    if key in VERSIONS:
        return VERSIONS[key]
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        raise UsageError(f"--kernel {text!r}: expected a version such as 6.14, 7.0 or "
                         f"after-7.0; ptviz simulates {MODELLED}")
    major, minor = int(m[1]), int(m[2])
    if not ((6, 13) <= (major, minor) <= (6, 19) or major == 7):
        raise UsageError(f"--kernel {shown(text)}: not modelled; ptviz simulates {MODELLED}")
    return major, minor


def resolve(arch: Arch, version: str, overrides: dict[str, str] | None = None) -> KernelConfig:
    v = parse_version(version)
    column = RCU_TF_614 if v <= (6, 14) else RCU_TF_619 if v < (7, 0) else RCU_TF_70
    why: dict[str, str] = {}

    own_trt = arch.own_tlb_remove_table
    why["have_arch_tlb_remove_table"] = (
        f"{arch.name} defines its own __tlb_remove_table ({FACTS} §1.2)" if own_trt else
        f"{arch.name} uses the generic __tlb_remove_table ({FACTS} §1.2)")

    if v < (6, 14):
        pt_reclaim = False
        why["pt_reclaim"] = f"PT_RECLAIM was added in 6.14 (6375e95f381e, {FACTS} §3)"
    elif v < (7, 0):
        pt_reclaim = arch.name == "x86_64" and arch.smp
        why["pt_reclaim"] = (
            "6.14-6.19: only x86 selects ARCH_SUPPORTS_PT_RECLAIM (if X86_64), default y, "
            f"depends on SMP ({FACTS} §1.1)" + ("" if pt_reclaim else f"; {arch.name} does not"))
    else:
        rcu_tf_70 = arch.rcu_tf(RCU_TF_70)
        pt_reclaim = rcu_tf_70 and not own_trt
        why["pt_reclaim"] = (
            "7.0: PT_RECLAIM def_bool y, depends on MMU_GATHER_RCU_TABLE_FREE && "
            f"!HAVE_ARCH_TLB_REMOVE_TABLE ({FACTS} §1.1)"
            + ("" if pt_reclaim else f"; {arch.name} fails the dependency"))

    rcu_tf = arch.rcu_tf(column) or pt_reclaim
    why["mmu_gather_rcu_table_free"] = (
        f"{arch.name} in the {column} column of the matrix ({FACTS} §1.2; versions §8.1)"
        + ("; PT_RECLAIM selects it" if pt_reclaim and not arch.rcu_tf(column) else ""))

    cfg = KernelConfig(version, pt_reclaim, rcu_tf, own_trt, "", "", "", why)
    _apply(cfg, overrides or {}, ("pt_reclaim", "mmu_gather_rcu_table_free",
                                  "have_arch_tlb_remove_table"))
    _derive_free(cfg, arch, v)
    _apply(cfg, overrides or {}, ("table_free",))
    _derive_sync(cfg, v)
    _apply(cfg, overrides or {}, ("sync",))
    unknown = set(overrides or {}) - set(FLAGS)
    if unknown:
        raise UsageError(f"--set {shown(sorted(unknown)[0])}: unknown flag; known: "
                         f"{', '.join(FLAGS)}")
    _check(cfg)
    return cfg


def _derive_free(cfg: KernelConfig, arch: Arch, v: tuple[int, int]) -> None:
    why = cfg.reasons
    if not cfg.mmu_gather_rcu_table_free:
        cfg.table_free = "page"
        why["table_free"] = ("without MMU_GATHER_RCU_TABLE_FREE tlb_remove_table() puts table "
                             f"pages on the page batch, freed after the TLB flush ({FACTS} §2.5)")
    elif cfg.pt_reclaim:
        cfg.table_free = "rcu"
        why["table_free"] = ("with PT_RECLAIM the single-table path also frees by call_rcu "
                             "(__tlb_remove_table_one_rcu; x86 'free page table pages by RCU "
                             f"instead of semi RCU', {FACTS} §2.5, §3)")
    elif arch.name.startswith("x86") and v <= (6, 14):
        cfg.table_free = "page"
        why["table_free"] = ("x86 ≤6.14 without PT_RECLAIM frees through the paravirt hook "
                             f"native_tlb_remove_table() = tlb_remove_page() ({FACTS} §1.2, "
                             "x86 details)")
    else:
        cfg.table_free = "semi_rcu"
        why["table_free"] = ("MMU_GATHER_RCU_TABLE_FREE without PT_RECLAIM: batches by RCU, "
                             f"the single-table path by IPI + immediate free ({FACTS} §2.5, §3)")


def _derive_sync(cfg: KernelConfig, v: tuple[int, int]) -> None:
    why = cfg.reasons
    if cfg.table_free == "page":
        cfg.sync = "none"
        why["sync"] = ("tables are freed after the TLB flush, whose IPIs are the sync "
                       f"(tlb_remove_table_sync_one() is empty without RCU-TF, {FACTS} §2.5)")
    elif cfg.table_free == "rcu":
        cfg.sync = "none"
        why["sync"] = f"the single-table path uses call_rcu, no walker sync ({FACTS} §2.5)"
    elif v >= (7, 1):
        cfg.sync = "synchronize_rcu"
        why["sync"] = ("after 7.0, 1fb3d8c20bfa replaces the IPI with synchronize_rcu() when "
                       f"the batch allocation fails ({FACTS} §4)")
    else:
        cfg.sync = "ipi_broadcast"
        why["sync"] = ("tlb_remove_table_sync_one() = smp_call_function() to every other "
                       f"online CPU ({FACTS} §2.5)")
    cfg.collapse_sync = "ipi_broadcast" if cfg.mmu_gather_rcu_table_free else "none"
    why["collapse_sync"] = ("collapse_huge_page() calls tlb_remove_table_sync_one() after "
                            f"pmdp_collapse_flush() ({FACTS} §2.5); the targeted-IPI series "
                            "(§4) is selected with --set sync=ipi_targeted")


def _apply(cfg: KernelConfig, overrides: dict[str, str], names: tuple[str, ...]) -> None:
    for name in names:
        if name not in overrides:
            continue
        text = overrides[name]
        if name in ("pt_reclaim", "mmu_gather_rcu_table_free", "have_arch_tlb_remove_table"):
            value = _bool(name, text)
        elif name == "table_free":
            value = _choice(name, text, TABLE_FREE)
        else:
            value = _choice(name, text, SYNC)
            if value == "ipi_targeted":
                cfg.collapse_sync = "ipi_targeted"
        setattr(cfg, name, value)
        cfg.overridden.append(name)
        cfg.reasons[name] = f"set on the command line (--set {name}={text})"


def _check(cfg: KernelConfig) -> None:
    """Say which overridden combinations the kernel itself would not build."""
    if cfg.pt_reclaim and cfg.table_free == "semi_rcu":
        cfg.warnings.append(
            "PT_RECLAIM with semi-RCU table freeing: the kernel forbids this (x86 'free page "
            "table pages by RCU instead of semi RCU' exists because the sync IPI cannot wait "
            "for rcu_read_lock() walkers in pte_offset_map)")
    if cfg.pt_reclaim and not cfg.mmu_gather_rcu_table_free:
        cfg.warnings.append("PT_RECLAIM without MMU_GATHER_RCU_TABLE_FREE: PT_RECLAIM selects "
                            "(6.14-6.19) or depends on (7.0) it")
    if cfg.pt_reclaim and cfg.have_arch_tlb_remove_table:
        cfg.warnings.append("PT_RECLAIM with an arch __tlb_remove_table: 7.0 forbids it "
                            "(page tables there are not struct ptdesc)")
    if cfg.table_free in ("semi_rcu", "rcu") and not cfg.mmu_gather_rcu_table_free:
        cfg.warnings.append(f"table_free={cfg.table_free} needs MMU_GATHER_RCU_TABLE_FREE")


def _bool(name: str, text: str) -> bool:
    t = text.strip().lower()
    if t in ("y", "yes", "on", "true", "1"):
        return True
    if t in ("n", "no", "off", "false", "0"):
        return False
    raise UsageError(f"--set {name}={shown(text)}: expected on or off")


def _choice(name: str, text: str, options: tuple[str, ...]) -> str:
    t = text.strip().lower().replace("-", "_")
    if t not in options:
        raise UsageError(f"--set {name}={shown(text)}: expected one of {', '.join(options)}")
    return t


def explain(arch: Arch, cfg: KernelConfig) -> str:
    """Why each flag resolved the way it did, one line each, with the sources."""
    lines = [f"{arch.name} ({arch.summary}), kernel {cfg.version}:",
             f"  {'architecture facts':<44}{arch.sources}"]
    lines += [f"  {'':<44}{note}" for note in arch.notes]
    for name in ("mmu_gather_rcu_table_free", "have_arch_tlb_remove_table", "pt_reclaim",
                 "table_free", "sync", "collapse_sync"):
        value = getattr(cfg, name)
        flag = "y" if value is True else "n" if value is False else value
        lines.append(f"  {name:<28}{flag:<16}{cfg.reasons.get(name, '')}")
    batch = arch.max_table_batch(cfg.mmu_gather_rcu_table_free)
    lines.append(f"  {'max_table_batch':<28}{batch:<16}"
                 f"(PAGE_SIZE - sizeof(struct mmu_table_batch)) / sizeof(void *) ({FACTS} §2.5)")
    lines += [f"  warning: {w}" for w in cfg.warnings]
    return "\n".join(lines) + "\n"
