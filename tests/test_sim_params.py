"""``ptviz simulate`` checks every input before it writes anything: one ``ptviz:`` line that
names the value and what its parameter accepts, exit 2, no output file."""

import contextlib
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptviz.cli import main
from ptviz.sim import kernels
from ptviz.sim.run import MAX_SEED, simulate
from ptviz.sim.workloads import COUNT_MAX, MODEL, PARAMS
from replayer.errors import UsageError

SIZE_RANGE = "4K (a page)..1073741820K (1T-4K)"
KERNELS = "ptviz simulates 6.13 to 7.x (6.13, 6.14 … 6.19, 7.0, after-7.0)"


def one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1, captured.err
    assert lines[0].startswith("ptviz: ")
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["--param", "size=0"], ["size=0", SIZE_RANGE]),
    (["--param", "size=-1M"], ["size=-1M", SIZE_RANGE]),
    (["--param", "size=1000"], ["size=1000", SIZE_RANGE]),
    (["--param", "size=4096.5"], ["not a whole number of bytes", SIZE_RANGE]),
    (["--param", "size=6K"], ["not a multiple of 4K", "x86_64's 4K page"]),
    (["--param", "size=2T"], ["size=2T", SIZE_RANGE]),
    (["--param", "size=1e999999999"], ["out of range", SIZE_RANGE]),
    (["--param", "size=1Q"], ["unknown unit", SIZE_RANGE]),
    (["--arch", "arm64-64k", "--param", "size=8K"], ["64K (a page)..", "arm64-64k's 64K page"]),
    # The loop wraps at the end of the mapping: a step must divide it, the default too.
    (["--param", "size=3M"], ["size=3M", "default step=2M", "4K (a page)..3M (size)"]),
    (["--param", "size=32M", "--param", "step=3M"], ["step=3M", "does not divide size=32M"]),
    (["--param", "size=32M", "--param", "step=64M"], ["step=64M", "..32M (size)"]),
    (["--param", "iterations=0"], ["iterations=0", f"1..{COUNT_MAX}"]),
    (["--param", "iterations=-3"], ["iterations=-3", f"1..{COUNT_MAX}"]),
    (["--param", "iterations=1.5"], ["iterations=1.5", "whole number", f"1..{COUNT_MAX}"]),
    (["--param", "iterations=abc"], ["iterations=abc", f"1..{COUNT_MAX}"]),
    (["--param", "iterations=٣"], ["iterations=٣", f"1..{COUNT_MAX}"]),
    (["--param", "iterations=" + "9" * 50], ["out of range", f"1..{COUNT_MAX}"]),
    (["--param", "batch=0"], ["batch=0", f"1..{COUNT_MAX}"]),
    (["--param", "batch_fail=2"], ["batch_fail=2", "probability 0..1"]),
    (["--param", "batch_fail=nan"], ["batch_fail=nan", "probability 0..1"]),
    (["--param", "pmd_contention=inf"], ["pmd_contention=inf", "probability 0..1"]),
    (["--param", "refault=-0.1"], ["refault=-0.1", "probability 0..1"]),
    (["--param", "skipped=1e999"], ["skipped=1e999", "probability 0..1"]),
    (["--workload", "walkers", "--param", "readers=99"], ["readers=99", "0..3 (cpus-1)"]),
    (["--workload", "walkers", "--cpus", "1", "--param", "readers=1"], ["0..0 (cpus-1)"]),
    (["--workload", "walkers", "--param", "readers=-1"], ["readers=-1", "0..3"]),
    (["--workload", "walkers", "--param", "gap_ns=-1"], ["gap_ns=-1", "0..1000000000"]),
    (["--workload", "walkers", "--param", "hold_ns=-1"], ["hold_ns=-1", "0..10000000"]),
    (["--workload", "walkers", "--param", "hold_ns=10000001"], ["hold_ns=", "0..10000000"]),
    (["--workload", "walkers", "--param", "walker=GUP"],
     ["walker=GUP", "gup_fast, pte_offset_map or mix"]),
    (["--workload", "munmap", "--param", "chunk=0"], ["chunk=0", SIZE_RANGE]),
    (["--workload", "fork-exit", "--param", "children=0"], ["children=0", f"1..{COUNT_MAX}"]),
    (["--workload", "allocator", "--param", "ops=0"], ["ops=0", f"1..{COUNT_MAX}"]),
    (["--workload", "allocator", "--param", "max=5000"], ["max=5000", "a multiple of 4K"]),
    (["--workload", "allocator", "--param", "arena=4M"], ["arena=4M", "8M (max).."]),
    (["--workload", "collapse", "--param", "regions=0"], ["regions=0", "1..524287"]),
    (["--workload", "collapse", "--param", "regions=524288"], ["regions=524288", "1..524287"]),
    (["--param", "sise=1G"], ["--param sise", "size, step, iterations, batch"]),
    (["--param", "size=1\nG"], ["--param size='1\\nG'", SIZE_RANGE]),
    (["--kernel", "6.12"], ["--kernel 6.12: not modelled", KERNELS]),
    (["--kernel", "8.0"], ["--kernel 8.0: not modelled", KERNELS]),
    (["--kernel", "5.15"], ["--kernel 5.15: not modelled", KERNELS]),
    (["--kernel", "99.1"], ["--kernel 99.1: not modelled", KERNELS]),
    (["--kernel", "6.20"], ["--kernel 6.20: not modelled", KERNELS]),
    (["--kernel", "six"], ["--kernel 'six'", KERNELS]),
    (["--cpus", "0"], ["--cpus 0", "1..4096"]),
    (["--cpus", "70000"], ["--cpus 70000", "1..4096"]),
    (["--cpus", "abc"], ["--cpus abc", "1..4096"]),
    (["--cpus", "2.5"], ["--cpus 2.5", "1..4096"]),
    (["--seed", "-1"], ["--seed -1", f"0..{MAX_SEED}"]),
    (["--seed", str(MAX_SEED + 1)], [f"0..{MAX_SEED}"]),
    (["--explain", "--param", "size=0"], ["size=0", SIZE_RANGE]),   # before any output
])
def test_bad_input_is_one_line_naming_the_range(tmp_path, capsys, args, words):
    out = tmp_path / "out.msgpack"
    assert main(["simulate", *args, "-o", str(out)]) == 2
    line = one_error_line(capsys)
    assert all(w in line for w in words), line
    assert not out.exists()


