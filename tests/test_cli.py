"""The ptviz command line: --help, info (text and JSON), commands still to come."""

import json
import os
import subprocess
import sys

import pytest

from ptviz.cli import BUILT, COMMANDS, main
from tests.conftest import TRACES

SAMPLE = os.path.join(TRACES, "reclaim-6.14-x86_64.msgpack")


def test_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "ptviz", "--help"], capture_output=True,
                          text=True, check=True)
    names = ("view", "replay", "diff", "events", "convert", "simulate", "sweep", "batch",
             "record", "info", "bench")
    for name in names:
        assert f"    {name} " in proc.stdout
    assert set(COMMANDS) == set(names)


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_info_text(capsys):
    assert main(["info", SAMPLE]) == 0
    out = capsys.readouterr().out
    assert "ptviz-trace v2" in out and "footer index" in out
    assert "  arch      x86_64: page_size=4096 " in out
    assert "  kernel    6.14: pt_reclaim=y " in out
    assert "span      1.000001000 → " in out
    # The story (traces/make_samples.py) has 3 table allocations, 2 CPUs. CPU 1 answers
    # the two flush IPIs (MADV_DONTNEED's, exit's: enter, flush, exit each) and runs two
    # grace periods (start, end), the first's callback and its one free: 6 + 4 + 2.
    assert [l.split() for l in out.splitlines() if l.strip().startswith("table_alloc")] == \
        [["table_alloc", "3"]]
    assert any(l.split() == ["cpu1", "12"] for l in out.splitlines())


def test_info_json(capsys):
    assert main(["info", "--json", SAMPLE]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == "ptviz-trace" and facts["version"] == 2
    assert facts["header"]["arch"]["ptrs_per_pte"] == 512
    assert facts["events"] == sum(facts["by_kind"].values()) == sum(facts["by_cpu"].values())
    assert facts["by_kind"]["table_free"] == 3 and facts["by_kind"]["mm_new"] == 1
    assert facts["first_ts"] == 1_000_001_000
    assert facts["duration_ns"] == facts["last_ts"] - facts["first_ts"] > 40_000_000
    assert facts["warnings"] == []


def test_info_on_a_truncated_trace_warns_once(tmp_path, capsys):
    data = open(SAMPLE, "rb").read()
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(data[:-20])  # inside the footer
    assert main(["info", str(cut)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning") == 1
    assert "NO footer index" in captured.out


def test_every_command_is_built():
    assert set(BUILT) == set(COMMANDS)
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])


def test_help_loads_neither_numpy_nor_the_engine():
    """``ptviz --help`` and a usage error start fast: each command imports what it
    runs only when it runs (the time itself is measured by ``ptviz bench``)."""
    import subprocess
    import sys
    code = ("import sys, contextlib, io\n"
            "from ptviz.cli import build_parser, main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    build_parser().parse_args(['--help'])\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stderr(io.StringIO()):\n"
            "    main(['frobnicate'])\n"
            "print(sorted(m for m in ('numpy', 'msgpack', 'replayer.replay', 'replayer.fold',"
            " 'ptviz.sim.run', 'ptviz.ftrace.importer', 'textual', 'dask', 'distributed',"
            " 'pyarrow') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out
