"""The architecture an ftrace import records in its header (``ptviz convert --arch``).

ftrace text and trace.dat do not say what machine they came from, and the importer's
inference is built for one page-table geometry: a PTE table is one 4 KiB page mapping
2 MiB (``infer_zaps.PMD_SPAN``), as on x86_64. Without ``--arch`` the import records
x86_64 marked ``inferred`` (assumed, not read from the trace); ``--arch`` names the
machine instead, among the simulator's architectures with that geometry.
"""

from __future__ import annotations

from typing import Any

from replayer.errors import UsageError

from .. import arches
from .infer_zaps import PMD_SPAN

#: What an import without ``--arch`` assumes.
ASSUMED = "x86_64"
_PAGE = 4096


def importable() -> list[str]:
    """The architectures whose tables the importer's inference can place: 4 KiB table
    pages, each PTE table mapping 2 MiB."""
    return [name for name, a in arches.ARCHES.items()
            if a.page_size == _PAGE and a.pmd_span == PMD_SPAN]


def import_arch(name: str | None) -> dict[str, Any]:
    """The header ``arch`` of an import: ``name``'s, or (None) the assumed one marked
    ``inferred``. Raises :class:`UsageError` for a name it cannot take."""
    if name is None:
        return {**arches.ARCHES[ASSUMED].header(), "inferred": True}
    arch = arches.ARCHES.get(name)
    valid = ", ".join(importable())
    if arch is None:
        raise UsageError(f"--arch {name!r}: not an architecture ptviz knows; one of {valid}")
    if name not in importable():
        raise UsageError(f"--arch {name}: its PTE tables map {arch.pmd_span >> 20} MiB in "
                         f"{arch.page_size >> 10} KiB pages, and the ftrace importer infers "
                         f"tables of 2 MiB in 4 KiB pages; one of {valid}")
    return arch.header()
