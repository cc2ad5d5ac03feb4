"""The kernel's own VmPTE, written into a trace as markers, beside ptviz's count.

``ptviz record`` samples ``/proc/PID/status`` of the processes it started and writes
``VmPTE: 68 kB pid=1234 (sample)`` into the trace; the simulator's markers say
``VmPTE: 64 kB (after mmap)`` from the process itself; ``vmpte_sampler.py`` writes
``SAMPLE pid=1234 VmPTE=68``. Each is the kernel's ``mm_pgtables_bytes`` (every
level) of that process at that moment: ground truth the replay is held to.

ptviz counts the tables it saw allocated. Tables that existed before tracing began
are outside its count, so levels may differ by a constant; what must agree is the
change from one sample of a process to its next. A change that differs by more than
:data:`SLACK_PAGES` table pages is flagged: a table the trace did not show.
"""

from __future__ import annotations

import re
from typing import Any

_VMPTE = re.compile(r"\bVmPTE[:=]\s*(\d{1,15})(?:\s*kB)?")
_PID = re.compile(r"\bpid[= ](\d{1,10})\b")
#: A change may differ by this many table pages and still agree: a sample and the
#: table operation beside it are not ordered (the sample reads VmPTE while another
#: CPU's fault allocates).
SLACK_PAGES = 2


def kernel_sample(text: Any) -> tuple[int | None, int] | None:
    """``(pid or None, bytes)`` of a marker that carries the kernel's VmPTE (``pid``
    None: the marker's own process), or None. O(len(text))."""
    if not isinstance(text, str) or "VmPTE" not in text:
        return None
    m = _VMPTE.search(text)
    if m is None:
        return None
    pid = _PID.search(text)
    return (int(pid[1]) if pid else None), int(m[1]) * 1024


def compare(markers: list[dict[str, Any]], table_bytes: int) -> list[dict[str, Any] | None]:
    """For each marker (as the fold keeps them: ``text``, ``pid``, ``vmpte_bytes``), the
    kernel's VmPTE beside ptviz's, or None when it carries none: ``pid``,
    ``kernel_bytes``, ``ptviz_bytes`` (None when ptviz does not know that process's
    mm), and since the previous sample of that pid ``kernel_change``, ``ptviz_change``
    and ``agrees`` (within :data:`SLACK_PAGES` tables of ``table_bytes``; None for its
    first, or when ptviz's side is not known). O(markers)."""
    out: list[dict[str, Any] | None] = []
    last: dict[int | None, tuple[int, int | None]] = {}     # pid → (kernel, ptviz) bytes
    taken: dict[int | None, tuple[dict, Any]] = {}          # pid → (its last entry, last)
    for m in markers:
        pid = _unsettled(m["text"])
        if pid is not None:
            # The sampler saw VmPTE move while it wrote its last sample of ``pid``: that
            # sample may not match the marker's moment; it is neither judged nor a base.
            entry, before = taken.pop(pid, (None, None))
            if entry is not None:
                entry["kernel_change"] = entry["ptviz_change"] = entry["agrees"] = None
                if before is None:
                    last.pop(pid, None)
                else:
                    last[pid] = before
            out.append(None)
            continue
        sample = kernel_sample(m["text"])
        if sample is None:
            out.append(None)
            continue
        pid = sample[0] if sample[0] is not None else m["pid"]
        kernel, mine = sample[1], m["vmpte_bytes"]
        entry = {"pid": pid, "kernel_bytes": kernel, "ptviz_bytes": mine,
                 "kernel_change": None, "ptviz_change": None, "agrees": None}
        before = last.get(pid)
        if before is not None and mine is not None and before[1] is not None:
            entry["kernel_change"], entry["ptviz_change"] = kernel - before[0], mine - before[1]
            entry["agrees"] = abs(entry["kernel_change"] - entry["ptviz_change"]) <= \
                SLACK_PAGES * table_bytes
        taken[pid] = (entry, before)
        last[pid] = (kernel, mine)
        out.append(entry)
    return out


def _unsettled(text: Any) -> int | None:
    """The pid of an ``unsettled`` marker (``VmPTE moved pid=1234 (unsettled)``)."""
    if not isinstance(text, str) or not text.endswith("(unsettled)"):
        return None
    pid = _PID.search(text)
    return int(pid[1]) if pid else None
