"""`ptviz sweep` and `ptviz batch` on local processes: the grid, one row per point, a
failed point as a row, a worker that dies, ctrl+c then --resume, the table's formats,
and batch's --fail-on per trace. (The Dask cluster: test_scale_cluster.py.)"""

import glob
import json
import os
import shutil
import signal
import sys
import tempfile

import pytest

from ptviz.cli import main
from ptviz.scale import driver
from ptviz.scale.grid import grid
from replayer.errors import UsageError
from tests.conftest import ROOT, TRACES

#: A small, fast grid: two flags × three seeds of an 8 MiB walkers run (~20 ms each).
SMALL = ["sweep", "--workload", "walkers", "--kernel", "7.0", "--param", "size=8M",
         "--set", "table_free=semi_rcu,rcu", "--seeds", "0..2", "--jobs", "2"]


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _without(rows, *columns):
    return [{k: v for k, v in r.items() if k not in columns} for r in rows]


def test_the_grid_is_the_product_of_its_lists_with_one_key_per_point():
    points = grid("x86_64,arm64", "6.13,7.0", "walkers", "2,4",
                  ["table_free=semi_rcu,rcu"], ["size=8M,64M"], "0..2,7")
    assert len(points) == 2 * 2 * 2 * 2 * 2 * 4
    assert len({p.key for p in points}) == len(points)
    assert len({p.trace_name() for p in points}) == len(points)
    assert [p.seed for p in points[:4]] == [0, 1, 2, 7]     # seeds innermost
    first = points[0].columns()
    assert first["set_table_free"] == "semi_rcu" and first["param_size"] == "8M"
    assert len(grid("all", "all", "coverletter", "4", [], [], "1")) > 20


@pytest.mark.parametrize("args, word", [
    (("sparc32", "7.0", "walkers", "4", [], [], "0"), "sparc32"),
    (("x86_64", "5.4", "walkers", "4", [], [], "0"), "5.4"),
    (("x86_64", "7.0", "tetris", "4", [], [], "0"), "tetris"),
    (("x86_64", "7.0", "walkers", "4", ["table_fre=rcu"], [], "0"), "table_fre"),
    (("x86_64", "7.0", "walkers", "4", [], [], "9..3"), "9..3"),
    (("x86_64", "7.0", "walkers", "4", [], [], "0..99999999"), "more than"),
    (("x86_64", "7.0", "walkers", "0", [], [], "0"), "--cpus"),
    (("x86_64,", "7.0", "walkers", "4", [], [], "0"), "empty item"),
])
def test_a_grid_with_a_bad_name_is_refused_before_anything_runs(args, word):
    with pytest.raises(UsageError) as err:
        grid(*args)
    assert word in str(err.value) and "\n" not in str(err.value)


