"""Text output in words: ``info`` and ``replay`` print no Python repr (``None``,
``('x',)``, ``[]``, ``{}``) for any trace, and every option's help says what it takes."""

from __future__ import annotations

import argparse
import glob
import os
import re

import pytest

from ptviz.cli import build_parser, main
from tests.conftest import TRACES
from tests.story import MM, Story

SAMPLES = sorted(glob.glob(os.path.join(TRACES, "*.msgpack")))
CAPTURE = os.path.join(TRACES, "raw", "cases", "real-6.18-thp-record.txt.xz")
REPR = re.compile(r"\('|None|=\(|\[\]|\{\}")
MS = 1_000_000


def _text(capsys, *args: str) -> str:
    assert main(list(args)) == 0, args
    out = capsys.readouterr().out
    assert out.strip()
    return out


def _no_repr(text: str, what: str) -> None:
    found = [line for line in text.splitlines() if REPR.search(line)]
    assert not found, (what, found[:3])


@pytest.fixture(scope="module")
def unknowns(tmp_path_factory):
    """A trace whose header and events leave much unknown, as a recording can: a kernel
    config not readable, empty lists, an unknown probe style, markers of no task,
    events with nil fields."""
    path = tmp_path_factory.mktemp("words") / "t.msgpack"
    s = Story(path, cpus=2, kernel={"version": "6.18.4", "pt_reclaim": None,
                                     "overridden": []},
              command=["python3", "my script.py", "--size=1M"], warnings=[],
              record={"events": ["kmem/mm_page_alloc", "tlb/tlb_flush"],
                      "missing_events": ["rcu/rcu_callback"], "lost": {"0": 0, "1": 3},
                      "probes": [], "probe_style": None, "tail_s": 0.5},
              workload_model={})
    s.at(1 * MS).on(0).mm_new(mm=MM, tgid=100, command="python3")
    s.table_alloc(mm=MM, level=1, pfn=0x5000, addr=0)
    s.at(2 * MS).on(1).walk_begin(mm=MM)
    s.walk_table(pfn=0x5000)
    s.at(3 * MS).on(0).table_sync_begin(targets=(1,))
    s.table_sync_end()
    s.at(4 * MS).on(0).table_detach(mm=MM, pfn=0x5000)
    s.table_free(pfn=0x5000)
    s.at(5 * MS).on(0).rcu_queue(cb=7, pfns=(0x6000,))
    s.rcu_gp_start(gp=1)
    s.rcu_invoke(cb=7)
    s.rcu_gp_end(gp=1)
    s.at(6 * MS).on(0).ipi_send(targets=(1,))
    s.at(7 * MS).on(1).ipi_enter()
    s.at(8 * MS).on(0, None).marker(text="no task")
    s.at(60 * MS).on(0).ipi_send(targets=(1,))
    s.at(90 * MS).on(0).marker(text="end")
    s.writer.close()
    return str(path)


def test_info_and_replay_of_every_sample_are_in_words(capsys):
    assert len(SAMPLES) >= 10
    for path in SAMPLES:
        _no_repr(_text(capsys, "info", path), f"info {path}")
        _no_repr(_text(capsys, "replay", path), f"replay {path}")
        _no_repr(_text(capsys, "replay", "--at", "+1ms", path), f"replay --at {path}")


def test_a_simulation_and_an_import_are_in_words(capsys, tmp_path):
    sim = str(tmp_path / "sim.msgpack")
    assert main(["simulate", "--workload", "walkers", "--param", "size=4M",
                 "--set", "table_free=semi_rcu", "-o", sim]) == 0
    for path in (sim, CAPTURE):
        _no_repr(_text(capsys, "info", path), f"info {path}")
        _no_repr(_text(capsys, "replay", path), f"replay {path}")


def test_what_a_trace_does_not_know_is_said_in_words(capsys, unknowns):
    info = _text(capsys, "info", unknowns)
    _no_repr(info, "info")
    assert "  kernel    6.18.4: pt_reclaim=unknown\n" in info
    assert "  command   python3 'my script.py' --size=1M\n" in info
    assert ("  record    2 events enabled; not available: rcu/rcu_callback; lost 3 on CPU 1; "
            "no probes; tail 0.5 s\n") in info
    assert "warnings" not in info and "workload_model" not in info
    replay = _text(capsys, "replay", unknowns)
    _no_repr(replay, "replay")
    assert "kernel 6.18.4 (pt_reclaim=unknown)" in replay
    assert "  0.008000000  pid unknown  no task" in replay
    assert "sync    unknown: 1 syncs" in replay
    # The free's path, the walker and its protection, the IPI's reason, the RCU
    # callback's function were not given: the findings say so in words.
    assert ("freed on CPU 0 (path unknown) while a lockless walker on CPU 1 (protection "
            "unknown) still holds it") in replay
    assert "an IPI from CPU 0 to CPU 1 was never handled" in replay


def _options(parser: argparse.ArgumentParser):
    """``(command, action)`` for every argument of every subcommand, and ptviz's own."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    yield from (("ptviz", a) for a in parser._actions if a is not sub)
    for name, command in sub.choices.items():
        yield from ((name, a) for a in command._actions)


def test_every_argument_says_what_it_takes_and_its_default():
    checked = 0
    for command, action in _options(build_parser()):
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        help_text = action.help() if callable(action.help) else action.help
        name = action.option_strings[-1] if action.option_strings else action.metavar or \
            action.dest
        assert help_text and help_text != argparse.SUPPRESS and len(help_text) > 12, \
            (command, name)
        # A value with a default says what it is; flags (store_true) default to off.
        if action.default not in (None, False, True, [], argparse.SUPPRESS):
            assert "default" in help_text, (command, name, help_text)
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("command", ["info", "replay", "events", "view", "diff"])
def test_readers_say_they_read_ftrace_text_trace_dat_and_compressed(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("ftrace text", "trace.dat", ".gz, .xz, .zst"):
        assert words in text, (command, words)
