"""``ptviz bench``: decode, replay, seek and memory figures as ratios in one run."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from replayer.traceio.atomic import check_output

from .output import emit
from .errors import EXIT_OK

TARGETS = {"replay_vs_decode": 2.0, "seek_median_ms": 20.0, "seek_vs_replay": 1 / 200,
           "tui_first_frame_s": 1.5, "tui_redraw_ms": 50.0, "tui_max_block_ms": 50.0,
           "bytes_per_event": 64.0, "tui_events_page_ms": 50.0, "tui_tables_open_ms": 300.0,
           "diff_vs_replays": 1.2, "seek_p95_ms": 40.0, "memory_bytes_per_event": 64.0,
           "file_bytes_per_event_import": 48.0, "sim_events_per_s": 1e6,
           "import_vs_tracecmd": 3.0, "import_vs_tracecmd_end_to_end": 3.0,
           "cli_startup_s": 0.15}


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
    p.add_argument("--mixes", default="all", metavar="LIST",
                   help="realistic traces to measure as well, each at --events: "
                        f"{', '.join(ALL_MIXES)} (a real 6.18 capture re-imported and "
                        "repeated to size), all (default) or none")
    p.add_argument("--trace-dat", metavar="PATH",
                   help="also time ftrace text import against `trace-cmd report` printing "
                        "this trace.dat (needs trace-cmd)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    events = _decimal_count(args.events)  # decimal prefixes: 2M is two million
    if args.keep:
        check_output(args.keep, args.force)   # refuse before minutes of measuring
    mixes = _mix_names(args.mixes)
    tmpdir = tempfile.mkdtemp(prefix="ptviz-bench-")
    try:
        path = args.keep or os.path.join(tmpdir, "bench.msgpack")
        figures = {"cli_startup_s": _cli_startup_s()}
        figures.update(measure(path, events, args.seeks, tmpdir, progress=not args.json,
                               force=args.force))
        figures.update(measure_mixes(tmpdir, events, args.seeks, mixes,
                                     progress=not args.json))
        figures.update(measure_import(os.path.join(tmpdir, "import.txt"),
                                      max(events // 10, 1000), args.trace_dat))
        if args.tui:
            figures.update(measure_view(os.path.join(tmpdir, "walkers.msgpack"), events,
                                        progress=not args.json))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    _worst(figures)
    figures["targets"] = TARGETS
    emit(figures, args.json, render)
    return EXIT_OK


ALL_MIXES = ("coverletter", "walkers", "fork-exit", "allocator", "collapse", "import")


def _mix_names(text: str) -> tuple[str, ...]:
    if text in ("all", ""):
        return ALL_MIXES
    if text == "none":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL_MIXES]
    if unknown:
        from replayer.errors import UsageError
        raise UsageError(f"--mixes {text!r}: unknown mix {unknown[0]!r}; known: "
                         f"{', '.join(ALL_MIXES)}, all, none")
    return names


def _cli_startup_s() -> float:
    """Best of 5 wall-clock runs of ``ptviz --help`` in a new interpreter."""
    import subprocess
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ptviz", "--help"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return round(best, 4)


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
    """The figures on a synthetic trace written to ``path`` (one more mix, and the
    one ``diff`` and the simulator rate are measured on); scratch files go in
    ``work_dir``."""
    from ..bench.measure import plain_decode_s, replay_s
    from ..bench.synth import write_synthetic

    def say(msg: str) -> None:
        if progress:
            print(f"  {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    written = write_synthetic(path, events, force=force)
    write_s = time.perf_counter() - t0
    say(f"wrote {written:,} synthetic events in {write_s:.2f} s")
    f = trace_figures(path, seeks)
    say(f"synthetic: plain decode {f['decode_s']:.3f} s, replay {f['replay_s']:.3f} s, "
        f"seek median {f['seek_median_ms']:.2f} ms, p95 {f['seek_p95_ms']:.2f} ms, "
        f"memory {f['memory_bytes_per_event']:.1f} bytes/event")
    diff_ratio = _diff_vs_replays(path)
    say(f"ptviz diff: {diff_ratio:.2f}x its two replays")
    # The same figure on a table-heavy mix (32 faults per table: 6x the bookkeeping per event).
    heavy_path = os.path.join(work_dir, "heavy.msgpack")
    write_synthetic(heavy_path, max(events // 4, 1000), faults_per_table=32)
    heavy_decode = plain_decode_s(heavy_path)
    heavy_replay = min(replay_s(heavy_path)[0] for _ in range(2))
    os.unlink(heavy_path)
    say(f"table-heavy synthetic: replay {heavy_replay / heavy_decode:.2f}x decode")
    sim = _simulate_rate(os.path.join(work_dir, "sim.msgpack"), events)
    say(f"simulator: {sim / 1e6:.2f} M events/s")
    return {
        "events": written,
        "trace_bytes": os.path.getsize(path),
        "write_s": round(write_s, 4),
        "decode_s": f["decode_s"],
        "replay_s": f["replay_s"],
        "replay_vs_decode": f["replay_vs_decode"],
        "seek_median_ms": f["seek_median_ms"],
        "seek_p95_ms": f["seek_p95_ms"],
        "seek_vs_replay": round(f["seek_median_ms"] / 1000 / f["replay_s"], 5),
        "bytes_per_event": f["memory_bytes_per_event"],
        **{f"{key}_synthetic": value for key, value in f.items()},
        "mix": "synthetic: coverletter loop, 512 faults per 2 MiB PTE table, reclaim, TLB "
               "IPIs, RCU",
        "replay_vs_decode_table_heavy": round(heavy_replay / heavy_decode, 3),
        "sim_events_per_s": round(sim),
        "diff_vs_replays": round(diff_ratio, 3),
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


def trace_figures(path: str, seeks: int) -> dict:
    """Decode baseline, replay (best of 2), seeks, memory and size of one trace."""
    from ..bench.measure import (loaded_bytes, plain_decode_s, replay_s, seek_ms,
                                 summarize_seeks)
    decode = plain_decode_s(path)
    runs = [replay_s(path) for _ in range(2)]
    replay_time, replay = min(runs, key=lambda r: r[0])
    median, p95 = summarize_seeks(seek_ms(replay, seeks))
    events = replay.event_count
    for _, r in runs:
        r.close()
    del runs, replay
    return {"events": events, "decode_s": round(decode, 6), "replay_s": round(replay_time, 6),
            "replay_vs_decode": round(replay_time / decode, 3),
            "seek_median_ms": round(median, 3), "seek_p95_ms": round(p95, 3),
            "memory_bytes_per_event": round(loaded_bytes(path) / max(events, 1), 1),
            "file_bytes_per_event": round(os.path.getsize(path) / max(events, 1), 1)}


def measure_mixes(work_dir: str, events: int, seeks: int, mixes: tuple[str, ...],
                  progress: bool = False) -> dict:
    """:func:`trace_figures` of each realistic mix at about ``events`` events, keyed
    ``<figure>_<mix>``; ``replay_vs_decode_worst`` names the worst."""
    from ..bench.mixes import (CAPTURE_NAME, SIM_MIXES, real_capture, timed_import,
                               write_repeated_capture, write_sim_mix)
    out: dict = {"mixes": []}
    for name in mixes:
        path = os.path.join(work_dir, f"mix-{name}.msgpack")
        if name in SIM_MIXES:
            sim = write_sim_mix(name, path, events)
            out[f"sim_events_per_s_{name}"] = round(sim["events_per_s"])
        elif real_capture() is None:
            out["import_mix_note"] = (f"{CAPTURE_NAME} not found (run in a checkout, or set "
                                      f"PTVIZ_BENCH_CAPTURE)")
            if progress:
                print(f"  import: {out['import_mix_note']}", file=sys.stderr, flush=True)
            continue
        else:
            text = os.path.join(work_dir, "mix-import.txt")
            lines = write_repeated_capture(real_capture(), text, events)
            import_s, _ = timed_import(text, path)
            os.unlink(text)
            out["import_mix_events_per_s"] = round(lines / import_s)
        figures = trace_figures(path, seeks)
        os.unlink(path)
        for key, value in figures.items():
            out[f"{key}_{name}"] = value
        out["mixes"].append(name)
        if progress:
            print(f"  {name}: {figures['events']:,} events, replay "
                  f"{figures['replay_vs_decode']:.2f}x decode, seek "
                  f"{figures['seek_median_ms']:.1f} ms, {figures['memory_bytes_per_event']:.0f} "
                  f"B/event in memory, {figures['file_bytes_per_event']:.0f} on disk",
                  file=sys.stderr, flush=True)
    return out


def _worst(figures: dict) -> None:
    """The headline: the worst replay/decode ratio over every mix measured."""
    mixes = figures["mixes"] = ["synthetic", *figures.get("mixes", [])]
    worst = max(mixes, key=lambda m: figures[f"replay_vs_decode_{m}"])
    figures["replay_vs_decode_worst"] = figures[f"replay_vs_decode_{worst}"]
    figures["replay_vs_decode_worst_mix"] = worst


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
            # End to end, as a user runs it: `ptviz convert x.dat` (which runs
            # trace-cmd report itself) against trace-cmd report alone.
            end_to_end = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                import_file(trace_dat, out, force=True)
                end_to_end = min(end_to_end, time.perf_counter() - t0)
            figures["import_vs_tracecmd_end_to_end"] = round(end_to_end / report_s, 3)
        elif trace_dat:
            figures["import_vs_tracecmd_note"] = "trace-cmd is not installed"
        else:
            figures["import_vs_tracecmd_note"] = "pass --trace-dat PATH to measure"
    finally:
        for p in (text_path, out):
            if os.path.exists(p):
                os.unlink(p)
    return figures


def _mark(name: str, value: float, target_key: str | None = None) -> str:
    target = TARGETS[target_key or name]
    ok = value >= target if (target_key or name) == "sim_events_per_s" else value <= target
    return "ok" if ok else "MISSED"


def _render_mixes(f: dict) -> list[str]:
    rows = [f"{'mix':<12} {'events':>10} {'replay/decode':>14} {'seek med/p95 ms':>16} "
            f"{'mem B/ev':>9} {'file B/ev':>9} {'sim M ev/s':>10}"]
    missed: list[str] = []
    for m in f["mixes"]:
        def get(key: str) -> float:
            return f[f"{key}_{m}"]
        # (figure, value, target): the import's file size has a target of its own.
        checks = [(name, get(name), name) for name in (
            "replay_vs_decode", "seek_median_ms", "seek_p95_ms", "memory_bytes_per_event")]
        if m == "import":
            checks.append(("file_bytes_per_event", get("file_bytes_per_event"),
                           "file_bytes_per_event_import"))
        sim = f.get(f"sim_events_per_s_{m}")
        if sim is not None:
            checks.append(("sim_events_per_s", sim, "sim_events_per_s"))
        missed += [f"{name}_{m}" for name, value, target in checks
                   if _mark(name, value, target) == "MISSED"]
        rows.append(f"{m:<12} {get('events'):>10,} {get('replay_vs_decode'):>13.2f}× "
                    f"{get('seek_median_ms'):>7.1f} / {get('seek_p95_ms'):>6.1f} "
                    f"{get('memory_bytes_per_event'):>9.1f} {get('file_bytes_per_event'):>9.1f} "
                    f"{sim / 1e6 if sim is not None else float('nan'):>10.2f}")
    rows.append(f"worst replay/decode   {f['replay_vs_decode_worst']:.2f}× "
                f"({f['replay_vs_decode_worst_mix']})   target ≤ 2.0×  "
                f"{_mark('replay_vs_decode', f['replay_vs_decode_worst'])}")
    rows.append("targets: replay ≤ 2.0× decode, seek ≤ 20 / 40 ms, memory ≤ 64 B/event, "
                "import file ≤ 48 B/event, simulator ≥ 1 M events/s")
    rows.append("MISSED: " + ", ".join(missed) if missed else "every mix meets its targets")
    return rows


def render(f: dict) -> str:
    mark = _mark
    rows = [
        f"ptviz --help          {f['cli_startup_s']:.3f} s   target ≤ 0.15 s  "
        f"{mark('cli_startup_s', f['cli_startup_s'])}",
        *_render_mixes(f),
        "synthetic trace:",
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
    if f.get("import_vs_tracecmd_end_to_end") is not None:
        rows.append(f"  convert x.dat end to end {f['import_vs_tracecmd_end_to_end']:.2f}× "
                    f"trace-cmd report   target ≤ 3  "
                    f"{mark('import_vs_tracecmd_end_to_end', f['import_vs_tracecmd_end_to_end'])}")
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
