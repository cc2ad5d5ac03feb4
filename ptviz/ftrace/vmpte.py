"""The kernel's VmPTE of the processes ``ptviz record`` started, written into the trace.

Every recording then carries its own ground truth: ``/proc/PID/status``'s VmPTE
(``mm_pgtables_bytes``, every level) of the command and its descendants, at the start,
every ``--sample`` seconds and when each exits, as trace markers
``VmPTE: 68 kB pid=1234 (sample)`` that the replay reads back
(:mod:`replayer.vmpte`) and holds its own count to.
"""

from __future__ import annotations

import os
from typing import IO


def read_vmpte_kb(pid: int) -> int | None:
    """The process's VmPTE in kB, or None when it has no mm (gone, a zombie, a kernel
    thread) or cannot be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmPTE:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_tree(root: int) -> list[int]:
    """``root`` and its descendant processes, parents first, from each thread's
    ``children`` file (CONFIG_PROC_CHILDREN; without it, ``root`` alone)."""
    out, todo, seen = [], [root], set()
    while todo:
        pid = todo.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(p) for p in f.read().split())
            except (OSError, ValueError):
                continue
    return out


class VmpteSampler:
    """Writes the VmPTE of ``root``'s process tree to ``marker`` (the instance's
    ``trace_marker``). A process seen before and gone now gets one last sample of 0:
    its exit freed every table."""

    def __init__(self, marker: IO[str], root: int) -> None:
        self._marker, self._root = marker, root
        self._alive: set[int] = set()
        self.samples = 0
        #: Every process of the tree sampled at least once: the command's processes.
        self.pids: set[int] = {root}

    def sample(self, when: str = "sample") -> None:
        """One sample of every process of the tree (``when``: start, sample, end)."""
        alive = set()
        tree = process_tree(self._root)
        # A child whose parent exited was reparented away from the tree: still ours.
        tree += sorted(self._alive.difference(tree))
        for pid in tree:
            kb = read_vmpte_kb(pid)
            if kb is None:
                continue
            alive.add(pid)
            # A child the command started since the last sample is new, not sampled.
            label = "started" if when == "sample" and pid not in self._alive else when
            # Written at once: the process runs on, and the marker's time is the sample's.
            self._write(f"VmPTE: {kb} kB pid={pid} ({label})")
            if read_vmpte_kb(pid) != kb:
                # It moved while the marker was written: the marker's moment may not be
                # the read's. The replay then neither judges the sample nor builds on it.
                self._write(f"VmPTE moved pid={pid} (unsettled)")
        for pid in sorted(self._alive - alive):
            self._write(f"VmPTE: 0 kB pid={pid} (exit)")
        self._alive = alive
        self.pids |= alive

    def _write(self, line: str) -> None:
        # One write per marker: trace_marker takes a line per write() call.
        self._marker.write(line + "\n")
        self._marker.flush()
        self.samples += 1
