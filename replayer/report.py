"""Reports of a replay: classification of PTE tables, the JSON schema, ``--fail-on``.

The JSON schema (stable; see REPORT.md beside this file) is built by
:func:`build_report`; ``ptviz replay`` renders it as text.
"""

from __future__ import annotations

import json
import operator
from bisect import bisect_right
import re
from dataclasses import dataclass
from typing import Any


from . import vmpte, vocab as v
from .errors import UsageError
from .replay import Replay
from .peaks import class_peaks
from .state import CLASSES, FINDING_KINDS, ReplayState
from .tables import table_arrays
from .units import parse_size

#: 2: ``table_bytes`` (of an mm, of a marker) became ``vmpte_bytes``, ``workload`` and
#: ``arch`` took one shape each (REPORT.md).
SCHEMA_VERSION = 2
#: The report lists every CPU of a machine up to this size, idle ones included.
MAX_LISTED_CPUS = 4096


def hexa(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def classify(replay: Replay, state: ReplayState, at: int) -> tuple[dict, dict, dict]:
    """PTE tables by class at ``state``: ``(overall, per_mm, peaks)``, each class →
    count (:func:`replayer.tables.table_arrays` says how each is decided), and the
    peaks of the classes that go up and down up to ``at``. O(tables log tables)."""
    tables = table_arrays(replay, state, replay.last_ts if replay.last_ts is not None else at)
    return tables.counts(), tables.counts_by_mm(), class_peaks(replay, at)


def build_report(replay: Replay, at: int | None = None) -> dict[str, Any]:
    """The report at ``at`` (ns) or at the end of the trace."""
    end = at is None or (replay.last_ts is not None and at >= replay.last_ts)
    state = replay.final if end else replay.state_at(at)
    when = (replay.last_ts if replay.last_ts is not None else 0) if at is None else at
    overall, per_mm, peaks = classify(replay, state, when)
    pte = replay.sizes.pte_bytes
    header = replay.header
    mms = []
    # A recording knows the command's processes; other tasks were traced system-wide
    # (an IPI is received in whatever task runs there).
    record = header.get("record")
    command = record.get("command_pids") if isinstance(record, dict) else None
    command = ({p for p in command if type(p) is int}
               if isinstance(command, (list, tuple)) else None)
    for mm in sorted(set(state.mm_bytes) | set(state.mm_pids) | set(per_mm)):
        classes = per_mm.get(mm, dict.fromkeys(CLASSES, 0))
        pids = list(state.mm_pids.get(mm, ()))
        mms.append({
            "mm": hexa(mm), "pids": pids,
            "command": None if command is None else not command.isdisjoint(pids),
            "comm": state.mm_comm.get(mm),
            "vmpte_bytes": state.mm_bytes.get(mm, 0),
            "peak_vmpte_bytes": state.mm_peak.get(mm, 0),
            "tables": {name: state.mm_tables.get((mm, level), 0)
                       for level, name in v.LEVEL_NAMES.items()},
            "pte_tables": {c: {"count": n, "bytes": n * pte} for c, n in classes.items()},
            "exited_ts": state.mm_exit.get(mm),
        })
    # Idle CPUs are listed too (a CPU that never ran the workload is news), up to a
    # machine size that still reads as a table; beyond it, the CPUs that appear.
    n_cpus = header.get("cpus") or 0
    cpus = sorted(set(range(n_cpus if n_cpus <= MAX_LISTED_CPUS else 0)) | set(replay.cpus)
                  | set(state.ipi_inflight))
    findings = replay.findings if end else replay.findings_between(-(1 << 63), when)
    markers = [m for m in replay.markers if end or m["ts"] <= when]
    return {
        "schema": SCHEMA_VERSION,
        "trace": {
            "path": replay.path, "source": header.get("source"),
            "arch": trace_arch(header), "kernel": trace_kernel(header),
            "workload": trace_workload(header),
            "cpus": header["cpus"] if type(header.get("cpus")) is int else len(replay.cpus),
            "events": replay.event_count, "first_ts": replay.first_ts,
            "last_ts": replay.last_ts, "warnings": list(replay.warnings),
            "truncated_at_byte": replay.reader.truncated_at,
        },
        "at": when if not end else None,
        "events_applied": state.index,
        "page_tables": {"bytes": state.pt_bytes, "peak_bytes": state.pt_peak},
        "pte_table_bytes": pte,
        "mms": mms,
        "tables": {c: {"count": n, "bytes": n * pte} for c, n in overall.items()},
        "peaks": peaks,
        "cpus": [{"cpu": c, "tlb_flushes": state.tlb_flushes.get(c, 0),
                  "ipis_sent": state.ipis_sent.get(c, 0),
                  "ipis_received": state.ipis_received.get(c, 0),
                  "ipis_pending": len(state.ipi_inflight.get(c, ())),
                  "lost_events": state.lost.get(c, 0),
                  "walker": _walker(state, c)} for c in cpus],
        "rcu": {"pending": len(state.rcu_pending), "invoked": state.rcu_invoked,
                "grace_periods": bisect_right(replay.folder.gp_end_times, when),
                "grace_period_tail_ns": replay.gp_tail_ns,
                "grace_periods_seen": replay.has_gp_events},
        "syncs": _syncs(replay, when if not end else None),
        "findings": [_finding(f) for f in findings],
        "findings_suppressed": dict(sorted(replay.suppressed.items())),
        "markers": [{"ts": m["ts"], "pid": m["pid"], "text": m["text"], "mm": hexa(m["mm"]),
                     "vmpte_bytes": m["vmpte_bytes"],
                     "empty_attached": {"count": m["empty_attached"],
                                        "bytes": m["empty_attached"] * pte},
                     "kernel_vmpte": sample}
                    for m, sample in zip(markers,
                                         vmpte.compare(markers, replay.sizes.pte_bytes))],
        "orphan_events": state.orphans,
        "counts_trusted": not state.lost and (replay.reader.truncated_at is None or not end),
        "provenance": {step: {"seen": state.provenance.get((step, False), 0),
                              "inferred": state.provenance.get((step, True), 0)}
                       for step in STEPS},
        "inference_notes": inference_notes(header, state) + list(replay.reader.notes),
    }


STEPS = ("table_alloc", "table_detach", "table_queue", "table_free")


def trace_arch(header: dict[str, Any]) -> dict[str, Any] | None:
    """The header's architecture, with ``inferred`` (true: the ftrace importer assumed
    it, the trace does not say); None when the trace names none."""
    arch = header.get("arch")
    if not isinstance(arch, dict):
        return None
    name = arch.get("name")
    return {**arch, "name": None if name is None else str(name),
            "inferred": arch.get("inferred") is True}


def trace_kernel(header: dict[str, Any]) -> dict[str, Any] | None:
    """The header's kernel: its version (a string) and resolved config, as written."""
    kernel = header.get("kernel")
    if not isinstance(kernel, dict):
        return None
    version = kernel.get("version")
    return {**kernel, "version": None if version is None else str(version)}


def trace_workload(header: dict[str, Any]) -> dict[str, Any] | None:
    """What ran, in one shape: ``{name, params, command}``. A simulated or hand-written
    trace names a workload (its parameters as given, the simulator's model ones among
    them; no command); a recorded one, the command it traced (named after its
    program, no parameters). None when the trace says neither (an import)."""
    work = header.get("workload")
    if isinstance(work, dict):
        params = {**_mapping(work.get("params")), **_mapping(work.get("model"))}
        name = work.get("name")
        return {"name": None if name is None else str(name),
                "params": {str(k): _scalar(x) for k, x in params.items()},
                "command": _command(work.get("command"))}
    if isinstance(work, str):
        return {"name": work, "params": {}, "command": None}
    command = _command(work if isinstance(work, (list, tuple)) else header.get("command"))
    if command:
        return {"name": command[0].rsplit("/", 1)[-1], "params": {}, "command": command}
    return None


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _scalar(value: Any) -> Any:
    """A parameter's value as JSON names it: strings and numbers as they are, anything
    else (a list a foreign header gave) as its JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _command(value: Any) -> list[str] | None:
    if isinstance(value, (list, tuple)) and value:
        return [str(x) for x in value]
    return None


def inference_notes(header: dict[str, Any], state: ReplayState) -> list[str]:
    """What the importer could not know, in words, from the steps it had to infer."""
    p = state.provenance
    inferred = {step: p.get((step, True), 0) for step in STEPS}
    notes = []
    if inferred["table_alloc"]:
        notes.append(f"{inferred['table_alloc']} table allocations were inferred from "
                     "mm_page_alloc of page-table pages (GFP_PGTABLE_USER): after a fault "
                     "the level comes from the order of the fault's allocations; outside one "
                     "(fork, exec, mremap, GUP) from the call they happen in")
    if inferred["table_detach"]:
        notes.append(f"{inferred['table_detach']} detaches were inferred (no ___pte_free_tlb "
                     "probe) and placed at the covering MADV_DONTNEED, munmap or exit: VmPTE "
                     "drops there, to within that zap")
    guessed = p.get(("table_detach_guessed", True), 0)
    if guessed:
        notes.append(f"{guessed} of them had no covering zap in the trace: their cause is "
                     "unknown and their time a guess (just before the free, or at a zap of "
                     "their mm shortly before it)")
    kernel = header.get("kernel") if isinstance(header.get("kernel"), dict) else {}
    if inferred["table_detach"] and kernel.get("pt_reclaim") is None:
        notes.append("whether the traced kernel has CONFIG_PT_RECLAIM is unknown; MADV_DONTNEED "
                     "was assumed able to reclaim (convert --pt-reclaim y|n to say)")
    frees = inferred["table_free"] + p.get(("table_free", False), 0)
    if frees and not (inferred["table_queue"] + p.get(("table_queue", False), 0)):
        notes.append("how tables reached their free (mmu_gather batch or single path) was not "
                     "seen; the RCU path is told from softirq context only")
    return notes


def _walker(state: ReplayState, cpu: int) -> dict[str, Any] | None:
    walk = state.walkers.get(cpu)
    if walk is None:
        return None
    return {"since": walk[0], "walker": walk[1], "protect": walk[2], "mm": hexa(walk[3]),
            "tables": [hexa(p) for p, _, _ in walk[4]]}


def _syncs(replay: Replay, until: int | None) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for cpu, method, t0, t1, targets in replay.syncs:
        if until is not None and t1 > until:
            continue
        # A sync event without its method (a nil a foreign trace may hold) is counted,
        # under a name JSON and the text report can both say.
        key = method if method is not None else "unknown"
        row = out.setdefault(key, {"count": 0, "targets": 0, "wait_ns": 0, "max_wait_ns": 0})
        row["count"] += 1
        row["targets"] += targets
        row["wait_ns"] += t1 - t0
        row["max_wait_ns"] = max(row["max_wait_ns"], t1 - t0)
    return out


def _finding(f) -> dict[str, Any]:
    return {"kind": f.kind, "ts": f.ts, "cpu": f.cpu, "pfn": hexa(f.pfn), "mm": hexa(f.mm),
            "message": f.message, "events": list(f.events)}


# -- --fail-on ----------------------------------------------------------------
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "=": operator.eq, "!=": operator.ne}
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(?:(>=|<=|==|!=|>|<|=)\s*(\S+))?\s*$")


@dataclass(frozen=True)
class Condition:
    """One ``--fail-on`` term: ``name [op value]``; a bare name means ``name>0``."""

    text: str
    name: str
    op: str
    value: int

    def measure(self, report: dict[str, Any]) -> int:
        name = self.name
        if name == "findings":
            return len(report["findings"])
        if name in FINDING_KINDS:
            return sum(1 for f in report["findings"] if f["kind"] == name)
        if name.endswith("_bytes") and name[:-6] in CLASSES:
            return report["tables"][name[:-6]]["bytes"]
        if name in CLASSES:
            return report["tables"][name]["count"]
        if name == "page_table_bytes":
            return report["page_tables"]["bytes"]
        if name == "peak_page_table_bytes":
            return report["page_tables"]["peak_bytes"]
        if name == "lost_events":
            return sum(c["lost_events"] for c in report["cpus"])
        raise AssertionError(name)  # parse_fail_on admits only the names above

    def holds(self, report: dict[str, Any]) -> bool:
        return _OPS[self.op](self.measure(report), self.value)


FAIL_ON_NAMES = (("findings",) + FINDING_KINDS + CLASSES
                 + tuple(f"{c}_bytes" for c in CLASSES)
                 + ("page_table_bytes", "peak_page_table_bytes", "lost_events"))

#: ``--fail-on`` names retired because they read as a process's VmPTE (the report's
#: ``vmpte_bytes``) while measuring every page-table page (PageTables): each is refused
#: with its new name, so a CI script fails loudly rather than gating on another number.
RENAMED_TERMS = {"table_bytes": "page_table_bytes",
                 "peak_table_bytes": "peak_page_table_bytes"}


def check_not_renamed(name: str, term: str) -> None:
    """Raise :class:`UsageError` naming the new name when ``name`` is a retired one."""
    if name in RENAMED_TERMS:
        raise UsageError(f"--fail-on {term!r}: {name} is now {RENAMED_TERMS[name]} (all "
                         f"page-table pages, the kernel's PageTables; a process's VmPTE "
                         f"is the report's vmpte_bytes)")


def parse_fail_on(specs: list[str]) -> list[Condition]:
    """``["use_after_free", "lost>0,empty_attached_bytes>1M"]`` → conditions.

    Raises :class:`UsageError` for an unknown name or a bad value.
    """
    out = []
    for spec in specs:
        for term in filter(None, (t.strip() for t in spec.split(","))):
            m = _CONDITION.match(term)
            if m is not None:
                check_not_renamed(m.group(1), term)
            if m is None or m.group(1) not in FAIL_ON_NAMES:
                raise UsageError(f"--fail-on {term!r}: expected NAME or NAME>VALUE with NAME "
                                 f"one of {', '.join(FAIL_ON_NAMES)}")
            name, op, value = m.group(1), m.group(2) or ">", m.group(3) or "0"
            out.append(Condition(term, name, op, parse_size(value, f"--fail-on {term!r} value")))
    return out


def failed_conditions(report: dict[str, Any], conditions: list[Condition]) -> list[str]:
    """The text of each condition that holds, with the measured value."""
    return [f"{c.text} (is {c.measure(report)})" for c in conditions if c.holds(report)]


def undecided_conditions(report: dict[str, Any], conditions: list[Condition]) -> list[str]:
    """Conditions that do not hold on what the trace holds, but might on what it lost:
    a CI gate must not pass on a trace with holes, or on one with no events at all.
    Empty when nothing was lost."""
    if report["counts_trusted"] and report["trace"]["events"]:
        return []
    return [f"{c.text} (is {c.measure(report)} in what the trace holds)"
            for c in conditions if c.name != "lost_events" and not c.holds(report)]


def what_was_lost(report: dict[str, Any]) -> str:
    """In words: where the trace has holes."""
    parts = [f"CPU {c['cpu']} dropped {c['lost_events']:,} events"
             for c in report["cpus"] if c["lost_events"]]
    if report["trace"]["truncated_at_byte"] is not None:
        parts.append(f"the file is cut short at byte {report['trace']['truncated_at_byte']:,}")
    if not report["trace"]["events"]:
        parts.append("the trace holds no events")
    return "; ".join(parts) or "nothing"
