"""The text form of a replay report (the JSON form is the report dict itself)."""

from __future__ import annotations

from typing import Any

from replayer.vmpte import SLACK_PAGES
from replayer.units import format_bytes, format_duration, format_ts

from .header_text import arch_words, value_words
from .output import printable

CLASS_LABELS = {
    "reclaimed": "reclaimed (freed after PT_RECLAIM detach)",
    "freed_unmap": "freed by munmap/exit",
    "freed_collapse": "freed by collapse",
    "empty_attached": "empty but attached (leaked)",
    "in_flight": "in flight (detached, free pending)",
    "lost": "lost (detached, never freed)",
    "live": "live (attached, in use)",
}


SHORT_CLASS = {"reclaimed": "reclaimed", "freed_unmap": "freed", "freed_collapse": "collapsed",
               "empty_attached": "leaked (empty)", "in_flight": "in flight", "lost": "lost",
               "live": "live"}


def render(report: dict[str, Any], every_mm: bool = False) -> str:
    """The report in words; a recording's other processes folded into one line unless
    ``every_mm``."""
    out: list[str] = []
    add = out.append
    tr = report["trace"]
    arch, kernel = tr.get("arch") or {}, tr.get("kernel") or {}
    # Flags the user overrode with --set are named as such; an empty override list is not news.
    config = ", ".join(f"{k}={value_words(val)}" for k, val in kernel.items()
                       if k != "version" and val != [] and val != ())
    # Unknowns in words: a trace whose header lacks a value says so, never "None".
    arch_name = arch_words(arch) if arch else "arch unknown"
    add(f"trace    {tr['path']}")
    add(f"         {tr.get('source') or 'source unknown'} · {arch_name} · kernel "
        f"{kernel.get('version') or 'unknown'}" + (f" ({config})" if config else "")
        + f" · {tr['cpus']} CPUs")
    if tr["first_ts"] is not None:
        add(f"span     {format_ts(tr['first_ts'])} → {format_ts(tr['last_ts'])} s "
            f"({format_duration(tr['last_ts'] - tr['first_ts'])}), {tr['events']:,} events")
    at = report["at"]
    add(f"state at {'end of trace' if at is None else format_ts(at) + ' s'}"
        f" ({report['events_applied']:,} events applied)")
    add(f"page tables  {format_bytes(report['page_tables']['bytes'])} now, "
        f"{format_bytes(report['page_tables']['peak_bytes'])} peak (all levels, PageTables)")
    add("")
    add("address spaces              VmPTE        peak   pte  pmd  pud  comm (pids)")
    shown, folded = report["mms"], []
    if not every_mm and any(m["command"] is not None for m in shown):
        shown = [m for m in report["mms"] if m["command"]]
        folded = [m for m in report["mms"] if not m["command"]]
    for m in shown:
        t = m["tables"]
        pids = f" ({','.join(map(str, m['pids']))})" if m["pids"] else ""
        exited = " exited" if m["exited_ts"] is not None else ""
        add(f"  {m['mm']:<22}{format_bytes(m['vmpte_bytes']):>9} "
            f"{format_bytes(m['peak_vmpte_bytes']):>11} {t['pte']:>5}{t['pmd']:>5}{t['pud']:>5}"
            f"  {printable(m['comm'] or '?')}{pids}{exited}")
        classes = [f"{SHORT_CLASS[c]} {row['count']}" for c, row in m["pte_tables"].items()
                   if row["count"]]
        if classes:
            add(f"  {'':<22}PTE tables: {', '.join(classes)}")
    if folded:
        add(f"  and {len(folded)} other address "
            f"{'space' if len(folded) == 1 else 'spaces'} "
            f"({format_bytes(sum(m['vmpte_bytes'] for m in folded))} VmPTE): processes the "
            f"command did not start, traced system-wide; --all lists them")
    if not report["mms"]:
        add("  none")
    add("")
    add(f"PTE tables ({format_bytes(report['pte_table_bytes'])} of VmPTE each)"
        f"{'count':>17}{'bytes':>12}")
    for cls, label in CLASS_LABELS.items():
        row = report["tables"][cls]
        add(f"  {label:<44}{row['count']:>8}{format_bytes(row['bytes']):>12}")
    peaks = [f"{cls.replace('_', ' ')} {p['count']} ({format_bytes(p['bytes'])}) at "
             f"{format_ts(p['ts'])} s" for cls, p in report["peaks"].items() if p["ts"] is not None]
    if peaks:
        add("  peaks: " + "; ".join(peaks))
    add("")
    add("CPUs    tlb_flushes  ipis_sent  ipis_received  pending  lost")
    for c in report["cpus"]:
        add(f"  cpu{c['cpu']:<5}{c['tlb_flushes']:>10}{c['ipis_sent']:>11}"
            f"{c['ipis_received']:>15}{c['ipis_pending']:>9}{c['lost_events']:>6}")
    rcu = report["rcu"]
    add(f"RCU     {rcu['pending']} callbacks pending, {rcu['invoked']} invoked; "
        + (f"longest grace period {format_duration(rcu['grace_period_tail_ns'])}"
           if rcu["grace_periods_seen"] else "no grace-period events in this trace"))
    for method, s in report["syncs"].items():
        add(f"sync    {method}: {s['count']} syncs, {s['targets']} target CPUs, "
            f"writers waited {format_duration(s['wait_ns'])} "
            f"(max {format_duration(s['max_wait_ns'])})")
    add("")
    findings = report["findings"]
    add(f"findings ({len(findings)})")
    for f in findings:
        cpu = "" if f["cpu"] is None else f" cpu{f['cpu']}"
        add(f"  {format_ts(f['ts'])}{cpu}  {f['kind']}: {printable(f['message'])}  "
            f"[events {', '.join(map(str, f['events']))}]")
    if not findings:
        add("  none")
    suppressed = report["findings_suppressed"]
    if suppressed:
        add(f"  not reported: {', '.join(f'{n} {kind}' for kind, n in suppressed.items())}, "
            f"whose evidence falls where the trace lost events")
    if report["markers"]:
        add("")
        add("markers")
        for m in report["markers"]:
            state = ("" if m["vmpte_bytes"] is None
                     else f"   [{m['mm']}: VmPTE {format_bytes(m['vmpte_bytes'])}]")
            pid = "unknown" if m["pid"] is None else m["pid"]
            if m["kernel_vmpte"] is not None:
                state = _beside_kernel(m["kernel_vmpte"])
                if m["kernel_vmpte"]["pid"] is not None:   # the process sampled, not the writer
                    pid = m["kernel_vmpte"]["pid"]
            add(f"  {format_ts(m['ts'])}  pid {pid}  {printable(m['text'])}{state}")
        out.extend(_samples_summary(report["markers"]))
    prov = report["provenance"]
    if any(n["inferred"] for n in prov.values()):
        add("")
        add("seen / inferred  " + ", ".join(
            f"{step.replace('table_', '')} {n['seen']}/{n['inferred']}"
            for step, n in prov.items()))
        for note in report["inference_notes"]:
            add(f"  inferred: {note}")
    if report["orphan_events"]:
        add("")
        add(f"note: {report['orphan_events']} events named tables this trace never saw "
            f"allocated (it started late, or events were lost)")
    if report["trace"]["truncated_at_byte"] is not None:
        add(f"note: the trace is cut short at byte {report['trace']['truncated_at_byte']:,}: "
            f"events after {format_ts(tr['last_ts'])} s are missing")
    if not report["counts_trusted"]:
        add("note: events were lost: counts may be wrong")
    return "\n".join(out) + "\n"