@pytest.mark.parametrize("version, parsed", [
    ("6.13", (6, 13)), ("6.15", (6, 15)), ("6.18", (6, 18)), ("6.19", (6, 19)),
    ("6.14.3", (6, 14)), ("7.0", (7, 0)), ("after-7.0", (7, 1)), ("7.3", (7, 3)),
])
def test_modelled_kernels(version, parsed):
    assert kernels.parse_version(version) == parsed


def test_fractional_sizes_in_whole_pages_and_zero_gaps_are_fine(tmp_path, capsys):
    out = tmp_path / "a.msgpack"
    assert main(["simulate", "--param", "size=1.5G", "--param", "iterations=1",
                 "-o", str(out)]) == 0
    # Back-to-back walks: many sessions, each at least 200 ns, so the run ends.
    assert main(["simulate", "--workload", "walkers", "--param", "size=2M", "--param",
                 "iterations=1", "--param", "gap_ns=0", "--param", "hold_ns=0",
                 "-o", str(tmp_path / "b.msgpack")]) == 0


def test_the_api_checks_too(tmp_path):
    out = tmp_path / "x.msgpack"
    for kwargs, params in [({"cpus": 0}, {}), ({"seed": -1}, {}), ({}, {"size": "0"})]:
        with pytest.raises(UsageError):
            simulate(str(out), "x86_64", "6.14", "coverletter", params, {}, **kwargs)
        assert not out.exists()


