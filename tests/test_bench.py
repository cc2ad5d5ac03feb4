"""`ptviz bench` runs end to end and reports every figure (no timing is asserted)."""

import json
import os

import pytest

from ptviz.cli import main

FIGURES = {"events", "decode_s", "replay_s", "replay_vs_decode", "seek_median_ms",
           "seek_p95_ms", "seek_vs_replay", "bytes_per_event", "sim_events_per_s",
           "import_events_per_s", "import_vs_tracecmd", "tui_first_frame_s", "tui_loaded_s",
           "tui_redraw_ms", "tui_max_block_ms", "tui_trace_events", "tui_events_page_ms",
           "tui_tables_open_ms", "tui_tables", "diff_vs_replays"}


def test_bench_json_has_every_figure(capsys):
    assert main(["bench", "--events", "5k", "--seeks", "5", "--mixes", "none", "--no-convert",
                 "--no-sweep", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert FIGURES <= set(figures)
    assert figures["events"] >= 5_000
    ratio = figures["replay_s"] / figures["decode_s"]
    assert abs(figures["replay_vs_decode"] - ratio) <= 0.01 * ratio
    assert figures["bytes_per_event"] > 0
    assert 0 < figures["cli_startup_s"] < 10


MIX_FIGURES = ("events", "decode_s", "replay_s", "replay_vs_decode", "seek_median_ms",
               "seek_p95_ms", "memory_bytes_per_event", "file_bytes_per_event")


@pytest.mark.slow
def test_bench_measures_every_mix_and_heads_with_the_worst(capsys, monkeypatch):
    capture = os.path.join(os.path.dirname(__file__), "..", "traces", "raw", "programs",
                           "real-6.18-gcc-record.txt.xz")
    monkeypatch.setenv("PTVIZ_BENCH_CAPTURE", capture)
    assert main(["bench", "--events", "10k", "--seeks", "3", "--no-tui", "--no-convert",
                 "--no-sweep", "--json"]) == 0
    f = json.loads(capsys.readouterr().out)
    assert f["mixes"] == ["synthetic", "coverletter", "walkers", "fork-exit", "allocator",
                          "collapse", "import"]
    for mix in f["mixes"]:
        for key in MIX_FIGURES:
            assert f[f"{key}_{mix}"] > 0, (key, mix)
        ratio = f[f"replay_s_{mix}"] / f[f"decode_s_{mix}"]
        assert abs(f[f"replay_vs_decode_{mix}"] - ratio) <= 0.01 * ratio
        assert f[f"events_{mix}"] >= 5_000, mix      # about the size asked for
    for mix in ("coverletter", "walkers", "fork-exit", "allocator", "collapse"):
        assert f[f"sim_events_per_s_{mix}"] > 0
    ratios = {m: f[f"replay_vs_decode_{m}"] for m in f["mixes"]}
    assert f["replay_vs_decode_worst"] == max(ratios.values())
    assert ratios[f["replay_vs_decode_worst_mix"]] == f["replay_vs_decode_worst"]


def test_bench_text_names_what_it_missed(capsys):
    assert main(["bench", "--events", "5k", "--seeks", "2", "--no-tui", "--no-convert",
                 "--no-sweep", "--mixes", "walkers"]) == 0
    out = capsys.readouterr().out
    assert "walkers" in out and "worst replay/decode" in out
    assert "MISSED" in out or "every mix meets its targets" in out


@pytest.mark.slow
def test_bench_measures_each_converter_in_a_child_process(tmp_path):
    """Rates and peak memory come from real `ptviz convert` runs in child processes."""
    from ptviz.bench.convert import measure_convert
    f = measure_convert(str(tmp_path), 3000)
    assert f["convert_events"] >= 2000 and f["convert_events_5x"] >= 4 * f["convert_events"]
    for writer in ("jsonl", "ftrace", "chrome"):
        assert f[f"convert_{writer}_events_per_s"] > 0
        assert 10 < f[f"convert_peak_rss_mb_{writer}"] < 2000     # a Python process's MiB
        ratio = f[f"convert_peak_rss_mb_{writer}_5x"] / f[f"convert_peak_rss_mb_{writer}"]
        assert abs(f[f"convert_rss_growth_{writer}"] - ratio) < 0.01
    assert f["convert_rss_growth_worst"] == max(
        f[f"convert_rss_growth_{w}"] for w in ("jsonl", "ftrace", "chrome"))
    assert os.listdir(tmp_path) == []
    from ptviz.cli.bench import _render_convert
    text = "\n".join(_render_convert(f))
    assert "→ jsonl" in text and "→ chrome" in text and "target ≤ ×1.10" in text


def test_bench_rejects_an_unknown_mix(capsys):
    assert main(["bench", "--mixes", "walkers,tetris"]) == 2
    assert "tetris" in capsys.readouterr().err


def test_bench_rejects_a_bad_size(capsys):
    assert main(["bench", "--events", "lots"]) == 2


def test_bench_measures_the_sweep_on_one_and_two_workers_and_a_dask_cluster():
    """The speedup is the two wall times' ratio; the overhead is what the cluster adds
    beyond the points' own work (both measured through ``ptviz sweep``'s loop)."""
    pytest.importorskip("distributed")
    from ptviz.bench.sweep import measure_sweep
    from ptviz.cli.bench import _render_sweep
    f = measure_sweep(points=4, overhead_points=4, rounds=1)
    assert f["sweep_points"] == 4 and f["sweep_overhead_points"] == 4
    one, two = f["sweep_1_worker_s"], f["sweep_2_workers_s"]
    ratio = one / two
    # Both times are rounded to the millisecond, the speedup is taken before rounding.
    assert abs(f["sweep_speedup_2_workers"] - ratio) <= ratio * (0.0005 / one + 0.0005 / two) \
        + 0.0005
    assert f["sweep_overhead_point_ms"] > 0 and f["sweep_task_overhead_ms"] >= 0
    text = "\n".join(_render_sweep(f))
    assert "target ≥ 1.7" in text and "target ≤ 50 ms" in text
    assert ("MISSED" in text) == (f["sweep_speedup_2_workers"] < 1.7
                                  or f["sweep_task_overhead_ms"] > 50)


def test_the_view_figures_come_from_a_child_process(tmp_path):
    """`ptviz view` is measured in a process of its own, as a user starts it; a child that
    fails says why."""
    from ptviz.bench.tui import in_fresh_process
    missing = str(tmp_path / "missing.msgpack")
    with pytest.raises(RuntimeError, match="measure_tables of .*missing.msgpack failed: .*"):
        in_fresh_process("measure_tables", missing)