def test_a_sweep_writes_one_row_per_point_and_a_failed_point_is_a_row(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    # 10K is no page multiple: those points fail, the others do not notice.
    assert main(SMALL + ["--param", "step=2M,10K", "-o", str(out)]) == 0
    rows = _rows(out)
    captured = capsys.readouterr()
    assert len(rows) == 2 * 2 * 3 and len({r["point"] for r in rows}) == 12
    bad = [r for r in rows if r["error"]]
    assert {r["param_step"] for r in bad} == {"10K"} and len(bad) == 6
    assert all("step=" in r["error"] and r["events"] is None for r in bad)
    good = [r for r in rows if not r["error"]]
    assert all(r["events"] > 0 and r["seconds"] > 0 for r in good)
    # semi-RCU frees a table a walker still holds; RCU does not.
    assert all(r["use_after_free"] == 0 for r in good if r["set_table_free"] == "rcu")
    assert sum(r["use_after_free"] for r in good if r["set_table_free"] == "semi_rcu") > 0
    assert "6 point(s) failed" in captured.err
    assert "table_free=rcu step=2M: no findings in 3 seeds" in captured.out


def test_every_point_failing_exits_2(tmp_path, capsys):
    assert main(SMALL + ["--param", "step=10K"]) == 2
    assert "every point failed" in capsys.readouterr().err


def _interrupt_after(monkeypatch, n):
    """ctrl+c arrives in the main process once ``n`` rows are in."""
    real = driver.collect

    def collect(workers, tasks, rows, on_row):
        def hook(row):
            on_row(row)
            if row is not None and len(rows) >= n:
                raise KeyboardInterrupt
        real(workers, tasks, rows, hook)
    monkeypatch.setattr(driver, "collect", collect)


def _count_runs(monkeypatch):
    """The points each run hands to the workers."""
    real, ran = driver.collect, []

    def collect(workers, tasks, rows, on_row):
        ran.append([t.key for t in tasks])
        real(workers, tasks, rows, on_row)
    monkeypatch.setattr(driver, "collect", collect)
    return ran


def test_ctrl_c_keeps_what_finished_and_resume_runs_only_the_rest(tmp_path, monkeypatch,
                                                                   capsys):
    out, keep = tmp_path / "t.jsonl", tmp_path / "traces"
    args = SMALL + ["-o", str(out), "--keep", str(keep)]
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        assert main(args) == 130
    first = _rows(out)
    assert len(first) == 3 and "--resume runs the rest" in capsys.readouterr().err
    # Points still running were ended, and left no half-written trace.
    assert all(os.path.exists(r["trace"]) for r in first)
    assert not [name for name in os.listdir(keep) if not name.endswith(".msgpack")]
    kept = {r["trace"]: os.stat(r["trace"]).st_ino for r in first}

    assert main(args) == 2                      # the table exists: --resume or --force
    ran = _count_runs(monkeypatch)
    assert main(args + ["--resume"]) == 0
    assert len(ran) == 1 and len(ran[0]) == 3 * 2 - 3
    assert not {r["point"] for r in first} & set(ran[0])
    assert "3 points run" in capsys.readouterr().err
    rows = _rows(out)
    assert len(rows) == 6 and len({r["point"] for r in rows}) == 6
    # The finished points' traces were not made again (a rewrite is a new inode).
    assert {t: os.stat(t).st_ino for t in kept} == kept
    assert len(os.listdir(keep)) == 6

    fresh = tmp_path / "fresh.jsonl"
    assert main(SMALL + ["-o", str(fresh)]) == 0
    same = ("seconds", "trace")
    assert _without(rows, *same) == _without(_rows(fresh), *same)


def test_a_local_worker_killed_mid_sweep_has_its_point_rerun(tmp_path, monkeypatch):
    real, killed = driver.collect, []

    def collect(workers, tasks, rows, on_row):
        def hook(row):
            if row is not None and not killed:
                pid = next(iter(workers.executor._processes))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            on_row(row)
        real(workers, tasks, rows, hook)
    monkeypatch.setattr(driver, "collect", collect)
    out = tmp_path / "t.jsonl"
    assert main(SMALL[:-4] + ["--seeds", "0..5", "--jobs", "2", "-o", str(out)]) == 0
    rows = _rows(out)
    assert killed
    # A worker killed outright cannot remove its scratch directory (nor can the other
    # worker of the broken pool, which the pool kills too): the test removes those of
    # workers that are gone.
    for left in glob.glob(os.path.join(tempfile.gettempdir(), "ptviz-sweep-*-*")):
        pid = left.rsplit("-", 2)[-2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(left, ignore_errors=True)
    assert len(rows) == 12 and len({r["point"] for r in rows}) == 12
    assert not [r for r in rows if r["error"]]


def test_the_same_key_twice_is_one_row():
    from concurrent.futures import ThreadPoolExecutor
    from ptviz.scale.executors import Task, collect

    class Threads:
        window, generation = 4, 0
        executor = ThreadPoolExecutor(2)

        def submit(self, fn, *args):
            return self.executor.submit(fn, *args)
    tasks = [Task(k, lambda k=k: {"point": k}, ()) for k in ("a", "b", "a", "b", "c")]
    rows, seen = {}, []
    collect(Threads(), tasks, rows, lambda r: r and seen.append(r["point"]))
    assert sorted(seen) == ["a", "b", "c"] and sorted(rows) == ["a", "b", "c"]


def test_csv_and_parquet_tables_hold_the_same_rows(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    paths = {ext: tmp_path / f"t.{ext}" for ext in ("jsonl", "csv", "parquet")}
    for path in paths.values():
        assert main(SMALL + ["--seeds", "0", "-o", str(path)]) == 0
    from ptviz.scale.table import read_table
    want = _without(_rows(paths["jsonl"]), "seconds")
    assert _without(read_table(str(paths["csv"]), "point"), "seconds") == want
    assert _without(pq.read_table(paths["parquet"]).to_pylist(), "seconds") == want


def test_without_the_cluster_extra_parquet_and_cluster_say_how_to_install(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(SMALL + ["-o", str(tmp_path / "t.parquet")]) == 2
    assert main(SMALL[:-2] + ["--cluster", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("pip install 'ptviz[cluster]'" in line for line in err)
    assert not os.listdir(tmp_path)


def test_a_sweep_refuses_a_table_it_cannot_write_before_running(tmp_path, capsys):
    assert main(SMALL + ["-o", str(tmp_path / "t.txt")]) == 2
    assert main(SMALL + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert ".parquet, .jsonl or .csv" in err and "--resume needs -o" in err


def test_batch_gives_one_row_per_trace_and_fails_on_per_trace(tmp_path, capsys,
                                                               monkeypatch):
    out = tmp_path / "b.csv"
    pattern = os.path.join(os.path.relpath(TRACES, ROOT), "*.msgpack")
    monkeypatch.chdir(ROOT)
    code = main(["batch", pattern, "--fail-on", "use_after_free>1", "-o", str(out),
                 "--jobs", "2"])
    captured = capsys.readouterr()
    from ptviz.scale.table import read_table
    rows = read_table(str(out), "trace")
    samples = sorted(glob.glob(pattern))
    assert sorted(r["trace"] for r in rows) == samples and len(samples) >= 5
    assert not [r for r in rows if r["error"]]
    held = [r["trace"] for r in rows if r["fail_on"]]
    assert held == ["traces/sim-walkers-semi-rcu-uaf.msgpack"]
    assert code == 1
    fails = [line for line in captured.err.splitlines() if "fail-on" in line]
    assert fails == [f"ptviz: fail-on: {held[0]}: use_after_free>1 (is "
                     f"{[r for r in rows if r['fail_on']][0]['use_after_free']})"]
    assert "use_after_free in 2 of" in captured.out


def test_batch_reports_a_trace_it_cannot_read_and_a_glob_that_matches_nothing(
        tmp_path, capsys):
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"not a trace at all")
    good = os.path.join(TRACES, "leak-6.13-x86_64.msgpack")
    assert main(["batch", good, str(bad), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"ptviz: {bad}: " in err and "Traceback" not in err
    assert main(["batch", str(tmp_path / "*.dat")]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_a_real_ctrl_c_writes_the_finished_rows_and_exits_130(tmp_path):
    """SIGINT to a running `ptviz sweep`, as a terminal sends it: exit 130, the table
    holds the rows that finished, no half-written file is left, and the workers ended
    mid-point leave no scratch directory in $TMPDIR."""
    import subprocess
    import time
    from tests.conftest import PTVIZ
    out, keep, scratch = tmp_path / "t.jsonl", tmp_path / "traces", tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [*PTVIZ, "sweep", "--workload", "walkers", "--kernel", "7.0", "--param", "size=64M",
         "--seeds", "0..59", "--jobs", "2", "-o", str(out), "--keep", str(keep)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(scratch)})
    while proc.poll() is None and len(os.listdir(keep) if keep.exists() else ()) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    rows = _rows(out)
    assert 0 < len(rows) < 60 and len({r["point"] for r in rows}) == len(rows)
    assert f"{len(rows)} of 60 done" in err and "Traceback" not in err
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".ptviz-")]
    assert not [n for n in os.listdir(keep) if not n.endswith(".msgpack")]
    assert os.listdir(scratch) == []
