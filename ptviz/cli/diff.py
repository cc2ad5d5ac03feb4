"""``ptviz diff A B``: what changes between two traces, headless, for people and CI."""

from __future__ import annotations

import argparse
from typing import Any

from replayer.units import format_bytes, format_ts

from .errors import EXIT_CONDITION, EXIT_OK, fail, warn
from .output import TRACE_HELP, LazyHelpFormatter, emit, printable


def _epilog() -> str:
    from replayer.diff import METRICS
    return f"""\
Markers are matched by their text with the numbers taken out, in order ("VmPTE: 64 kB
(after mmap)" in A is "VmPTE: 128 kB (after mmap)" in B).
--fail-on takes NAME or NAME OP [+|-]VALUE[%] on B minus A (OP: > >= < <= == !=;
VALUE may have a size unit: 1M; with % it is relative to A), comma-separated or
repeated; a bare NAME means any difference. Examples: empty_attached_bytes>+1M,
ipis_sent>+10%, peak_empty_attached>0, use_after_free. Names:
{", ".join(METRICS)}.
Exit status: 0, 1 when a --fail-on condition holds (or either trace lost events and a
condition does not hold: it cannot be decided), 2 bad input or usage.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="compare two traces: VmPTE per marker, tables, IPIs (CI)",
                       description="Replay two traces and report what differs: VmPTE at the "
                                   "markers both share, PTE tables by class and their peaks, "
                                   "TLB flushes and IPIs per CPU, grace periods, findings.",
                       epilog=_epilog, formatter_class=LazyHelpFormatter)
    p.add_argument("a", metavar="A", help=f"the baseline trace: {TRACE_HELP}")
    p.add_argument("b", metavar="B", help="the trace compared with A (read as A)")
    p.add_argument("--json", action="store_true",
                   help="print the comparison as one JSON object instead of text (DIFF.md; "
                        "JSON Schema: replayer/diff.schema.json)")
    p.add_argument("--fail-on", action="append", default=[], metavar="COND",
                   help="exit 1 when a condition on B - A holds, e.g. "
                        "empty_attached_bytes>+1M (bytes, or K, M, G), ipis_sent>+10%%; "
                        "comma-separated or repeated (names below); default: none")
    p.set_defaults(run=run)


def _report(path: str) -> dict[str, Any]:
    from .inputs import open_trace
    from .progress import load_replay
    from replayer.report import build_report
    with open_trace(path) as reader:
        report = build_report(load_replay(reader, f"replay {path}"))
    for w in report["trace"]["warnings"]:
        warn(w)
    return report


def run(args: argparse.Namespace) -> int:
    from replayer.diff import diff_failed, diff_reports, parse_diff_fail_on
    conditions = parse_diff_fail_on(args.fail_on)
    diff = diff_reports(_report(args.a), _report(args.b))
    emit(diff, args.json, render)
    held = diff_failed(diff, conditions)
    for text in held:
        fail(f"fail-on: {text}")
    lossy = [s for s in ("a", "b") if not diff[s]["counts_trusted"]]
    undecided = [c.text for c in conditions if lossy and not c.holds(diff)]
    for text in undecided:
        fail(f"fail-on: {text}: cannot be decided, {' and '.join(lossy).upper()} lost events")
    return EXIT_CONDITION if held or undecided else EXIT_OK


# -- text --------------------------------------------------------------------------
def _bytes(n: int, signed: bool = False) -> str:
    text = format_bytes(abs(n))
    return (("+" if n > 0 else "-" if n < 0 else "±") + text) if signed else text


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def _change(a: int, b: int, size: bool = False) -> str:
    """``A → B (±Δ)``; sizes as bytes."""
    show = format_bytes if size else (lambda n: f"{n:,}")
    if a == b:
        return f"{show(a)} (same)"
    return f"{show(a)} → {show(b)} ({_bytes(b - a, True) if size else _signed(b - a)})"


def render(diff: dict[str, Any]) -> str:
    from .replay_text import CLASS_LABELS
    out: list[str] = []
    add = out.append
    for side in ("a", "b"):
        t = diff[side]
        kernel = (t["kernel"] or {}).get("version") or "unknown"
        arch = (t["arch"] or "arch unknown") + (" (assumed)" if t["arch_inferred"] else "")
        add(f"{side.upper()}  {printable(t['path'])}  ({t['source'] or 'source unknown'} · "
            f"{arch} · kernel {kernel} · {t['events']:,} events)")
    add("")
    if diff["markers"]:
        add("markers both traces have (numbers in the text left out), A → B")
        for m in diff["markers"]:
            add(f"  {printable(m['key'].replace('#', '…'))[:76]}")
            add(f"      VmPTE {_change(m['vmpte_bytes']['a'], m['vmpte_bytes']['b'], True)}"
                f" · empty attached "
                f"{_change(m['empty_attached_bytes']['a'], m['empty_attached_bytes']['b'], True)}")
    else:
        add("markers: none in common")
    for side in ("a", "b"):
        only = diff[f"markers_only_{side}"]
        if only:
            add(f"  only in {side.upper()}: {len(only)} marker(s), first "
                f"\"{printable(only[0])}\"")
    add("")
    add("PTE tables at the end                         A → B")
    for cls, label in CLASS_LABELS.items():
        row = diff["tables"][cls]
        add(f"  {label:<44}{_change(row['a']['count'], row['b']['count'])}")
    for cls, row in diff["peaks"].items():
        when = " / ".join(format_ts(p["ts"]) + " s" if p["ts"] is not None else "never"
                          for p in (row["a"], row["b"]))
        add(f"  {'peak ' + cls.replace('_', ' '):<44}"
            f"{_change(row['a']['count'], row['b']['count'])}  at {when}")
    add("")
    m = diff["metrics"]
    add("CPUs      TLB flushes A → B          IPIs sent A → B            IPIs received A → B")
    for c in diff["cpus"] + [{"cpu": None, **{f: m[f] for f in ("tlb_flushes", "ipis_sent",
                                                                "ipis_received")}}]:
        add(f"  {'all' if c['cpu'] is None else 'cpu' + str(c['cpu']):<8}" + "".join(
            f"{_change(c[f]['a'], c[f]['b']):<27}" for f in ("tlb_flushes", "ipis_sent",
                                                            "ipis_received")).rstrip())
    add("")
    add(f"RCU       grace periods {_change(m['grace_periods']['a'], m['grace_periods']['b'])}, "
        f"callbacks run {_change(m['rcu_invoked']['a'], m['rcu_invoked']['b'])}")
    add(f"syncs     {_change(m['syncs']['a'], m['syncs']['b'])}, waiting "
        f"{_change(m['sync_wait_ns']['a'], m['sync_wait_ns']['b'])} ns")
    if diff["findings"]:
        add("findings  " + ", ".join(f"{k} {_change(v['a'], v['b'])}"
                                     for k, v in diff["findings"].items()))
        for side in ("a", "b"):
            if diff[f"findings_only_{side}"]:
                add(f"  only in {side.upper()}: {', '.join(diff[f'findings_only_{side}'])}")
    else:
        add("findings  none in either")
    return "\n".join(out) + "\n"
