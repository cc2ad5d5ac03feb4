"""Progress on long work: a bar on a terminal (a pseudo-terminal here), nothing on a
pipe; and simulate's size estimate, told before the trace is written."""

import io
import os
import pty
import subprocess
import sys

import pytest

from ptviz.sim.estimate import estimate
from ptviz.sim.run import simulate
from tests.conftest import PTVIZ, ROOT


def _run(args, terminal: bool) -> tuple[int, str]:
    """``ptviz ARGS`` with stderr on a pseudo-terminal or a pipe: (status, stderr)."""
    if not terminal:
        done = subprocess.run([*PTVIZ, *args], capture_output=True, text=True, cwd=ROOT)
        return done.returncode, done.stderr
    main, sub = pty.openpty()
    proc = subprocess.Popen([*PTVIZ, *args], stdout=subprocess.DEVNULL, stderr=sub,
                            cwd=ROOT, env={**os.environ, "COLUMNS": "120"})
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:          # EIO: the other end closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("progress") / "w.msgpack")
    simulate(path, "x86_64", "6.14", "walkers", {"size": "512M"}, {}, cpus=4, seed=1)
    return path


@pytest.mark.parametrize("args, what", [(["replay"], "replay"), (["info"], "check"),
                                        (["convert", "--to", "jsonl"], "convert")])
def test_a_terminal_shows_a_bar_and_a_pipe_does_not(big_trace, tmp_path, args, what):
    extra = [str(tmp_path / "out.jsonl")] if "convert" in args else []
    status, err = _run([*args, big_trace, *extra], terminal=True)
    assert status == 0, err
    assert what in err and "events" in err and "━" in err
    if extra:
        os.unlink(extra[0])
    status, err = _run([*args, big_trace, *extra], terminal=False)
    assert status == 0, err
    assert "━" not in err and "\x1b[" not in err


def test_an_import_shows_its_bytes_on_a_terminal(tmp_path):
    import lzma
    text = tmp_path / "gcc.txt"
    text.write_bytes(lzma.open(os.path.join(ROOT, "traces", "raw", "programs",
                                            "real-6.18-gcc-record.txt.xz")).read())
    status, err = _run(["info", str(text)], terminal=True)
    assert status == 0, err
    assert "import" in err and "bytes" in err and "━" in err


def test_simulate_shows_a_bar_after_its_estimate(tmp_path):
    out = tmp_path / "s.msgpack"
    # Large enough (4.3 M events) that the pilot, a second at 2-3 M events/s, does not end it:
    # a run the pilot finishes is written at once, without a bar.
    status, err = _run(["simulate", "--workload", "coverletter", "--param", "size=16G",
                        "-o", str(out)], terminal=True)
    assert status == 0, err
    assert "simulate" in err and "━" in err and out.exists()


SMALL = {"coverletter": {"size": "256M"}, "walkers": {"size": "128M"},
         "munmap": {"size": "256M", "chunk": "8M"}, "fork-exit": {"children": "24"},
         "allocator": {"ops": "6000"}, "collapse": {"regions": "400"}}


@pytest.mark.parametrize("workload", sorted(SMALL))
def test_a_pilot_estimates_the_whole_run(workload):
    """Cut short after its first steps, the pilot's estimate is within a factor of 1.5
    of the events the whole run writes."""
    run = dict(arch_name="x86_64", kernel_version="6.14", workload=workload,
               params=SMALL[workload], overrides={}, cpus=4, seed=2)
    guess = estimate(seconds=0.0, **run)
    assert not guess.exact
    real = simulate(io.BytesIO(), **run)["events"]
    assert real / 1.5 <= guess.events <= real * 1.5, (guess.events, real)
    assert guess.bytes > guess.events        # a simulated event takes 13-22 bytes


def test_a_pilot_that_finishes_is_the_trace_itself(tmp_path):
    run = dict(arch_name="arm64", kernel_version="7.0", workload="walkers",
               params={"size": "16M"}, overrides={}, cpus=4, seed=5)
    guess = estimate(seconds=60, **run)
    assert guess.exact
    simulate(str(tmp_path / "direct.msgpack"), **run)
    assert guess.data == (tmp_path / "direct.msgpack").read_bytes()
    assert guess.events == guess.result["events"] and guess.bytes == len(guess.data)


