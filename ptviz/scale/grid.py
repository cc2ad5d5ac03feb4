"""The sweep's grid: lists of simulator inputs, and their product as points.

``--arch all|x86_64,arm64 --kernel 6.13,7.0 --workload walkers --cpus 4
--set table_free=semi_rcu,rcu --param size=64M,1G --seeds 0..99`` is the product of
every list. Names (architectures, kernel versions, workloads, flags) are checked here,
before anything runs: a typo there is a usage error. Values that only the simulator can
judge (a size that is no page multiple on arm64's 64K pages, a parameter a workload does
not take) are checked when the point runs, and a bad one becomes that point's row with
its error, so one bad corner does not cost the rest of the grid.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from replayer.errors import UsageError

#: More points than this is a typo (``--seeds 0..10000000``), not a sweep.
MAX_POINTS = 1_000_000

_RANGE = re.compile(r"([0-9]+)\s*\.\.\s*([0-9]+)")
# Characters a trace's file name keeps; anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class Point:
    """One simulation of the grid. ``flags`` and ``params`` are ``(name, value)`` pairs
    in the order the command line gave them, values as typed (``64M``)."""

    arch: str
    kernel: str
    workload: str
    cpus: int
    flags: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]
    seed: int

    @property
    def key(self) -> str:
        """What identifies the point in a table (``--resume`` and dedupe go by it)."""
        parts = [f"arch={self.arch}", f"kernel={self.kernel}", f"workload={self.workload}",
                 f"cpus={self.cpus}"]
        parts += [f"set.{k}={v}" for k, v in self.flags]
        parts += [f"param.{k}={v}" for k, v in self.params]
        return " ".join(parts + [f"seed={self.seed}"])

    def columns(self) -> dict:
        """The point's own columns of its row: ``set_<flag>`` and ``param_<name>`` apart,
        so a table can be filtered on them without parsing the key."""
        row = {"point": self.key, "arch": self.arch, "kernel": self.kernel,
               "workload": self.workload, "cpus": self.cpus}
        row.update({f"set_{k}": v for k, v in self.flags})
        row.update({f"param_{k}": v for k, v in self.params})
        row["seed"] = self.seed
        return row

    def trace_name(self) -> str:
        """A file name for the point's trace under ``--keep``, unique within a grid."""
        parts = [self.arch, self.kernel, self.workload, f"cpus{self.cpus}"]
        parts += [f"{k}={v}" for k, v in self.flags + self.params]
        return _UNSAFE.sub("_", "-".join(parts + [f"seed{self.seed}"])) + ".msgpack"

    def command(self) -> list[str]:
        """The ``ptviz simulate`` command that makes the same trace (kept in its header)."""
        cmd = ["ptviz", "simulate", "--arch", self.arch, "--kernel", self.kernel,
               "--workload", self.workload, "--cpus", str(self.cpus), "--seed", str(self.seed)]
        cmd += [x for k, v in self.params for x in ("--param", f"{k}={v}")]
        cmd += [x for k, v in self.flags for x in ("--set", f"{k}={v}")]
        return cmd


def items(text: str, what: str) -> list[str]:
    """``"a, b,a"`` → ``["a", "b"]``: comma-separated, repeats dropped, order kept."""
    out = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in out):
        raise UsageError(f"{what} {text!r}: expected a comma-separated list with no empty "
                         f"item")
    return list(dict.fromkeys(out))


def seeds(text: str) -> list[int]:
    """``0..99`` (both ends included), ``1,5,9`` or a mix: ``0..9,20``."""
    from ..sim.run import MAX_SEED
    out: list[int] = []
    for item in items(text, "--seeds"):
        m = _RANGE.fullmatch(item)
        lo, hi = (int(m[1]), int(m[2])) if m else (None, None)
        if m is None:
            if not item.isascii() or not item.isdigit():
                raise UsageError(f"--seeds {item!r}: expected N, A..B or a list of them, "
                                 f"e.g. 0..99 or 1,5,9")
            lo = hi = int(item)
        if hi < lo or hi > MAX_SEED:
            raise UsageError(f"--seeds {item!r}: expected A..B with A <= B <= {MAX_SEED}")
        if hi - lo >= MAX_POINTS:
            raise UsageError(f"--seeds {item!r}: more than {MAX_POINTS:,} seeds")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out))


def _axis(specs: list[str], known: tuple[str, ...], what: str) -> list[tuple[str, list[str]]]:
    """``["table_free=semi_rcu,rcu", ...]`` → ``[("table_free", ["semi_rcu", "rcu"])]``;
    names outside ``known`` (when given) are refused."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{what} {spec!r}: expected NAME=V1,V2,...")
        if known and name not in known:
            raise UsageError(f"{what} {name!r}: unknown; known: {', '.join(known)}")
        if name in out:
            raise UsageError(f"{what} {name!r} given twice; list its values in one: "
                             f"{name}=A,B")
        out[name] = items(values, f"{what} {name}")
    return list(out.items())


def grid(arch: str, kernel: str, workload: str, cpus: str, flags: list[str],
         params: list[str], seed_text: str) -> list[Point]:
    """Every point of the product, seeds innermost. O(points)."""
    from .. import arches
    from ..sim import kernels
    from ..sim.run import MAX_CPUS, parse_int
    from ..sim.workloads import WORKLOADS
    arch_names = list(arches.ARCHES) if arch.strip() == "all" else items(arch, "--arch")
    for name in arch_names:
        arches.get(name)
    versions = list(kernels.VERSIONS) if kernel.strip() == "all" else items(kernel, "--kernel")
    for version in versions:
        kernels.parse_version(version)
    workloads = list(WORKLOADS) if workload.strip() == "all" else items(workload, "--workload")
    for name in workloads:
        if name not in WORKLOADS:
            raise UsageError(f"--workload {name!r}: unknown; known: {', '.join(WORKLOADS)}")
    cpu_counts = list(dict.fromkeys(parse_int(c, "--cpus", 1, MAX_CPUS)
                                    for c in items(cpus, "--cpus")))
    flag_axes = _axis(flags, kernels.FLAGS, "--set")
    param_axes = _axis(params, (), "--param")
    seed_list = seeds(seed_text)
    total = len(arch_names) * len(versions) * len(workloads) * len(cpu_counts) * len(seed_list)
    for _, values in flag_axes + param_axes:
        total *= len(values)
    if total > MAX_POINTS:
        raise UsageError(f"the grid has {total:,} points; at most {MAX_POINTS:,}")
    flag_sets = [tuple(zip([n for n, _ in flag_axes], combo))
                 for combo in itertools.product(*(v for _, v in flag_axes))]
    param_sets = [tuple(zip([n for n, _ in param_axes], combo))
                  for combo in itertools.product(*(v for _, v in param_axes))]
    return [Point(a, k, w, c, f, p, s)
            for a, k, w, c, f, p in itertools.product(arch_names, versions, workloads,
                                                      cpu_counts, flag_sets, param_sets)
            for s in seed_list]
