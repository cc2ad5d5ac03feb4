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

from .proctree import stat_fields


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


def start_time(pid: int) -> int | None:
    """When the process started (``/proc/PID/stat`` field 22, clock ticks since boot):
    with the pid, what tells it from a later process given the same pid. None when it
    is gone or cannot be read."""
    fields = stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None   # field 3 is the first
    except (ValueError, IndexError):
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
    its exit freed every table.

    A process is known by its pid and start time: a child reparented away from the
    tree is followed by its pid, and once it exits that pid may be given to an
    unrelated process (ptviz runs as root; the stranger's VmPTE would be written as
    the command's). Such a pid gets the exit's sample of 0, and is not sampled again."""

    def __init__(self, marker: IO[str], root: int) -> None:
        self._marker, self._root = marker, root
        self._alive: dict[int, int | None] = {}      # pid → its start time
        self.samples = 0
        #: Every process of the tree sampled at least once: the command's processes.
        self.pids: set[int] = {root}

    def sample(self, when: str = "sample") -> None:
        """One sample of every process of the tree (``when``: start, sample, end)."""
        alive: dict[int, int | None] = {}
        tree = process_tree(self._root)
        in_tree = set(tree)
        # A child whose parent exited was reparented away from the tree: still ours, as
        # long as its pid is still that process's.
        tree += sorted(pid for pid in self._alive if pid not in in_tree)
        ended = set()
        for pid in tree:
            started = start_time(pid)
            same = pid in self._alive and started == self._alive[pid]
            if pid in self._alive and not same:
                # The process sampled before under this pid exited; a new one has it.
                self._write(f"VmPTE: 0 kB pid={pid} (exit)")
                ended.add(pid)
            if pid not in in_tree and not same:
                continue
            kb = read_vmpte_kb(pid)
            if kb is None:
                continue
            alive[pid] = started
            # A process the command started since the last sample is new, not sampled.
            label = "started" if when == "sample" and not same else when
            # Written at once: the process runs on, and the marker's time is the sample's.
            self._write(f"VmPTE: {kb} kB pid={pid} ({label})")
            if read_vmpte_kb(pid) != kb:
                # It moved while the marker was written: the marker's moment may not be
                # the read's. The replay then neither judges the sample nor builds on it.
                self._write(f"VmPTE moved pid={pid} (unsettled)")
        for pid in sorted(self._alive.keys() - alive.keys() - ended):
            self._write(f"VmPTE: 0 kB pid={pid} (exit)")
        self._alive = alive
        self.pids |= alive.keys()

    def _write(self, line: str) -> None:
        # One write per marker: trace_marker takes a line per write() call.
        self._marker.write(line + "\n")
        self._marker.flush()
        self.samples += 1
