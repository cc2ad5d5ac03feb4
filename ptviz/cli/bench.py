"""``ptviz bench``: decode, replay, seek and memory figures as ratios in one run."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from replayer.errors import UsageError
from replayer.traceio.atomic import check_output
from replayer.units import parse_count, shown

from .output import emit
from .errors import EXIT_OK

TARGETS = {"replay_vs_decode": 2.0, "seek_median_ms": 20.0, "seek_vs_replay": 1 / 200,
           "tui_first_frame_s": 1.5, "tui_redraw_ms": 50.0, "tui_max_block_ms": 50.0,
           "bytes_per_event": 64.0, "tui_events_page_ms": 50.0, "tui_tables_open_ms": 300.0,
           "diff_vs_replays": 1.2, "seek_p95_ms": 40.0, "memory_bytes_per_event": 64.0,
           "file_bytes_per_event_import": 48.0, "sim_events_per_s": 1e6,
           "import_vs_tracecmd": 3.0, "import_vs_tracecmd_end_to_end": 3.0,
           "cli_startup_s": 0.15, "convert_jsonl_events_per_s": 1e6,
           "convert_chrome_events_per_s": 1e6, "convert_ftrace_events_per_s": 5e5,
           "convert_rss_growth": 1.10, "sweep_speedup_2_workers": 1.7,
           "sweep_task_overhead_ms": 50.0}
#: Figures where more is better (the others: less is).
HIGHER = ("sweep_speedup_2_workers",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure decode, replay, seek and memory figures",
                       description="Write a synthetic trace, then measure plain msgpack decode, "
                                   "full replay, random seeks and memory per loaded event, "
                                   "each as a ratio to a baseline measured in the same run.")
    p.add_argument("--events", default="2M", metavar="N",
                   help="trace size in events (default 2M; 500k, "
                   "1.5M and plain numbers work: k, M, G are powers of 1000)")
    p.add_argument("--seeks", type=int, default=200, metavar="N",
                   help="random seeks to time (default 200)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of text")
    p.add_argument("--keep", metavar="PATH",
                   help="keep the synthetic trace at PATH; default: removed")
    p.add_argument("--force", action="store_true", help="replace PATH if it exists")
    p.add_argument("--no-tui", dest="tui", action="store_false",
                   help="skip the terminal UI's figures (first frame, redraw, event-loop "
                        "stalls on a simulated walkers trace of --events events)")
    p.add_argument("--mixes", default="all", metavar="LIST",
                   help="realistic traces to measure as well, each at --events: "
                        f"{', '.join(ALL_MIXES)} (a real 6.18 capture re-imported and "
                        "repeated to size), all (default) or none")
    p.add_argument("--no-convert", dest="convert", action="store_false",
                   help="skip the conversion figures (each writer's events/s on a simulated "
                        "walkers trace of --events events, and its peak memory there and at "
                        "five times as many)")
    p.add_argument("--no-sweep", dest="sweep", action="store_false",
                   help="skip the sweep figures (two local workers against one on the "
                        "same grid, and the per-task overhead on a local Dask cluster)")
    p.add_argument("--trace-dat", metavar="PATH",
                   help="also time ftrace text import against `trace-cmd report` printing "
                        "this trace.dat (needs trace-cmd); default: not timed")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    events = parse_count(args.events, "--events")   # decimal: 2M is two million
    if events < 1:
        raise UsageError(f"--events {shown(args.events)}: expected at least 1 event")
    if args.keep:
        check_output(args.keep, args.force)   # refuse before minutes of measuring
    mixes = _mix_names(args.mixes)
    from ..bench.figures import (cli_startup_s, measure, measure_import, measure_mixes,
                                 measure_view, simulator_rate, worst_mix)
    tmpdir = tempfile.mkdtemp(prefix="ptviz-bench-")
    try:
        path = args.keep or os.path.join(tmpdir, "bench.msgpack")
        figures = {"cli_startup_s": cli_startup_s()}
        figures.update(measure(path, events, args.seeks, tmpdir, progress=not args.json,
                               force=args.force))
        figures.update(measure_mixes(tmpdir, events, args.seeks, mixes,
                                     progress=not args.json))
        figures["sim_events_per_s"] = simulator_rate(figures, tmpdir, events)
        figures.update(measure_import(os.path.join(tmpdir, "import.txt"),
                                      max(events // 10, 1000), args.trace_dat))
        if args.convert:
            from ..bench.convert import measure_convert
            figures.update(measure_convert(tmpdir, events, progress=not args.json))
        if args.sweep:
            from ..bench.sweep import measure_sweep
            figures.update(measure_sweep(progress=not args.json))
        if args.tui:
            figures.update(measure_view(os.path.join(tmpdir, "walkers.msgpack"), events,
                                        progress=not args.json))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    worst_mix(figures)
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
        raise UsageError(f"--mixes {text!r}: unknown mix {unknown[0]!r}; known: "
                         f"{', '.join(ALL_MIXES)}, all, none")
    return names


def _mark(name: str, value: float, target_key: str | None = None) -> str:
    key = target_key or name
    target = TARGETS[key]
    ok = value >= target if key.endswith("events_per_s") or key in HIGHER else value <= target
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


def _render_convert(f: dict) -> list[str]:
    if "convert_events" not in f:
        return []
    rows = [f"convert (walkers, {f['convert_events']:,} events; peak memory also at "
            f"{f['convert_events_5x']:,})"]
    for writer, target in (("jsonl", 1.0), ("ftrace", 0.5), ("chrome", 1.0)):
        rate, growth = f[f"convert_{writer}_events_per_s"], f[f"convert_rss_growth_{writer}"]
        rows.append(f"  → {writer:<7} {rate / 1e6:.2f} M events/s   target ≥ {target}  "
                    f"{_mark(f'convert_{writer}_events_per_s', rate)};  peak "
                    f"{f[f'convert_peak_rss_mb_{writer}']:.0f} → "
                    f"{f[f'convert_peak_rss_mb_{writer}_5x']:.0f} MiB (×{growth:.2f})   "
                    f"target ≤ ×1.10  {_mark('convert_rss_growth', growth)}")
    return rows


def _render_sweep(f: dict) -> list[str]:
    if "sweep_speedup_2_workers" not in f:
        return []
    speedup = f["sweep_speedup_2_workers"]
    rows = [f"sweep ({f['sweep_points']} walkers points)   2 local workers "
            f"{f['sweep_2_workers_s']:.2f} s vs 1: {f['sweep_1_worker_s']:.2f} s = "
            f"{speedup:.2f}×   target ≥ 1.7  {_mark('sweep_speedup_2_workers', speedup)}"]
    if "sweep_task_overhead_ms" in f:
        ms = f["sweep_task_overhead_ms"]
        rows.append(f"  per task on a local Dask cluster {ms:.1f} ms beyond its "
                    f"{f['sweep_overhead_point_ms']:.1f} ms of work   target ≤ 50 ms  "
                    f"{_mark('sweep_task_overhead_ms', ms)}")
    else:
        rows.append(f"  per task on a local Dask cluster: {f['sweep_task_overhead_note']}")
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
    rows += _render_convert(f)
    rows += _render_sweep(f)
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
