"""One simulation run: check the inputs, resolve the config, build the machine, run a
workload, write. Every input is checked here, against the tables in workloads.py, before
the output file is opened."""

from __future__ import annotations

import gc
import os
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator

from replayer import __version__
from replayer.errors import UsageError
from replayer.traceio import TraceWriter
from replayer.units import SIZE_SUFFIXES, AmountError, format_size, parse_count, parse_size, shown

from .. import arches
from ..arches import Arch
from . import kernels
from .machine import Machine
from .mm import Kernel
from .system import Sim, StepHook
from .workloads import BASE, MODEL, PARAMS, USER_TOP, WORKLOADS, Bound, Param, Run

# The trace's CPU columns are uint16 (replayer/traceio/validate.py), so 4096 fits with room;
# it also keeps a broadcast sync, one IPI event per other CPU, affordable.
MAX_CPUS = 4096
MAX_SEED = (1 << 63) - 1       # the trace header holds it as a msgpack int64
#: Allocations between young-generation collections while simulating (Python's: 700).
GC_YOUNG = 50_000


def simulate(out: str, arch_name: str, kernel_version: str, workload: str,
             params: dict[str, str], overrides: dict[str, str], cpus: int = 4,
             seed: int = 1, command: list[str] | None = None, force: bool = False,
             on_step: StepHook | None = None) -> dict[str, Any]:
    """Run one simulation into ``out`` (a path: an existing file is replaced only with
    ``force``; or a binary file); returns a summary (events, seconds, ...).
    ``on_step`` follows the workload's main loop (it may raise to stop the run)."""
    arch = arches.get(arch_name)
    cfg = kernels.resolve(arch, kernel_version, overrides)
    if not 1 <= cpus <= MAX_CPUS:
        raise UsageError(f"--cpus {cpus}: out of range; expected 1..{MAX_CPUS}")
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed {seed}: out of range; expected 0..{MAX_SEED}")
    values, model_values = parse_params(workload, params, arch, cpus)
    # The header keeps the parameters as typed, model ones apart, in the order given.
    model = {k: params[k] for k in MODEL if k in params}
    given = {k: text for k, text in params.items() if k not in MODEL}
    header = {
        "source": "sim", "clock": "ns (simulated)", "cpus": cpus, "arch": arch.header(),
        "kernel": cfg.header(),
        "workload": {"name": workload, "params": given, "model": model},
        "seed": seed, "simulator": f"ptviz {__version__}",
        "command": command or [],
        "warnings": list(cfg.warnings),
    }
    started = time.perf_counter()
    with _few_collections(), TraceWriter(out, header, force=force) as writer:
        machine = Machine(writer, cpus, seed, ipi_flush=arch.tlb_shootdown == "ipi")
        kernel = Kernel(machine, arch, cfg, **model_values)
        WORKLOADS[workload](Sim(machine, kernel, on_step), values)
        events = machine.finish()
    seconds = time.perf_counter() - started
    return {"path": os.fspath(out) if isinstance(out, (str, os.PathLike)) else None,
            "events": events, "seconds": seconds,
            "events_per_s": events / seconds if seconds else 0.0,
            "reclaimed": kernel.reclaimed, "ipis": machine.ipis,
            "grace_periods": machine.gp_count, "sync_wait_ns": machine.sync_wait_ns,
            "config": cfg}


