"""Findings only the end of a trace can prove, once a replay has folded it all; then
those a hole in the trace may have caused are set aside (:mod:`.losses`)."""

from __future__ import annotations

from .losses import LostWindows
from .state import Finding

#: An IPI not answered this long before the end of the trace was never answered.
IPI_ANSWER_NS = 10_000_000


def end_checks(replay) -> None:
    """Early RCU callbacks (when grace periods were traced), IPIs never handled,
    then the loss windows and the findings they hide (counted in ``suppressed``)."""
    findings = replay.folder.findings
    if replay.has_gp_events:
        for finding in replay.folder.early_callbacks:
            findings.add(finding)
    if replay.has_ipi_events and replay.last_ts is not None:
        for target, pending in sorted(replay.final.ipi_inflight.items()):
            for send_ts, reason, sender, index in pending:
                if replay.last_ts - send_ts >= replay.IPI_ANSWER_NS:
                    findings.add(Finding(
                        "ipi_unanswered", send_ts, target, None, None,
                        f"{reason or 'an'} IPI from CPU {sender} to CPU {target} was never "
                        f"handled", (index,), since=send_ts, on_cpu=True))
    replay.lost_windows = LostWindows.from_losses(
        replay.folder.losses, replay.timeline,
        replay.last_ts if replay.reader.truncated_at is not None else None)
    hidden = [f for f in findings if replay.lost_windows.suppresses(f)]
    for finding in hidden:
        findings.remove(finding)
        replay.suppressed[finding.kind] = replay.suppressed.get(finding.kind, 0) + 1