def _beside_kernel(k: dict) -> str:
    """A kernel VmPTE sample beside ptviz's count: the levels, and the changes since
    the process's previous sample, flagged where they differ."""
    mine = "unknown (its mm was not seen)" if k["ptviz_bytes"] is None \
        else format_bytes(k["ptviz_bytes"])
    text = f"   kernel {format_bytes(k['kernel_bytes'])}, ptviz {mine}"
    if k["agrees"] is None:
        return text + (" (first sample of this process)" if k["kernel_change"] is None
                       and k["ptviz_bytes"] is not None else "")
    change = (f"; change {_signed(k['kernel_change'])} / {_signed(k['ptviz_change'])}")
    return text + change + ("" if k["agrees"] else "   <- DIFFERS")


def _signed(n: int) -> str:
    return ("+" if n >= 0 else "-") + format_bytes(abs(n))


def _samples_summary(markers: list[dict]) -> list[str]:
    """What the kernel's VmPTE samples say of ptviz's count, in words."""
    samples = [m["kernel_vmpte"] for m in markers if m["kernel_vmpte"] is not None]
    if not samples:
        return []
    compared = [k for k in samples if k["agrees"] is not None]
    differ = [k for k in compared if not k["agrees"]]
    pids = len({k["pid"] for k in samples})
    later = "the later sample" if len(compared) == 1 else f"all {len(compared)} later samples"
    verdict = (f"ptviz's changes agree at {later}" if compared and not differ
               else "no process was sampled twice: nothing to compare" if not compared
               else f"ptviz's changes differ at {len(differ)} of {len(compared)} later "
                    f"samples (marked DIFFERS)")
    return [f"  VmPTE as the trace's markers report it: {len(samples)} "
            f"{'sample' if len(samples) == 1 else 'samples'} of {pids} "
            f"{'process' if pids == 1 else 'processes'}; {verdict} (to within {SLACK_PAGES} "
            f"PTE tables)",
            "  ptviz counts only the tables it saw allocated, so tables that existed "
            "before tracing",
            "  began are outside its count: levels may differ by a constant; the changes "
            "must agree"]