@contextmanager
def _few_collections() -> Iterator[None]:
    """The cyclic collector less often while the simulator runs: it makes millions of
    short-lived tuples (events) and no cycles worth a pass every 700 of them, and the
    passes took a quarter of its time. The thresholds are put back after."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


# -- parameters ------------------------------------------------------------------------


class _Bad(Exception):
    """Why a value cannot be used; the caller says which value and what is accepted."""


# A probability: a plain decimal number (ASCII digits only: float() would also take "٣",
# "1_0", "nan" or "inf").
_PROBABILITY = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _gloss(n: int) -> str:
    """A readable name for a long size bound: ``1T-4K`` for ``1073741820K``, else ""."""
    if len(format_size(n)) <= 6:
        return ""
    return min((f"{-(-n // s)}{u}-{format_size(-(-n // s) * s - n)}" for u, s in SIZE_SUFFIXES
                if n % s and 2 * n > s), key=len, default="")


def parse_int(text: str, what: str, lo: int, hi: int) -> int:
    """A count in ``lo..hi`` (``--cpus``, ``--seed``), else a one-line UsageError."""
    try:
        n = parse_count(text, what)
        problem = "" if lo <= n <= hi else "out of range"
    except AmountError as bad:
        problem = bad.problem
    if problem:
        raise UsageError(f"{what} {shown(text)}: {problem}; expected {lo}..{hi}")
    return n


def _at(bound: Any, run: Run) -> Any:
    return bound.of(run) if isinstance(bound, Bound) else bound


def _value(p: Param, text: str) -> Any:
    if p.kind == "choice":
        if text not in p.choices:
            raise _Bad("unknown value")
        return text
    if p.kind == "probability":
        if _PROBABILITY.fullmatch(text.strip()) is None:
            raise _Bad("expected a number")
        return float(text)                       # 1e999 is inf: out of range
    try:
        return parse_size(text) if p.kind == "size" else parse_count(text)
    except AmountError as bad:
        raise _Bad(bad.detail) from None


def _check(p: Param, value: Any, run: Run) -> None:
    if p.kind == "choice":
        return
    if not _at(p.lo, run) <= value <= _at(p.hi, run):
        raise _Bad("out of range")
    if p.kind == "size" and value % _at(p.align, run):
        raise _Bad(f"not a multiple of {format_size(_at(p.align, run))}")
    if p.divides and run.values[p.divides] % value:
        raise _Bad(f"does not divide {p.divides}={format_size(run.values[p.divides])}")


def accepts(p: Param, run: Run | None = None) -> str:
    """What ``p`` accepts in words: symbolic without a run, in the run's numbers with one."""
    if p.kind == "choice":
        return ", ".join(p.choices[:-1]) + f" or {p.choices[-1]}"
    if p.kind == "probability":
        return "a probability 0..1"
    fmt = format_size if p.kind == "size" else str

    def end(b: Any) -> str:
        """One end: its number, then what that is: ``4K (a page)``, ``1073741820K (1T-4K)``."""
        if run is None and isinstance(b, Bound):
            return b.text
        n = _at(b, run) if run is not None else b
        notes = [_gloss(n) if p.kind == "size" else "", b.text if isinstance(b, Bound) else ""]
        notes = [x for x in notes if x]
        return fmt(n) + (f" ({' = '.join(notes)})" if notes else "")
    text = f"{end(p.lo)}..{end(p.hi)}"
    if p.kind == "size":
        text += (f", a multiple of {format_size(p.align)}" if not isinstance(p.align, Bound) else
                 f", a multiple of {run.arch.name}'s {format_size(run.arch.page_size)} page"
                 if run else ", a page multiple")
    return text + (f" dividing {p.divides}" if p.divides else "")


def parse_params(workload: str, raw: dict[str, str], arch: Arch,
                 cpus: int) -> tuple[dict[str, Any], dict[str, float]]:
    """``--param`` texts → (the workload's values, the model's), defaults filled in.

    Raises UsageError naming the first bad value and what its parameter accepts."""
    if workload not in WORKLOADS:
        raise UsageError(f"unknown workload {shown(workload)}; known: {', '.join(WORKLOADS)}")
    table = PARAMS[workload]
    unknown = [k for k in raw if k not in table and k not in MODEL]
    if unknown:
        raise UsageError(f"--param {shown(unknown[0])}: {workload} takes {', '.join(table)} "
                         f"(and {', '.join(MODEL)}); see ptviz simulate --help")
    run = Run(workload, arch, cpus, {})
    for name, p in (*table.items(), *MODEL.items()):
        value = _at(p.default, run)
        try:
            if name in raw:
                value = _value(p, raw[name])
            if name in raw or p.divides:         # a default that must fit what was given
                _check(p, value, run)
        except _Bad as bad:
            what = f"{name} is" if name in MODEL else f"{workload} takes {name}"
            if name in raw:
                raise UsageError(f"--param {name}={shown(raw[name])}: {bad}; {what} "
                                 f"{accepts(p, run)}") from None
            given = f"{p.divides}={shown(raw.get(p.divides, '(default)'))}"
            raise UsageError(f"--param {given}: the default {name}={format_size(value)} does not "
                             f"divide it; give a {name}: {what} {accepts(p, run)}") from None
        run.values[name] = value
    return {k: run.values[k] for k in table}, {k: run.values[k] for k in MODEL}


def help_text() -> str:
    """Every workload's parameters, defaults and ranges, for ``simulate --help``."""
    def default(p: Param) -> str:
        d = p.default
        return (d.text if isinstance(d, Bound) else format_size(d) if p.kind == "size" else
                f"{d:g}" if isinstance(d, float) else str(d))
    lines = ["Workload parameters, --param NAME=VALUE: the default, then what it takes. Sizes",
             "in bytes or with K, M, G, T (powers of 1024: 2M is 2 MiB); counts, --cpus and",
             "--seed plain or with k, M, G (powers of 1000: 2M is two million). A mapping",
             f"starts at {BASE:#x} and ends by {USER_TOP:#x} (the top of x86_64's 4-level",
             "user space)."]
    for workload, table in PARAMS.items():
        lines += [f"  {workload if i == 0 else '':<12}{name + '=' + default(p):<24}{accepts(p)}"
                  for i, (name, p) in enumerate(table.items())]
    lines.append("Model parameters, any workload, probabilities 0..1:")
    lines += [f"  {name + '=' + default(p):<36}{p.doc}" for name, p in MODEL.items()]
    return "\n".join(lines) + "\n"