def test_help_lists_every_parameter_with_its_range(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    for table in PARAMS.values():
        assert all(f"  {name}=" in text or f" {name}=" in text for name in table)
    assert all(f"{name}=" in text for name in MODEL)
    assert "1073741820K (1T-4K)" in text and "0..cpus-1" in text


# -- arbitrary values: 0 or 2, never a traceback -----------------------------------

# Text that may read as a count (2M is two million) is drawn on purpose below, not at random.
_INT_TEXT = re.compile(r"\s*[+-]?[0-9.]+(?:[eE][+-]?[0-9]*)? *[A-Za-z]*\s*")
_TEXT = st.text(max_size=12).filter(lambda s: not _INT_TEXT.fullmatch(s))
_ODD = st.sampled_from(["", " ", "nan", "inf", "-inf", "-0", "0x10", "1_0", "٣", "1e3",
                        "1.5", ".5", "5.", "1e-400", "1e999", "2**8", "1/2", "+1", "1 0",
                        "2k", "0.03k", "1.5k", "5G", "1Q"])
# Counts: small valid values, or out of range; a valid 10^8 would only make a long run.
_COUNT = st.one_of(st.integers(-3, 40).map(str), st.integers(min_value=COUNT_MAX + 1).map(str),
                   st.integers(max_value=-1).map(str), st.floats().map(repr), _TEXT, _ODD)
_ANY_INT = st.one_of(st.integers().map(str), st.floats().map(repr), _TEXT, _ODD)
_SIZE = st.one_of(
    st.builds("{}{}".format,
              st.one_of(st.integers(-5, 5000), st.integers(min_value=1 << 40), st.floats(),
                        st.sampled_from(["1.5", "0.5", "2.", "1e3", "1e-3", "-0"])),
              st.sampled_from(["", "K", "M", "G", "T", "P", "k", "KiB", "kb", "B", "X", " M"])),
    _TEXT, _ODD)
_PROBABILITY = st.one_of(st.floats().map(repr), st.floats(0, 1).map(str), _TEXT, _ODD)

# (workload, the other parameters, tiny so any valid draw runs in milliseconds)
CASES = {
    "size": ("coverletter", {"iterations": "1"}, _SIZE),
    "step": ("coverletter", {"size": "8M", "iterations": "2"}, _SIZE),
    "iterations": ("coverletter", {"size": "2M"}, _COUNT),
    "batch": ("coverletter", {"size": "2M", "iterations": "1"}, _ANY_INT),
    "walker": ("walkers", {"size": "2M", "iterations": "1"},
               st.one_of(_TEXT, st.sampled_from(["gup_fast", "pte_offset_map", "mix"]))),
    "readers": ("walkers", {"size": "2M", "iterations": "1"}, _ANY_INT),
    "gap_ns": ("walkers", {"size": "2M", "iterations": "1"}, _ANY_INT),
    "hold_ns": ("walkers", {"size": "2M", "iterations": "1"}, _ANY_INT),
    "chunk": ("munmap", {"size": "4M"}, _SIZE),
    "children": ("fork-exit", {"size": "64K"}, _COUNT),
    "ops": ("allocator", {"max": "64K"}, _COUNT),
    "max": ("allocator", {"ops": "5"}, _SIZE),
    "arena": ("allocator", {"ops": "5", "max": "64K"}, _SIZE),
    "regions": ("collapse", {}, _COUNT),
    **{name: ("coverletter", {"size": "2M", "iterations": "1"}, _PROBABILITY) for name in MODEL},
}
OPTIONS = {
    "--kernel": st.one_of(_TEXT, _ODD, st.builds("{}.{}".format, st.integers(0, 12),
                                                 st.integers(0, 30))),
    "--cpus": st.one_of(st.integers(-3, 4100).map(str), _ANY_INT),
    "--seed": _ANY_INT,
}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def run_quietly(out, args):
    """main() with its output captured; hypothesis cannot use capsys per example."""
    if out.exists():
        out.unlink()
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(["simulate", *args, "-o", str(out)])
    assert code in (0, 2)
    if code == 2:
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ptviz: ") and not std.getvalue()
        assert not out.exists()
        return lines[0]
    assert out.exists()
    return None


@given(data=st.data(), name=st.sampled_from(sorted(CASES)))
def test_any_param_value_is_used_or_refused_in_one_line(out_dir, data, name):
    workload, others, values = CASES[name]
    value = data.draw(values, label=name)
    args = ["--workload", workload]
    for key, text in {**others, name: value}.items():
        args += ["--param", f"{key}={text}"]
    line = run_quietly(out_dir / "p.msgpack", args)
    if line is not None:
        assert name in line or "size=" in line, line


@given(data=st.data(), option=st.sampled_from(sorted(OPTIONS)))
def test_any_option_value_is_used_or_refused_in_one_line(out_dir, data, option):
    value = data.draw(OPTIONS[option], label=option)
    # NAME=VALUE, so a value starting with "-" is not read as another option.
    line = run_quietly(out_dir / "o.msgpack", [f"{option}={value}", "--param", "size=2M",
                                               "--param", "iterations=1"])
    if line is not None:
        assert line.startswith(f"ptviz: {option} "), line
