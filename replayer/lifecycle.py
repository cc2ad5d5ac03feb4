"""One PTE table page's whole life, step by step, for the UI's Tables tab.

allocation → entries set → emptied → detach (cause) → queued (batch or single-table
path) → call_rcu (a grace period) → free: each step with its time, event index, CPU, task, and
whether the kernel showed it or an importer inferred it. The first and last steps come
from the table log; "entries set" and "emptied" from the table's own pte_set/pte_clear
events (found through the timeline's kind columns, decoded only for candidates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import vocab as v
from .filters import EventFilter, select

if TYPE_CHECKING:  # pragma: no cover
    from .replay import Replay

def lifecycle(replay: "Replay", tid: int, cancelled: Callable[[], bool] = lambda: False
              ) -> list[dict[str, Any]]:
    """The steps of table ``tid`` (an index into the table log), in time order; each
    ``{step, ts, index, cpu, pid, comm, inferred, detail}``. O(the table's own entry
    events, decoded) plus the candidates the kind columns give in its lifetime."""
    rec = replay.log.record(tid)
    pfn = rec["pfn"]
    end = rec["free_ts"] if rec["free_ts"] >= 0 else replay.last_ts
    steps: list[tuple[str, int, str | None]] = [
        ("alloc", rec["alloc_idx"], f"{v.LEVEL_NAMES.get(rec['level'], rec['level'])} table "
                                    f"for {rec['addr']:#x}")]
    # Entries: the first set, and the clear that left none (as the replay counts them).
    flt = EventFilter(kinds=frozenset(("pte_set", "pte_clear")), pfns=frozenset((pfn,)))
    idx, _, _ = select(replay, flt, rec["alloc_ts"], end, cancelled)
    first_set = emptied = None
    present = 0
    for index, event in replay.rows_at([i for i in idx.tolist() if i > rec["alloc_idx"]
                                        and (rec["free_idx"] < 0 or i < rec["free_idx"])]):
        n = event.fields.get("n") or 0
        if event.kind == "pte_set":
            if first_set is None:
                first_set = (index, n)
            present += n
        else:
            before, present = present, max(0, present - n)
            if before and not present:
                emptied = index
    if first_set is not None:
        steps.append(("entries set", first_set[0], f"{first_set[1]} entries"))
    if emptied is not None:
        steps.append(("emptied", emptied, "no entry left"))
    for name, idx_key, detail in (("detach", "detach_idx", rec["detach_cause"]),
                                  ("queued", "queue_idx", rec["via"]),
                                  ("call_rcu", "rcu_idx", "waits a grace period"),
                                  ("free", "free_idx", rec["free_path"])):
        if rec[idx_key] >= 0:
            steps.append((name, rec[idx_key], detail))
    events = dict(replay.rows_at(sorted({i for _, i, _ in steps})))
    out = [{"step": name, "ts": events[index].ts, "index": index, "cpu": events[index].cpu,
            "pid": events[index].pid, "comm": events[index].comm,
            "inferred": bool(events[index].fields.get("inferred")), "detail": detail}
           for name, index, detail in steps]
    out.sort(key=lambda s: (s["ts"], s["index"]))
    return out
