"""The table in a few sentences, for stdout: what a sweep found per corner of its grid
("x86_64 7.0 table_free=semi_rcu: use_after_free in 37 of 100 seeds"), what a batch
found per trace. The table holds the numbers; this says where to look."""

from __future__ import annotations

import statistics
from typing import Any

from replayer.state import FINDING_KINDS
from replayer.units import format_bytes

#: Point columns a sweep's groups are told apart by (and ``set_*``, ``param_*``).
_DIMS = ("arch", "kernel", "workload", "cpus")
#: Names listed in one sentence before "and N more".
_NAMES = 5


def _dims(rows: list[dict]) -> list[str]:
    cols = dict.fromkeys(c for row in rows for c in row)
    return [c for c in _DIMS if c in cols] + [c for c in cols
                                              if c.startswith(("set_", "param_"))]


def _shown(dim: str, value: Any) -> str:
    if value is None:
        return f"no {dim.partition('_')[2] or dim}"
    if dim == "kernel":
        return f"kernel {value}"
    if dim == "cpus":
        return f"{value} CPU{'s' if value != 1 else ''}"
    if dim.startswith(("set_", "param_")):
        return f"{dim.partition('_')[2]}={value}"
    return str(value)


def _seeds(rows: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in rows if isinstance(r.get("seed"), int)})
    if not seeds:
        return "no seeds"
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}..{seeds[-1]}"
    return f"{len(seeds)} seeds"


def _median_bytes(rows: list[dict], column: str) -> str:
    values = [r[column] for r in rows if isinstance(r.get(column), (int, float))]
    return format_bytes(int(statistics.median(values))) if values else "?"


def _findings(ok: list[dict], unit: str) -> str:
    """``use_after_free in 37 of 100 seeds``, per kind found; of one row, only the kinds."""
    kinds = [k for k in FINDING_KINDS if any((r.get(k) or 0) > 0 for r in ok)]
    if len(ok) == 1:
        return ", ".join(f"{k} ({ok[0][k]})" for k in kinds) or "no findings"
    parts = [f"{k} in {sum(1 for r in ok if (r.get(k) or 0) > 0)} of {len(ok)} {unit}"
             for k in kinds]
    return "; ".join(parts) or f"no findings in {len(ok)} {unit}"


def sweep_summary(rows: list[dict]) -> str:
    """One line for the whole grid, then one per group of points that differ only in
    their seed: findings by kind (in how many seeds), and the medians of peak page-table
    bytes and of peak empty-attached PTE-table bytes. O(rows log rows)."""
    if not rows:
        return "sweep: no points\n"
    dims = _dims(rows)
    varying = [d for d in dims if len({r.get(d) for r in rows}) > 1]
    fixed = [_shown(d, rows[0].get(d)) for d in dims if d not in varying]
    failed = [r for r in rows if r.get("error")]
    head = f"{len(rows)} points" + (f" ({len(failed)} failed)" if failed else "")
    lines = [f"{head}: {', '.join(fixed + [_seeds(rows)])}"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(d) for d in varying), []).append(row)
    for values, group in groups.items():
        label = " ".join(_shown(d, v) for d, v in zip(varying, values)) or "all"
        ok = [r for r in group if not r.get("error")]
        text = f"{label}: "
        if ok:
            text += (f"{_findings(ok, 'seeds')}; page tables peak "
                     f"{_median_bytes(ok, 'page_table_bytes_peak')}, empty attached peak "
                     f"{_median_bytes(ok, 'peak_empty_attached_bytes')}"
                     + (" (medians)" if len(ok) > 1 else ""))
        bad = [r for r in group if r.get("error")]
        if bad:
            text += (f"{'; ' if ok else ''}{len(bad)} of {len(group)} failed, e.g. "
                     f"{bad[0]['error']}")
        lines.append(text)
    return "\n".join(lines) + "\n"


def _names(rows: list[dict]) -> str:
    names = [str(r["trace"]) for r in rows[:_NAMES]]
    more = len(rows) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def batch_summary(rows: list[dict]) -> str:
    """Which traces have findings (by kind), could not be read, or failed --fail-on."""
    if not rows:
        return "batch: no traces\n"
    ok = [r for r in rows if not r.get("error")]
    bad = [r for r in rows if r.get("error")]
    lines = [f"{len(rows)} traces: {_findings(ok, 'traces') if ok else 'none read'}"
             + (f"; {len(bad)} could not be read" if bad else "")]
    for kind in FINDING_KINDS:
        having = [r for r in ok if (r.get(kind) or 0) > 0]
        if having:
            lines.append(f"  {kind}: {_names(having)}")
    if bad:
        lines.append(f"  not read: {_names(bad)}")
    held = [r for r in ok if r.get("fail_on")]
    if held:
        lines.append(f"  --fail-on held for {len(held)}: {_names(held)}")
    return "\n".join(lines) + "\n"
