"""The traces users replay, at a chosen size: each simulated workload, and a real
6.18 capture re-imported and repeated to size.

Each mix is measured like the synthetic trace (decode baseline, replay, seeks,
memory, file size), so ``ptviz bench`` reports the worst mix, not the easiest.
"""

from __future__ import annotations

import lzma
import os
import re
import time
from typing import Any, Callable

from ..sim.run import simulate

#: mix → (kernel, parameters for about ``n`` events). The events per unit were
#: measured on x86_64 with 4 CPUs, seed 1 (e.g. coverletter: 2.14 M events for 8 GiB).
SIM_MIXES: dict[str, tuple[str, Callable[[int], dict[str, str]]]] = {
    "coverletter": ("6.14", lambda n: {"size": f"{max(4, n // 261 // 2 * 2)}M"}),
    "walkers": ("6.14", lambda n: {"size": f"{max(4, n // 246 // 2 * 2)}M"}),
    "fork-exit": ("6.14", lambda n: {"children": "64",
                                     "size": f"{max(4, n // (64 * 7) // 2 * 2)}M"}),
    "allocator": ("6.14", lambda n: {"ops": str(max(100, n * 10 // 96))}),
    "collapse": ("6.14", lambda n: {"regions": str(max(16, n // 50))}),
}

#: The real capture the import mix repeats (gcc compiling, ``ptviz record`` text), from
#: a checkout: beside the package (editable install), or below the working directory;
#: ``PTVIZ_BENCH_CAPTURE`` names another.
CAPTURE_NAME = os.path.join("traces", "raw", "programs", "real-6.18-gcc-record.txt.xz")


def real_capture() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.environ.get("PTVIZ_BENCH_CAPTURE"),
                 os.path.join(here, "..", "..", CAPTURE_NAME), CAPTURE_NAME):
        if path and os.path.isfile(path):
            return path
    return None


_STAMP = re.compile(rb"(\s)(\d+)\.(\d{6})(: )")


def write_sim_mix(name: str, path: str, events: int) -> dict[str, Any]:
    """Simulate mix ``name`` into ``path``: ``events`` and ``events_per_s`` (writing
    included)."""
    kernel, params = SIM_MIXES[name]
    return simulate(path, "x86_64", kernel, name, params(events), {}, cpus=4, seed=1,
                    force=True)


def write_repeated_capture(capture: str, path: str, events: int) -> int:
    """The real capture's event lines, repeated with their times shifted past the
    previous copy until about ``events`` lines: a long real trace (the same tasks
    fork, fault, unmap and exit again). Returns the number of event lines."""
    with lzma.open(capture, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    header = [line for line in lines if line.startswith(b"#")]
    body = [line for line in lines if not line.startswith(b"#")]
    stamps = [int(m.group(2)) * 10**6 + int(m.group(3))
              for m in map(_STAMP.search, body) if m]
    span = max(stamps) - min(stamps) + 1_000_000  # a second between copies
    written = 0
    with open(path, "wb") as out:
        out.writelines(header)
        copy = 0
        while written < events:
            shift = copy * span

            def shifted(m: re.Match, shift: int = shift) -> bytes:
                us = int(m.group(2)) * 10**6 + int(m.group(3)) + shift
                return b"%s%d.%06d%s" % (m.group(1), us // 10**6, us % 10**6, m.group(4))
            out.writelines(_STAMP.sub(shifted, line, count=1) for line in body)
            written += len(body)
            copy += 1
    return written


def timed_import(text_path: str, out: str) -> tuple[float, dict[str, Any]]:
    from ..ftrace.importer import import_file
    t0 = time.perf_counter()
    stats = import_file(text_path, out, force=True)
    return time.perf_counter() - t0, stats
