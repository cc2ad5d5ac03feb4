"""Two reports side by side: what changes between two kernels or two settings.

:func:`diff_reports` takes two :func:`~replayer.report.build_report` dicts (A, then B)
and returns the comparison ``ptviz diff`` prints and ``--json`` writes (DIFF.md):
every metric as ``{a, b, delta}`` (delta = B − A), VmPTE at each marker both traces
share, tables by class and their peaks, per-CPU TLB flushes and IPIs, findings by kind.
:func:`parse_diff_fail_on` and :func:`diff_failed` make CI gates of the deltas.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import UsageError
from .report import check_not_renamed
from .state import CLASSES, FINDING_KINDS
from .units import parse_size

#: 2: the PageTables metrics are ``page_table_bytes`` and ``peak_page_table_bytes``, a
#: marker's VmPTE pair ``vmpte_bytes`` (DIFF.md).
SCHEMA_VERSION = 2
Report = dict[str, Any]


def _cpu_total(field: str) -> Callable[[Report], int]:
    return lambda r: sum(c[field] for c in r["cpus"])


def _findings(kind: str) -> Callable[[Report], int]:
    return lambda r: sum(1 for f in r["findings"] if f["kind"] == kind)


#: Every number a diff compares, by the name ``--fail-on`` uses. Built once.
METRICS: dict[str, Callable[[Report], int]] = {
    "page_table_bytes": lambda r: r["page_tables"]["bytes"],
    "peak_page_table_bytes": lambda r: r["page_tables"]["peak_bytes"],
    **{c: (lambda r, c=c: r["tables"][c]["count"]) for c in CLASSES},
    **{f"{c}_bytes": (lambda r, c=c: r["tables"][c]["bytes"]) for c in CLASSES},
    **{f"peak_{c}": (lambda r, c=c: r["peaks"][c]["count"]) for c in ("empty_attached", "live",
                                                                       "in_flight")},
    **{f"peak_{c}_bytes": (lambda r, c=c: r["peaks"][c]["bytes"])
       for c in ("empty_attached", "live", "in_flight")},
    "tlb_flushes": _cpu_total("tlb_flushes"),
    "ipis_sent": _cpu_total("ipis_sent"),
    "ipis_received": _cpu_total("ipis_received"),
    "lost_events": _cpu_total("lost_events"),
    "rcu_invoked": lambda r: r["rcu"]["invoked"],
    "grace_periods": lambda r: r["rcu"]["grace_periods"],
    "syncs": lambda r: sum(s["count"] for s in r["syncs"].values()),
    "sync_targets": lambda r: sum(s["targets"] for s in r["syncs"].values()),
    "sync_wait_ns": lambda r: sum(s["wait_ns"] for s in r["syncs"].values()),
    "findings": lambda r: len(r["findings"]),
    **{k: _findings(k) for k in FINDING_KINDS},
}

_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")


def marker_key(text: str) -> str:
    """What makes two markers "the same" across traces: their text with the numbers
    taken out (``VmPTE: 64 kB (after mmap)`` and ``VmPTE: 128 kB (after mmap)`` are
    one step, measured twice)."""
    return _NUMBER.sub("#", text)


def _pair(a: int, b: int) -> dict[str, int]:
    return {"a": a, "b": b, "delta": b - a}


def _markers(a: Report, b: Report) -> tuple[list[dict], list[str], list[str]]:
    """Markers matched by key and occurrence (the k-th "after touch" of A with the k-th
    of B); with the ones only one trace has."""
    def keyed(report: Report) -> dict[tuple[str, int], dict]:
        seen: dict[str, int] = {}
        out = {}
        for m in report["markers"]:
            key = marker_key(m["text"])
            k = seen[key] = seen.get(key, -1) + 1
            out[(key, k)] = m
        return out
    ka, kb = keyed(a), keyed(b)
    shared = []
    for key, k in ka:
        if (key, k) not in kb:
            continue
        ma, mb = ka[(key, k)], kb[(key, k)]
        shared.append({"key": key, "text_a": ma["text"], "text_b": mb["text"],
                       "ts_a": ma["ts"], "ts_b": mb["ts"],
                       "vmpte_bytes": _pair(ma["vmpte_bytes"] or 0, mb["vmpte_bytes"] or 0),
                       "empty_attached_bytes": _pair(ma["empty_attached"]["bytes"],
                                                     mb["empty_attached"]["bytes"])})
    return (shared, [m["text"] for km, m in ka.items() if km not in kb],
            [m["text"] for km, m in kb.items() if km not in ka])


def _trace(report: Report) -> dict[str, Any]:
    t = report["trace"]
    arch = t["arch"] or {}
    return {"path": t["path"], "source": t["source"], "arch": arch.get("name"),
            "arch_inferred": bool(arch.get("inferred")), "kernel": t["kernel"],
            "workload": t["workload"], "events": t["events"],
            "counts_trusted": report["counts_trusted"]}


def diff_reports(a: Report, b: Report) -> dict[str, Any]:
    """The comparison of reports ``a`` and ``b`` (see DIFF.md). O(size of the reports)."""
    shared, only_a, only_b = _markers(a, b)
    cpus_a = {c["cpu"]: c for c in a["cpus"]}
    cpus_b = {c["cpu"]: c for c in b["cpus"]}
    zero = {"tlb_flushes": 0, "ipis_sent": 0, "ipis_received": 0}
    kinds_a = {k: METRICS[k](a) for k in FINDING_KINDS}
    kinds_b = {k: METRICS[k](b) for k in FINDING_KINDS}
    return {
        "schema": SCHEMA_VERSION,
        "a": _trace(a), "b": _trace(b),
        "metrics": {name: _pair(f(a), f(b)) for name, f in METRICS.items()},
        "markers": shared, "markers_only_a": only_a, "markers_only_b": only_b,
        "tables": {c: {"a": a["tables"][c], "b": b["tables"][c],
                       "delta_count": b["tables"][c]["count"] - a["tables"][c]["count"],
                       "delta_bytes": b["tables"][c]["bytes"] - a["tables"][c]["bytes"]}
                   for c in CLASSES},
        "peaks": {c: {"a": a["peaks"][c], "b": b["peaks"][c],
                      "delta_count": b["peaks"][c]["count"] - a["peaks"][c]["count"],
                      "delta_bytes": b["peaks"][c]["bytes"] - a["peaks"][c]["bytes"]}
                  for c in a["peaks"]},
        "cpus": [{"cpu": cpu, **{f: _pair(cpus_a.get(cpu, zero)[f], cpus_b.get(cpu, zero)[f])
                                 for f in zero}}
                 for cpu in sorted(set(cpus_a) | set(cpus_b))],
        "findings": {k: _pair(kinds_a[k], kinds_b[k]) for k in FINDING_KINDS
                     if kinds_a[k] or kinds_b[k]},
        "findings_only_a": [k for k in FINDING_KINDS if kinds_a[k] and not kinds_b[k]],
        "findings_only_b": [k for k in FINDING_KINDS if kinds_b[k] and not kinds_a[k]],
    }


# -- --fail-on on the differences --------------------------------------------------
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "=": operator.eq, "!=": operator.ne}
_TERM = re.compile(r"^\s*([a-z_]+)\s*(?:(>=|<=|==|!=|>|<|=)\s*([+-]?)([^\s%]+)(%?))?\s*$")


@dataclass(frozen=True)
class DiffCondition:
    """``NAME OP [+|-]VALUE[%]`` on B − A: ``empty_attached_bytes>+1M`` (B holds more
    than 1 MiB more than A), ``ipis_sent>+10%`` (B sends more than 10 % more IPIs than
    A). A bare NAME means ``NAME!=0``: any difference."""

    text: str
    name: str
    op: str
    value: float
    percent: bool

    def measure(self, diff: dict[str, Any]) -> float:
        m = diff["metrics"][self.name]
        if not self.percent:
            return m["delta"]
        if m["a"] == 0:
            return 0.0 if m["delta"] == 0 else float("inf") if m["delta"] > 0 else float("-inf")
        return 100.0 * m["delta"] / m["a"]

    def holds(self, diff: dict[str, Any]) -> bool:
        return _OPS[self.op](self.measure(diff), self.value)

    def shown(self, diff: dict[str, Any]) -> str:
        m = diff["metrics"][self.name]
        got = self.measure(diff)
        what = f"{got:+.1f}%" if self.percent else f"{int(got):+d}"
        return f"{self.text} (A {m['a']}, B {m['b']}: {what})"


def parse_diff_fail_on(specs: list[str]) -> list[DiffCondition]:
    """``["empty_attached_bytes>+1M", "ipis_sent>+10%,findings"]`` → conditions.
    Raises :class:`UsageError` for an unknown name or a bad value."""
    out = []
    for spec in specs:
        for term in filter(None, (t.strip() for t in spec.split(","))):
            m = _TERM.match(term)
            if m is not None:
                check_not_renamed(m.group(1), term)
            if m is None or m.group(1) not in METRICS:
                raise UsageError(f"--fail-on {term!r}: expected NAME or NAME OP [+|-]VALUE[%] "
                                 f"with NAME one of {', '.join(METRICS)}")
            name, op, sign, value, percent = m.groups()
            if op is None:
                out.append(DiffCondition(term, name, "!=", 0, False))
                continue
            if percent:
                try:
                    number = float(value)
                except ValueError:
                    number = float("nan")
                if not math.isfinite(number):
                    raise UsageError(f"--fail-on {term!r}: {value!r} is not a percentage")
            else:
                number = parse_size(value, f"--fail-on {term!r} value")
            out.append(DiffCondition(term, name, op, -number if sign == "-" else number,
                                     bool(percent)))
    return out


def diff_failed(diff: dict[str, Any], conditions: list[DiffCondition]) -> list[str]:
    """The text of each condition that holds, with both values and the change."""
    return [c.shown(diff) for c in conditions if c.holds(diff)]
