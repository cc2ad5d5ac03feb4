"""``ptviz simulate``: architectures × kernel versions × workloads → a trace."""

from __future__ import annotations

import argparse
import sys
import textwrap

from replayer.errors import UsageError
from replayer.traceio.atomic import check_output

from .errors import EXIT_OK
from .output import LazyHelpFormatter


def _epilog() -> str:
    from ..sim.run import help_text
    return """\
Flags for --set: pt_reclaim=on|off, mmu_gather_rcu_table_free=on|off,
have_arch_tlb_remove_table=on|off, table_free=page|semi_rcu|rcu,
sync=none|ipi_broadcast|ipi_targeted|synchronize_rcu. Combinations the kernel
forbids are allowed (that is how the pre-fix bug is shown) and --explain says so.

""" + help_text()


def _workload_names() -> str:
    from ..sim.workloads import describe
    return f"the workload: {', '.join(describe())}; default coverletter"


def _cpus_help() -> str:
    from ..sim.run import MAX_CPUS
    return f"simulated CPUs, 1..{MAX_CPUS}; default 4"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate an architecture and kernel config into a trace",
                       description="Simulate a kernel's page-table life on N CPUs and write the "
                                   "trace a perfect tracer would see.",
                       epilog=_epilog, formatter_class=LazyHelpFormatter)
    p.add_argument("--arch", default="x86_64",
                   help="the architecture variant, e.g. arm64 or arm64-64k (--list-arches "
                        "lists them); default x86_64")
    p.add_argument("--kernel", default="6.14",
                   help="the kernel version: 6.13 … 6.19, 7.0, after-7.0 (any 7.x after "
                        "7.0); default 6.14")
    p.add_argument("--workload", default="coverletter",
                   help=_workload_names)
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="a workload or model parameter, e.g. size=50G (sizes in bytes or "
                        "K, M, G, T); repeated for each; default: each one's default (below)")
    p.add_argument("--set", action="append", default=[], metavar="FLAG=V", dest="flags",
                   help="override a resolved kernel flag (flags below), e.g. "
                        "table_free=semi_rcu; repeated for each; default: as the kernel "
                        "version and architecture resolve them")
    # Parsed in run(), so a bad value is one line like every other bad input.
    p.add_argument("--cpus", default="4", metavar="N", help=_cpus_help)
    p.add_argument("--seed", default="1", metavar="S",
                   help="the random seed, an integer 0..2^63-1 (the same seed gives the same "
                        "trace); default 1")
    p.add_argument("-o", "--output", metavar="OUT.msgpack",
                   help="the ptviz trace to write (it appears when the simulation is done); "
                        "required unless --explain or --list-arches")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--explain", action="store_true",
                   help="say how each kernel flag resolved and why, citing docs/kernel-facts.md")
    p.add_argument("--list-arches", action="store_true",
                   help="the architecture × kernel-version matrix")
    p.set_defaults(run=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from .. import arches
    from ..sim import kernels
    from ..sim.run import MAX_CPUS, MAX_SEED, parse_int, parse_params, simulate
    if args.list_arches:
        sys.stdout.write(matrix())
        return EXIT_OK
    cpus = parse_int(args.cpus, "--cpus", 1, MAX_CPUS)
    seed = parse_int(args.seed, "--seed", 0, MAX_SEED)
    params, flags = _pairs(args.param, "--param"), _pairs(args.flags, "--set")
    arch = arches.get(args.arch)
    cfg = kernels.resolve(arch, args.kernel, flags)
    parse_params(args.workload, params, arch, cpus)      # every input checked before output
    if args.output:
        check_output(args.output, args.force)
    if args.explain:
        sys.stdout.write(kernels.explain(arch, cfg))
        if not args.output:
            return EXIT_OK
    if not args.output:
        raise UsageError("simulate: -o OUT.msgpack is required (or --explain / --list-arches)")
    command = ["ptviz", "simulate", "--arch", args.arch, "--kernel", args.kernel,
               "--workload", args.workload, "--cpus", str(cpus), "--seed", str(seed)]
    command += [x for k, val in params.items() for x in ("--param", f"{k}={val}")]
    command += [x for k, val in flags.items() for x in ("--set", f"{k}={val}")]
    result = _simulate(args, dict(arch_name=args.arch, kernel_version=args.kernel,
                                  workload=args.workload, params=params, overrides=flags,
                                  cpus=cpus, seed=seed, command=command))
    print(f"ptviz: wrote {result['events']:,} events to {args.output} "
          f"({result['events_per_s'] / 1e6:.2f} M events/s); {result['reclaimed']} PTE tables "
          f"reclaimed, {result['ipis']} IPIs, {result['grace_periods']} grace periods",
          file=sys.stderr)
    for w in cfg.warnings:
        print(f"ptviz: warning: {w}", file=sys.stderr)
    return EXIT_OK


#: Outputs larger than this are announced before they are written.
WARN_BYTES = 1_000_000_000


def _simulate(args: argparse.Namespace, run: dict) -> dict:
    """Simulate into ``args.output``: a pilot first says how big the trace will be (and
    is the trace, when it finishes within its second); then the run, with a progress
    bar on a terminal."""
    from replayer.traceio.atomic import AtomicOutput
    from replayer.units import format_bytes
    from ..sim.estimate import estimate
    from ..sim.run import simulate
    from .errors import warn
    from .progress import progress_bar
    guess = estimate(**run)         # None: the workload's first step is long
    if guess is not None and guess.bytes > WARN_BYTES:
        warn(f"{args.output}: this simulation writes about {format_bytes(guess.bytes)} "
             f"({guess.events:,} events, estimated); ctrl+c stops it and leaves no file")
    if guess is not None and guess.exact:
        with AtomicOutput(args.output, args.force) as out:
            try:
                out.file.write(guess.data)
            except OSError as exc:          # a full disk: one line, no file
                raise out.error(exc) from None
        return guess.result
    expected = guess.events if guess is not None else None
    with progress_bar("simulate", expected) as bar:
        def on_step(step: int, steps: int, events: int, writer) -> None:
            # The estimate may fall short: the total follows what was done.
            bar.at(events, total=None if expected is None else max(expected, events))
        return simulate(args.output, force=args.force, on_step=on_step, **run)

# --list-arches fits 100 columns: the table-free mode and the sync in short words.
_FREE_WORD = {"page": "page", "semi_rcu": "semi", "rcu": "rcu"}
_SYNC_WORD = {"none": "", "ipi_broadcast": "ipi", "ipi_targeted": "tgt",
              "synchronize_rcu": "sync"}


def matrix() -> str:
    """The architectures × kernel versions, every line within 100 columns."""
    from .. import arches
    from ..sim import kernels
    versions = list(kernels.VERSIONS)
    lines = [f"{'arch':<15}{'page':>4}{'PTRS':>5}{'lvl':>4}{'VmPTE':>6} {'tlb':<10}"
             + "".join(f"{ver:<11}" for ver in versions)]
    syncs = set()
    for name, arch in arches.ARCHES.items():
        cells = []
        for ver in versions:
            c = kernels.resolve(arch, ver)
            syncs.add(c.sync)
            cell = (f"{'R' if c.pt_reclaim else '-'} {_FREE_WORD[c.table_free]} "
                    f"{_SYNC_WORD[c.sync]}").rstrip()
            cells.append(f"{cell:<11}")
        lines.append(f"{name:<15}{arch.page_size // 1024:>3}K{arch.ptrs_per_pte:>5}"
                     f"{arch.page_table_levels:>4}{arch.pte_table_bytes:>6} {arch.tlb_shootdown:<10}"
                     + "".join(cells))
    shown_syncs = ", ".join(f"{_SYNC_WORD[s]} = {s}" for s in kernels.SYNC
                            if s in syncs and _SYNC_WORD[s])
    lines += textwrap.wrap(
        "page: base page size; PTRS: PTRS_PER_PTE; lvl: page-table levels; VmPTE: bytes one "
        "PTE table adds to VmPTE; tlb: remote TLB shootdown by IPIs, hardware broadcast or a "
        "mix. Each kernel: R = PT_RECLAIM; then the table-free mode (page, semi = semi_rcu, "
        f"rcu) and the walker sync of the single-table path ({shown_syncs}; blank: none). "
        "--explain says why, with sources.", width=90)
    return "\n".join(line.rstrip() for line in lines) + "\n"
