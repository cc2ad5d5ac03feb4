"""`ptviz sweep` and `ptviz batch` on a real Dask cluster: a ``distributed.LocalCluster``
of two worker processes, one thread each, the same code path as a remote scheduler."""

import os
import signal

import pytest

from ptviz.cli import main
from ptviz.scale import driver
from tests.test_scale import SMALL, _rows, _without

distributed = pytest.importorskip("distributed")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # The workers' $TMPDIR is the test's: a worker SIGKILLed mid-point (below) cannot
    # remove its scratch directory, and the machine's /tmp must not keep it.
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("workers-tmp"))
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=50) as cluster:
            yield cluster.scheduler_address
    finally:
        if before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before


def test_a_grid_gives_the_same_rows_on_the_cluster_as_on_the_local_pool(tmp_path, cluster,
                                                                       capsys):
    local, remote = tmp_path / "local.jsonl", tmp_path / "cluster.parquet"
    assert main(SMALL + ["-o", str(local)]) == 0
    on_cluster = SMALL[:-2] + ["--cluster", cluster, "-o", str(remote)]
    assert main(on_cluster) == 0
    assert "on 2 Dask workers at" in capsys.readouterr().err
    rows = _without(_rows(local), "seconds")
    assert len(rows) == 6
    assert _without(pq.read_table(remote).to_pylist(), "seconds") == rows


def test_a_worker_killed_during_the_sweep_loses_no_row_and_doubles_none(tmp_path, cluster):
    """The worker running a point is killed (SIGKILL) while the sweep goes on: Dask
    reruns its tasks on the other worker (the nanny starts a new one), and every point
    still has exactly one row."""
    real, killed = driver.collect, []

    def collect(workers, tasks, rows, on_row):
        client = workers.client
        pids = client.run(os.getpid)

        def hook(row):
            if row is not None and not killed:
                busy = {w: keys for w, keys in client.processing().items() if keys}
                if busy:
                    worker = next(iter(busy))
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append((worker, len(busy[worker])))
            on_row(row)
        real(workers, tasks, rows, hook)
    out = tmp_path / "t.jsonl"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(driver, "collect", collect)
        assert main(SMALL[:-4] + ["--seeds", "0..7", "--cluster", cluster,
                                  "-o", str(out)]) == 0
    assert killed and killed[0][1] >= 1        # it had a point when it died
    rows = _rows(out)
    assert len(rows) == 16 and len({r["point"] for r in rows}) == 16
    assert not [r for r in rows if r["error"]]


def test_batch_on_a_cluster_says_a_trace_must_be_on_a_shared_filesystem(tmp_path, cluster,
                                                                       capsys):
    missing = str(tmp_path / "only-here.msgpack")
    assert main(["batch", missing, "--cluster", cluster]) == 2
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "only-here" in x)
    assert "no such file" in line and "filesystem every worker shares" in line
