"""The PTE pages panel: at the cursor, the PTE table pages by class and the page-table
bytes of each address space, computed off the UI thread from the engine's state."""

from __future__ import annotations

from replayer import Replay
from replayer.units import format_bytes

from .text import markup_safe

#: Class → label, in the order the panel lists them (the news first).
LABELS = (
    ("empty_attached", "leaked (empty)"),
    ("reclaimed", "reclaimed"),
    ("freed_unmap", "freed munmap/exit"),
    ("freed_collapse", "freed collapse"),
    ("in_flight", "in flight"),
    ("lost", "lost (never freed)"),
    ("live", "live"),
)
MAX_MMS = 6


def panel_text(replay: Replay, t: int, counter_tops: list[tuple[str, str]]) -> str:
    """Rich markup for the panel at time ``t``. O(tables) (see :meth:`Replay.tables`)."""
    state = replay.state_at(t)
    counts = replay.tables(state).counts()
    pte = replay.sizes.pte_bytes
    lines = ["[b]PTE pages at the cursor[/b]", f"{'':19}{'count':>7}{'bytes':>11}"]
    for cls, label in LABELS:
        n = counts[cls]
        style = "bold magenta" if cls == "empty_attached" and n else (
            "bold green" if cls == "reclaimed" and n else "")
        row = f"{label:<19}{n:>7}{format_bytes(n * pte):>11}"
        lines.append(f"[{style}]{row}[/]" if style else row)
    lines.append("")
    lines.append(f"[b]page tables[/b] {format_bytes(state.pt_bytes)} "
                 f"(peak {format_bytes(state.pt_peak)})")
    mms = sorted(((b, mm) for mm, b in state.mm_bytes.items() if b or mm in state.mm_comm),
                 reverse=True)
    for b, mm in mms[:MAX_MMS]:
        comm = markup_safe(state.mm_comm.get(mm) or "?")[:16]
        exited = " exited" if mm in state.mm_exit else ""
        lines.append(f" {comm:<16} {format_bytes(b):>10}{exited}")
    if len(mms) > MAX_MMS:
        lines.append(f" [dim]… {len(mms) - MAX_MMS} more address spaces[/dim]")
    if counter_tops:
        lines.append("")
        lines.append("[b]in view (max)[/b]")
        lines += [f" {markup_safe(label)[:20]:<20}{top:>14}" for label, top in counter_tops]
    if not replay.loaded:
        lines.append("")
        lines.append("[dim]loading: counts cover the part read so far[/dim]")
    return "\n".join(lines)
