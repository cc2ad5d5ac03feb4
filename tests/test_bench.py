"""`ptviz bench` runs end to end and reports every figure (no timing is asserted)."""

import json

from ptviz.cli import main

FIGURES = {"events", "decode_s", "replay_s", "replay_vs_decode", "seek_median_ms",
           "seek_p95_ms", "seek_vs_replay", "bytes_per_event", "sim_events_per_s",
           "import_events_per_s", "import_vs_tracecmd", "tui_first_frame_s", "tui_loaded_s",
           "tui_redraw_ms", "tui_max_block_ms", "tui_trace_events", "tui_events_page_ms",
           "tui_tables_open_ms", "tui_tables", "diff_vs_replays"}


def test_bench_json_has_every_figure(capsys):
    assert main(["bench", "--events", "20k", "--seeks", "5", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert FIGURES <= set(figures)
    assert figures["events"] >= 20_000
    ratio = figures["replay_s"] / figures["decode_s"]
    assert abs(figures["replay_vs_decode"] - ratio) <= 0.01 * ratio
    assert figures["bytes_per_event"] > 0


def test_bench_rejects_a_bad_size(capsys):
    assert main(["bench", "--events", "lots"]) == 2
