"""One simulation run: check the inputs, resolve the config, build the machine, run a
workload, write. Every input is checked here, against the tables in workloads.py, before
the output file is opened."""

from __future__ import annotations

import os
import re
import time
from decimal import Decimal, localcontext
from typing import Any

from replayer import __version__
from replayer.errors import UsageError
from replayer.traceio import TraceWriter
from replayer.units import parse_size

from .. import arches
from ..arches import Arch
from . import kernels
from .kernels import shown
from .machine import Machine
from .mm import Kernel
from .system import Sim
from .workloads import BASE, MODEL, PARAMS, USER_TOP, WORKLOADS, Bound, Param, Run

# The trace's CPU columns are uint16 (replayer/traceio/validate.py), so 4096 fits with room;
# it also keeps a broadcast sync, one IPI event per other CPU, affordable.
MAX_CPUS = 4096
MAX_SEED = (1 << 63) - 1       # the trace header holds it as a msgpack int64
def simulate(out: str, arch_name: str, kernel_version: str, workload: str,
             params: dict[str, str], overrides: dict[str, str], cpus: int = 4,
             seed: int = 1, command: list[str] | None = None, force: bool = False
             ) -> dict[str, Any]:
    """Run one simulation into ``out`` (an existing file is replaced only with
    ``force``); returns a summary (events, seconds, ...)."""
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
    with TraceWriter(out, header, force=force) as writer:
        machine = Machine(writer, cpus, seed, ipi_flush=arch.tlb_shootdown == "ipi")
        kernel = Kernel(machine, arch, cfg, **model_values)
        WORKLOADS[workload](Sim(machine, kernel), values)
        events = machine.finish()
    seconds = time.perf_counter() - started
    return {"path": os.fspath(out), "events": events, "seconds": seconds,
            "events_per_s": events / seconds if seconds else 0.0,
            "reclaimed": kernel.reclaimed, "ipis": machine.ipis,
            "grace_periods": machine.gp_count, "sync_wait_ns": machine.sync_wait_ns,
            "config": cfg}


# -- parameters ------------------------------------------------------------------------


class _Bad(Exception):
    """Why a value cannot be used; the caller says which value and what is accepted."""


# ASCII digits only: int() and float() would also take "٣", "1_0", "nan" or "inf".
_WHOLE = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?) *([A-Za-z]*)")
_UNITS = (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10))


def fmt_size(n: int) -> str:
    """Bytes the shortest way a user can type them: ``2M``, ``1073741820K``, ``1000``."""
    return min([f"{n // s}{u}" for u, s in _UNITS if n > 0 and n % s == 0] + [str(n)], key=len)


def _gloss(n: int) -> str:
    """A readable name for a long size bound: ``1T-4K`` for ``1073741820K``, else ""."""
    if len(fmt_size(n)) <= 6:
        return ""
    return min((f"{-(-n // s)}{u}-{fmt_size(-(-n // s) * s - n)}" for u, s in _UNITS
                if n % s and 2 * n > s), key=len, default="")


def _whole(text: str) -> int:
    t = text.strip()
    if not _WHOLE.fullmatch(t):
        raise _Bad("expected a whole number")
    if len(t.lstrip("+-").lstrip("0")) > 30:     # no range comes near; int() may refuse it
        raise _Bad("out of range")
    return int(t)


def _bytes(text: str) -> int:
    m = _NUMBER.fullmatch(text.strip())
    if m is None:
        raise _Bad("expected bytes or a value with a unit (K, M, G, T)")
    try:
        unit = parse_size("1" + m[2])
    except UsageError:
        raise _Bad(f"unknown unit {shown(m[2])}; expected K, M, G or T") from None
    number = Decimal(m[1])
    # Before the exact product: 1e999999999 would build a billion-digit integer.
    if not number.is_zero() and abs(number.adjusted()) > 30:
        raise _Bad("out of range" if number.adjusted() > 0 else "not a whole number of bytes")
    with localcontext() as ctx:
        ctx.prec = len(m[1]) + 40                # exact: 4096.000…01 must not round to 4096
        exact = number * unit
        if exact != exact.to_integral_value():
            raise _Bad("not a whole number of bytes")
    return int(exact)


def parse_int(text: str, what: str, lo: int, hi: int) -> int:
    """A whole number in ``lo..hi`` (``--cpus``, ``--seed``), else a one-line UsageError."""
    try:
        n = _whole(text)
        if lo <= n <= hi:
            return n
        problem = "out of range; expected"
    except _Bad as bad:
        problem = "out of range; expected" if str(bad) == "out of range" else \
            "expected a whole number"
    raise UsageError(f"{what} {shown(text)}: {problem} {lo}..{hi}")


def _at(bound: Any, run: Run) -> Any:
    return bound.of(run) if isinstance(bound, Bound) else bound


def _value(p: Param, text: str) -> Any:
    if p.kind == "choice":
        if text not in p.choices:
            raise _Bad("unknown value")
        return text
    if p.kind == "probability":
        m = _NUMBER.fullmatch(text.strip())
        if m is None or m[2]:
            raise _Bad("expected a number")
        return float(m[1])                       # 1e999 is inf: out of range
    return _bytes(text) if p.kind == "size" else _whole(text)


def _check(p: Param, value: Any, run: Run) -> None:
    if p.kind == "choice":
        return
    if not _at(p.lo, run) <= value <= _at(p.hi, run):
        raise _Bad("out of range")
    if p.kind == "size" and value % _at(p.align, run):
        raise _Bad(f"not a multiple of {fmt_size(_at(p.align, run))}")
    if p.divides and run.values[p.divides] % value:
        raise _Bad(f"does not divide {p.divides}={fmt_size(run.values[p.divides])}")


def accepts(p: Param, run: Run | None = None) -> str:
    """What ``p`` accepts in words: symbolic without a run, in the run's numbers with one."""
    if p.kind == "choice":
        return ", ".join(p.choices[:-1]) + f" or {p.choices[-1]}"
    if p.kind == "probability":
        return "a probability 0..1"
    fmt = fmt_size if p.kind == "size" else str

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
        text += (f", a multiple of {fmt_size(p.align)}" if not isinstance(p.align, Bound) else
                 f", a multiple of {run.arch.name}'s {fmt_size(run.arch.page_size)} page"
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
            raise UsageError(f"--param {given}: the default {name}={fmt_size(value)} does not "
                             f"divide it; give a {name}: {what} {accepts(p, run)}") from None
        run.values[name] = value
    return {k: run.values[k] for k in table}, {k: run.values[k] for k in MODEL}


def help_text() -> str:
    """Every workload's parameters, defaults and ranges, for ``simulate --help``."""
    def default(p: Param) -> str:
        d = p.default
        return (d.text if isinstance(d, Bound) else fmt_size(d) if p.kind == "size" else
                f"{d:g}" if isinstance(d, float) else str(d))
    lines = ["Workload parameters, --param NAME=VALUE: the default, then what it takes. Sizes",
             f"in bytes or with K, M, G, T; a mapping starts at {BASE:#x} and ends by",
             f"{USER_TOP:#x} (the top of x86_64's 4-level user space)."]
    for workload, table in PARAMS.items():
        lines += [f"  {workload if i == 0 else '':<12}{name + '=' + default(p):<24}{accepts(p)}"
                  for i, (name, p) in enumerate(table.items())]
    lines.append("Model parameters, any workload, probabilities 0..1:")
    lines += [f"  {name + '=' + default(p):<36}{p.doc}" for name, p in MODEL.items()]
    return "\n".join(lines) + "\n"
