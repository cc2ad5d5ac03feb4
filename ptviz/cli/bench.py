"""``ptviz bench``: decode, replay, seek and memory figures as ratios in one run."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from replayer.traceio.atomic import check_output

from ..bench.measure import (loaded_bytes, plain_decode_s, replay_s, seek_ms,
                             summarize_seeks)
from ..bench.synth import write_synthetic
from .output import emit
from .errors import EXIT_OK

TARGETS = {"replay_vs_decode": 2.0, "seek_median_ms": 20.0, "seek_vs_replay": 1 / 200,
           "tui_first_frame_s": 1.5, "tui_redraw_ms": 50.0, "tui_max_block_ms": 50.0,
           "bytes_per_event": 64.0, "tui_events_page_ms": 50.0, "tui_tables_open_ms": 300.0,
           "diff_vs_replays": 1.2}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure decode, replay, seek and memory figures",
                       description="Write a synthetic trace, then measure plain msgpack decode, "
                                   "full replay, random seeks and memory per loaded event, "
                                   "each as a ratio to a baseline measured in the same run.")
    p.add_argument("--events", default="2M", help="trace size in events (default 2M; 500k, "
                   "1M and plain numbers work)")
    p.add_argument("--seeks", type=int, default=200, help="random seeks to time (default 200)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--keep", metavar="PATH", help="keep the synthetic trace at PATH")
    p.add_argument("--force", action="store_true", help="replace PATH if it exists")
    p.add_argument("--no-tui", dest="tui", action="store_false",
                   help="skip the terminal UI's figures (first frame, redraw, event-loop "
                        "stalls on a simulated walkers trace of --events events)")
    p.add_argument("--trace-dat", metavar="PATH",
                   help="also time ftrace text import against `trace-cmd report` printing "
                        "this trace.dat (needs trace-cmd)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    events = _decimal_count(args.events)  # decimal prefixes: 2M is two million
    if args.keep:
        check_output(args.keep, args.force)   # refuse before minutes of measuring
    tmpdir = tempfile.mkdtemp(prefix="ptviz-bench-")
    try:
        path = args.keep or os.path.join(tmpdir, "bench.msgpack")
        figures = measure(path, events, args.seeks, tmpdir, progress=not args.json,
                          force=args.force)
        figures.update(measure_import(os.path.join(tmpdir, "import.txt"),
                                      max(events // 10, 1000), args.trace_dat))
        if args.tui:
            figures.update(measure_view(os.path.join(tmpdir, "walkers.msgpack"), events,
                                        progress=not args.json))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    emit(figures, args.json, render)
    return EXIT_OK


def _decimal_count(text: str) -> int:
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}
    t = text.strip().lower()
    try:
        if t[-1] in scale:
            return int(float(t[:-1]) * scale[t[-1]])
        return int(t)
    except (ValueError, IndexError):
        from replayer.errors import UsageError
        raise UsageError(f"--events {text!r}: expected a count such as 2M, 500k or 100000") \
            from None


def measure(path: str, events: int, seeks: int, work_dir: str, progress: bool = False,
            force: bool = False) -> dict:
    """The figures on a synthetic trace written to ``path``; scratch files go in
    ``work_dir``."""
    def say(msg: str) -> None:
        if progress:
            print(f"  {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    written = write_synthetic(path, events, force=force)
    write_s = time.perf_counter() - t0
    say(f"wrote {written:,} events in {write_s:.2f} s")
    decode = min(plain_decode_s(path) for _ in range(3))
    say(f"plain decode {decode:.3f} s")
    replay_time, replay = min((replay_s(path) for _ in range(2)), key=lambda r: r[0])
    say(f"replay {replay_time:.3f} s")
    latencies = seek_ms(replay, seeks)
    median, p95 = summarize_seeks(latencies)
    say(f"seek median {median:.2f} ms, p95 {p95:.2f} ms")
    replay.close()
    used = loaded_bytes(path)
    say(f"memory {used / written:.1f} bytes/event")
    diff_ratio = _diff_vs_replays(path)
    say(f"ptviz diff: {diff_ratio:.2f}x its two replays")
    # The same figure on a table-heavy mix (32 faults per table: 6x the bookkeeping per event).
    heavy_path = os.path.join(work_dir, "heavy.msgpack")
    write_synthetic(heavy_path, max(events // 4, 1000), faults_per_table=32)
    heavy_decode = min(plain_decode_s(heavy_path) for _ in range(3))
    heavy_replay = min(replay_s(heavy_path)[0] for _ in range(2))
    os.unlink(heavy_path)
    say(f"table-heavy mix: replay {heavy_replay / heavy_decode:.2f}x decode")
    sim = _simulate_rate(os.path.join(work_dir, "sim.msgpack"), events)
    say(f"simulator: {sim / 1e6:.2f} M events/s")
    return {
        "events": written,
        "trace_bytes": os.path.getsize(path),
        "write_s": round(write_s, 4),
        "decode_s": round(decode, 6),
        "replay_s": round(replay_time, 6),
        "replay_vs_decode": round(replay_time / decode, 3),
        "seek_median_ms": round(median, 3),
        "seek_p95_ms": round(p95, 3),
        "seek_vs_replay": round(median / 1000 / replay_time, 5),
        "bytes_per_event": round(used / written, 1),
        "checkpoints": len(replay.checkpoints),
        "mix": "coverletter loop: 512 faults per 2 MiB PTE table, reclaim, TLB IPIs, RCU",
        "replay_vs_decode_table_heavy": round(heavy_replay / heavy_decode, 3),
        "sim_events_per_s": round(sim),
        "diff_vs_replays": round(diff_ratio, 3),
        "targets": TARGETS,
    }


def _diff_vs_replays(path: str) -> float:
    """``ptviz diff`` of the trace with itself against two ``ptviz replay``s of it (each
    a load and a report): what comparing adds."""
    from replayer.diff import diff_reports
    from replayer.replay import Replay
    from replayer.report import build_report

    def replay_once() -> dict:
        with Replay.load(path) as r:
            return build_report(r)
    t = time.perf_counter()
    replay_once()
    replay_once()
    replays = time.perf_counter() - t
    t = time.perf_counter()
    diff_reports(replay_once(), replay_once())
    return (time.perf_counter() - t) / replays


def _simulate_rate(path: str, events: int) -> float:
    """Events per second of ``ptviz simulate`` (coverletter on x86_64 6.14), writing included."""
    from ..sim.run import simulate
    size = max(2 << 20, (events // 520) * (2 << 20))  # ~520 events per 2 MiB step
    try:
        return simulate(path, "x86_64", "6.14", "coverletter", {"size": str(size)}, {},
                        cpus=4, seed=1)["events_per_s"]
    finally:
        if os.path.exists(path):
            os.unlink(path)


#: Events per MiB of mapping the walkers workload makes (2.01 M for 8 GiB, measured).
WALKER_EVENTS_PER_MB = 246


def measure_view(path: str, events: int, progress: bool = False) -> dict:
    """``ptviz view`` on a walkers simulation of about ``events`` events (four CPUs:
    a writer reclaiming, lockless walkers, IPIs, RCU), headless."""
    from ..bench.tui import measure_tables, measure_tui
    from ..sim.run import simulate
    size_mb = max(4, round(events / WALKER_EVENTS_PER_MB / 2) * 2)
    written = simulate(path, "x86_64", "6.14", "walkers", {"size": f"{size_mb}M"}, {},
                       cpus=4, seed=1)["events"]
    figures = measure_tui(path)
    figures["tui_trace_events"] = written
    if progress:
        print(f"  view: first frame {figures['tui_first_frame_s']:.2f} s, redraw "
              f"{figures['tui_redraw_ms']:.1f} ms, events page "
              f"{figures['tui_events_page_ms']:.1f} ms", file=sys.stderr, flush=True)
    os.unlink(path)
    # The Tables tab on a trace with ≥ 100 k PTE table pages: the cover letter's loop at
    # 6.13, one table per 2 MiB step, a fault per 512 pages (scaled with --events).
    steps = max(1000, min(102_400, events // 20))
    simulate(path, "x86_64", "6.13", "coverletter",
             {"size": f"{steps * 2}M", "iterations": str(steps), "batch": "512"}, {},
             cpus=4, seed=1)
    figures.update(measure_tables(path))
    if progress:
        print(f"  view: Tables tab with {figures['tui_tables']:,} tables opens in "
              f"{figures['tui_tables_open_ms']:.0f} ms", file=sys.stderr, flush=True)
    os.unlink(path)
    return figures


def measure_import(text_path: str, events: int, trace_dat: str | None) -> dict:
    """Text import speed; and against `trace-cmd report` of ``trace_dat`` when given."""
    import subprocess
    from ..bench.ftrace_text import write_text
    from ..ftrace.importer import import_file
    out = text_path + ".msgpack"
    figures: dict = {"import_vs_tracecmd": None}
    try:
        lines = write_text(text_path, events)
        t0 = time.perf_counter()
        import_file(text_path, out, force=True)
        figures["import_events_per_s"] = round(lines / (time.perf_counter() - t0))
        if trace_dat and shutil.which("trace-cmd"):
            # Best of 3 on both sides: trace-cmd printing the trace.dat, ptviz importing
            # what it printed (parse, infer, write).
            report_s = import_s = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                with open(text_path, "w") as f:
                    subprocess.run(["trace-cmd", "report", "-i", trace_dat], stdout=f,
                                   check=True, stderr=subprocess.DEVNULL)
                report_s = min(report_s, time.perf_counter() - t0)
                t0 = time.perf_counter()
                stats = import_file(text_path, out, force=True)
                import_s = min(import_s, time.perf_counter() - t0)
            figures["import_vs_tracecmd"] = round(import_s / report_s, 3)
            figures["import_events_per_s"] = round(stats["events_read"] / import_s)
            figures["import_trace_events"] = stats["events_read"]
        elif trace_dat:
            figures["import_vs_tracecmd_note"] = "trace-cmd is not installed"
        else:
            figures["import_vs_tracecmd_note"] = "pass --trace-dat PATH to measure"
    finally:
        for p in (text_path, out):
            if os.path.exists(p):
                os.unlink(p)
    return figures


def render(f: dict) -> str:
    def mark(name: str, value: float) -> str:
        return "ok" if value <= TARGETS[name] else "MISSED"

    rows = [
        f"events                {f['events']:,} ({f['trace_bytes'] / f['events']:.1f} bytes "
        f"each on disk)",
        f"plain msgpack decode  {f['decode_s']:.3f} s   (baseline)",
        f"full replay           {f['replay_s']:.3f} s   = {f['replay_vs_decode']:.2f}× decode"
        f"   target ≤ 2.0×  {mark('replay_vs_decode', f['replay_vs_decode'])}",
        f"  table-heavy mix     {f['replay_vs_decode_table_heavy']:.2f}× decode (32 faults "
        f"per table)",
        f"seek median           {f['seek_median_ms']:.2f} ms   target ≤ 20 ms  "
        f"{mark('seek_median_ms', f['seek_median_ms'])}",
        f"seek p95              {f['seek_p95_ms']:.2f} ms",
        f"seek / full replay    1/{1 / max(f['seek_vs_replay'], 1e-9):.0f}   target ≤ 1/200  "
        f"{mark('seek_vs_replay', f['seek_vs_replay'])}",
        f"memory                {f['bytes_per_event']:.1f} bytes per loaded event   "
        f"target ≤ 64  {mark('bytes_per_event', f['bytes_per_event'])}",
        f"ptviz diff            {f['diff_vs_replays']:.2f}× its two replays   target ≤ 1.2  "
        f"{mark('diff_vs_replays', f['diff_vs_replays'])}",
        f"simulator             {f['sim_events_per_s'] / 1e6:.2f} M events/s   target ≥ 1  "
        f"{'ok' if f['sim_events_per_s'] >= 1e6 else 'MISSED'}",
        f"ftrace text import    {f.get('import_events_per_s', 0) / 1e3:.0f} k events/s; vs "
        f"trace-cmd report: " + (f"{f['import_vs_tracecmd']:.2f}× on "
                                 f"{f['import_trace_events']:,} events   target ≤ 3  "
                                 + ("ok" if f['import_vs_tracecmd'] <= 3 else "MISSED")
                                 if f.get("import_vs_tracecmd") is not None
                                 else f.get("import_vs_tracecmd_note", "not measured")),
    ]
    if "tui_first_frame_s" in f:
        rows += [
            f"view (walkers, {f['tui_trace_events']:,} events, headless 160×48)",
            f"  first frame         {f['tui_first_frame_s']:.2f} s (loaded in "
            f"{f['tui_loaded_s']:.2f} s)   target ≤ 1.5 s  "
            f"{mark('tui_first_frame_s', f['tui_first_frame_s'])}",
            f"  pan/zoom redraw     {f['tui_redraw_ms']:.1f} ms median, "
            f"{f['tui_redraw_max_ms']:.1f} ms max   target ≤ 50 ms  "
            f"{mark('tui_redraw_ms', f['tui_redraw_ms'])}",
            f"  event loop blocked  {f['tui_max_block_ms']:.1f} ms at most while loading   "
            f"target ≤ 50 ms  {mark('tui_max_block_ms', f['tui_max_block_ms'])}",
            f"  Events tab page     {f['tui_events_page_ms']:.1f} ms median, "
            f"{f['tui_events_page_max_ms']:.1f} ms max   target ≤ 50 ms  "
            f"{mark('tui_events_page_ms', f['tui_events_page_ms'])}",
            f"  Tables tab opens    {f['tui_tables_open_ms']:.0f} ms with "
            f"{f['tui_tables']:,} tables   target ≤ 300 ms  "
            f"{mark('tui_tables_open_ms', f['tui_tables_open_ms'])}",
        ]
    return "\n".join(rows) + "\n"
