"""``ptviz bench``'s conversion figures: each writer's events/s on a realistic trace
and its peak memory at that size and at five times it (flat is the target).

Each conversion runs as ``ptviz convert`` in a child process, as users run it
(interpreter start included), and its peak RSS is the child's own (its VmHWM at
exit), not this process's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from replayer.traceio import TraceReader

#: Writer → the file ending it is picked by.
WRITERS = (("jsonl", ".jsonl"), ("ftrace", ".txt"), ("chrome", ".json"))
SCALE = 5


#: The child: ``ptviz convert`` in process, then its own peak RSS (VmHWM: the mm made
#: at exec, whereas rusage's ru_maxrss would count the forked parent's pages).
_CHILD = ("import sys\n"
          "from ptviz.cli import main\n"
          "code = main(sys.argv[1:])\n"
          "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
          "print('peak-rss-kib', hwm[0].split()[1] if hwm else 0, file=sys.stderr)\n"
          "sys.exit(code)\n")


def run_convert(src: str, out: str) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of ``ptviz convert src out`` in a child process."""
    cmd = [sys.executable, "-c", _CHILD, "convert", src, out, "--force", "--no-findings"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"ptviz convert {src} {out} failed: {err}")
    peak = next((line.split()[1] for line in err.splitlines()
                 if line.startswith("peak-rss-kib ")), "0")
    return elapsed, int(peak) / 1024
def measure_convert(work_dir: str, events: int, progress: bool = False) -> dict:
    """``convert_<writer>_events_per_s`` on a simulated walkers trace of ``events``,
    ``convert_peak_rss_mb_<writer>`` there and ``..._5x`` on one five times longer,
    ``convert_rss_growth_<writer>`` (5x over 1x) and the worst growth."""
    from .mixes import write_sim_mix
    out: dict = {}
    sizes = {}
    for tag, n in (("", events), ("_5x", events * SCALE)):
        path = os.path.join(work_dir, f"convert{tag}.msgpack")
        write_sim_mix("walkers", path, n)
        with TraceReader(path) as reader:
            sizes[tag] = (path, reader.event_count)
    for writer, ending in WRITERS:
        target = os.path.join(work_dir, "converted" + ending)
        for tag, (path, count) in sizes.items():
            seconds, rss = run_convert(path, target)
            os.unlink(target)
            out[f"convert_peak_rss_mb{('_' + writer)}{tag}"] = round(rss, 1)
            if not tag:
                out[f"convert_{writer}_events_per_s"] = round(count / seconds)
        out[f"convert_rss_growth_{writer}"] = round(
            out[f"convert_peak_rss_mb_{writer}_5x"] / out[f"convert_peak_rss_mb_{writer}"], 3)
        if progress:
            print(f"  convert → {writer}: {out[f'convert_{writer}_events_per_s'] / 1e6:.2f} M "
                  f"events/s, peak {out[f'convert_peak_rss_mb_{writer}']:.0f} MiB at "
                  f"{sizes[''][1]:,} events, {out[f'convert_peak_rss_mb_{writer}_5x']:.0f} MiB "
                  f"at {sizes['_5x'][1]:,}", file=sys.stderr, flush=True)
    for path, _ in sizes.values():
        os.unlink(path)
    out["convert_events"] = sizes[""][1]
    out["convert_events_5x"] = sizes["_5x"][1]
    worst = max(WRITERS, key=lambda w: out[f"convert_rss_growth_{w[0]}"])[0]
    out["convert_rss_growth_worst"] = out[f"convert_rss_growth_{worst}"]
    out["convert_rss_growth_worst_writer"] = worst
    return out