def test_simulate_warns_before_a_trace_above_1_gb(monkeypatch, tmp_path, capsys):
    import ptviz.cli.simulate as cli
    from ptviz.cli import main
    monkeypatch.setattr(cli, "WARN_BYTES", 1000)
    monkeypatch.setattr("ptviz.sim.estimate.PILOT_S", 0.0)
    assert main(["simulate", "--workload", "collapse", "-o", str(tmp_path / "c.msgpack")]) == 0
    err = capsys.readouterr().err
    assert "this simulation writes about" in err and "estimated" in err
    assert (tmp_path / "c.msgpack").exists()


def test_a_pilot_whose_first_step_is_too_long_gives_up_and_the_run_goes_on(
        monkeypatch, tmp_path, capsys):
    """coverletter with step = size is one step: the pilot stops at its memory budget
    with nothing to extrapolate from, and simulate runs without an estimate."""
    from ptviz.cli import main
    monkeypatch.setattr("ptviz.sim.estimate.MAX_PILOT_BYTES", 64 << 10)
    run = dict(arch_name="x86_64", kernel_version="6.14", workload="coverletter",
               params={"size": "256M", "step": "256M", "batch": "1"}, overrides={}, cpus=4,
               seed=1)
    assert estimate(**run) is None
    out = tmp_path / "one-step.msgpack"
    assert main(["simulate", "--workload", "coverletter", "--param", "size=256M",
                 "--param", "step=256M", "--param", "batch=1", "-o", str(out)]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().err


def test_an_import_counts_bytes_read_so_a_utf8_capture_reaches_its_size(tmp_path):
    """Progress is the file's bytes: with multi-byte comms, counting characters stopped
    short of the total. It only grows, stays within the file, and ends at its size."""
    import lzma
    from ptviz.ftrace.importer import import_file
    raw = lzma.open(os.path.join(ROOT, "traces", "raw", "programs",
                                 "real-6.18-gcc-record.txt.xz")).read()
    # Every task renamed to a four-byte-per-character comm (the same length in chars).
    text = tmp_path / "utf8.txt"
    text.write_bytes(raw.replace(b"cc1-", "\U0001f525\U0001f525\U0001f525-".encode()))
    told = []
    import_file(str(text), str(tmp_path / "o.msgpack"),
                progress=lambda done, total, unit: told.append((done, total, unit)))
    size = os.path.getsize(text)
    done = [d for d, _, _ in told]
    assert len(told) > 2 and {t for _, t, _ in told} == {size}
    assert {u for _, _, u in told} == {"bytes"}
    assert done == sorted(done) and done[-1] == size and max(done[:-1]) <= size


@pytest.mark.parametrize("kind", ["gzip", "xz", "zstd"])
def test_unpacking_reports_the_compressed_bytes_read_up_to_the_files_size(tmp_path, kind):
    """A large .xz takes a while to unpack: its progress is the compressed file read so
    far (the content's size is not known before the end), growing to the file's size."""
    import gzip
    import lzma
    import zstandard
    from ptviz.decompress import BLOCK, decompressed
    content = os.urandom(BLOCK // 2) * 8        # a few blocks once unpacked
    pack = {"gzip": gzip.compress, "xz": lzma.compress,
            "zstd": zstandard.ZstdCompressor().compress}[kind]
    path = tmp_path / f"trace.{kind}"
    path.write_bytes(pack(content))
    told = []
    with decompressed(str(path), str(tmp_path), lambda *a: told.append(a)) as out:
        with open(out, "rb") as f:
            assert f.read() == content
    size = os.path.getsize(path)
    done = [d for d, _, _ in told]
    assert len(told) >= 2 and {(t, u) for _, t, u in told} == {(size, "bytes")}
    assert done == sorted(done) and done[-1] == size


def test_a_compressed_capture_shows_unpacking_then_importing_on_a_terminal():
    status, err = _run(["info", os.path.join(ROOT, "traces", "raw", "programs",
                                             "real-6.18-gcc-record.txt.xz")], terminal=True)
    assert status == 0, err
    assert "unpack" in err and "import" in err and err.index("unpack") < err.index("import")
