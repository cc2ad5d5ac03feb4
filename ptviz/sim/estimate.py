"""How big a simulation will be, told before it is written: a pilot run.

Events per step of a workload depend on the arch's page and table sizes, the batch,
the walkers' timing and the kernel config; rather than a formula per workload that
drifts from the simulator, the same run is started with its output kept in memory,
for at most :data:`PILOT_S` seconds. A run that finishes in that time is the result
(its bytes are written as they are); a longer one is extrapolated from the share of
its workload's steps done (:meth:`.run.Sim.step`) and run again for real, with the
same seed, so the same events.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Callable

from replayer.traceio import TraceWriter

from .run import simulate

#: Wall time the pilot may take before it extrapolates.
PILOT_S = 0.5
#: The share of the workload's steps the pilot extrapolates from, at least, unless it
#: has run for MAX_PILOT_S.
MIN_SHARE, MAX_PILOT_S = 0.01, 5.0
#: Bytes the pilot keeps in memory, at most.
MAX_PILOT_BYTES = 16 << 20
#: Bytes per event when the pilot wrote no chunk yet (simulated traces: 13–22).
_BYTES_PER_EVENT = 20


class _Enough(Exception):
    """The pilot has seen enough of the run."""


@dataclass
class Estimate:
    """``events`` and ``bytes`` of the whole run; ``exact`` when the pilot finished it
    (then ``data`` is the whole trace and ``result`` what :func:`simulate` returned)."""

    events: int
    bytes: int
    exact: bool
    data: bytes | None = None
    result: dict[str, Any] | None = None


class _Sink(io.BytesIO):
    """The pilot's output, in memory: given up at :data:`MAX_PILOT_BYTES` or
    :data:`MAX_PILOT_S` even when the workload reports no step meanwhile (a
    coverletter whose one step is the whole run)."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self._started = started

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > MAX_PILOT_BYTES or \
                time.perf_counter() - self._started > MAX_PILOT_S:
            raise _Enough
        return super().write(data)


def estimate(run: Callable[..., dict[str, Any]] = simulate, seconds: float = PILOT_S,
             **kwargs: Any) -> Estimate | None:
    """The size of ``simulate(out, **kwargs)``, from a pilot of at most ``seconds`` (or
    :data:`MAX_PILOT_S`, :data:`MAX_PILOT_BYTES` when the workload's steps are long);
    None when the pilot ended before the workload's first step (nothing to go by)."""
    started = time.perf_counter()
    sink = _Sink(started)
    seen = [0, 1, 0, 0.0]          # steps done, steps in all, events, bytes per event

    def on_step(done: int, total: int, events: int, writer: TraceWriter) -> None:
        written = writer.events_written - writer.events_buffered
        seen[:] = done, total, events, (writer.bytes_written / written if written
                                        else _BYTES_PER_EVENT)
        took = time.perf_counter() - started
        # A share too small to extrapolate from waits, unless the run is that slow.
        if 0 < done < total and took > seconds and (done >= MIN_SHARE * total
                                                     or took > MAX_PILOT_S):
            raise _Enough
    try:
        result = run(sink, on_step=on_step, **kwargs)
    except _Enough:
        done, total, events, per_event = seen
        if not done:
            return None
        total_events = round(events * total / done)
        return Estimate(total_events, round(total_events * per_event), exact=False)
    data = sink.getvalue()
    return Estimate(result["events"], len(data), exact=True, data=data, result=result)
