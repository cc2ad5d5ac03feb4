"""What surrounds the tables, from stock tracepoints: TLB flushes, IPIs (with the
function each one runs, from ``csd:*``) and RCU (``rcu:*``, only on kernels with
CONFIG_RCU_TRACE, KF §5.2). A mixin of :class:`.infer.Inference`."""

from __future__ import annotations

import re

from replayer import vocab as v

from .probes import RCU_CALLBACKS
from .textparse import Record, fields
from .textparse import number as _num

_RCU = re.compile(r"^(?P<flavour>\S+) rhp=(?P<rhp>[0-9a-fA-Fx]+) func=(?P<func>\S+)")
_GP = re.compile(r"^(?P<flavour>\S+) (?P<seq>-?\d+) (?P<event>\w+)")


class ContextSteps:
    def _init_context(self) -> None:
        self.csd_func: dict[int, tuple] = {}       # cpu → (pid, func) last csd_queue_cpu
        self.rcu_cbs: set[int] = set()             # table callbacks queued, not yet run
        self.last_invoked: int | None = None       # by rcu_invoke_callback, for the probe

    def _on_csd_queue_cpu(self, rec: Record) -> None:
        self.csd_func[rec.cpu] = (rec.pid, fields(rec.payload).get("func", ""))
        self._raw(rec)

    # -- rcu:* (CONFIG_RCU_TRACE) ----------------------------------------------
    def _on_rcu_callback(self, rec: Record) -> None:
        """``rcu_preempt rhp=… func=tlb_remove_table_rcu 12``: a table batch (or one
        table) waits for a grace period; other callbacks stay raw."""
        m = _RCU.match(rec.payload)
        func = m.group("func").split(".", 1)[0].split("+", 1)[0] if m else ""
        if func not in RCU_CALLBACKS:
            self._raw(rec)
            return
        cb = int(m.group("rhp"), 16)
        if cb in self.rcu_cbs:              # a call_rcu probe saw it first
            return
        self.rcu_cbs.add(cb)
        self.out(rec.ts, v.RCU_QUEUE, rec.cpu, rec.pid, (cb, func, ()), rec.comm)

    def _on_rcu_invoke_callback(self, rec: Record) -> None:
        m = _RCU.match(rec.payload)
        cb = int(m.group("rhp"), 16) if m else None
        if cb is None or cb not in self.rcu_cbs:
            self._raw(rec)
            return
        self.rcu_cbs.discard(cb)
        self.last_invoked = cb
        self.out(rec.ts, v.RCU_INVOKE, rec.cpu, rec.pid, (cb,), rec.comm)

    def _on_rcu_grace_period(self, rec: Record) -> None:
        """``rcu_preempt 1234 start`` / ``… end``: start and end carry the same number
        (KF §5.2); the other gp events stay raw."""
        m = _GP.match(rec.payload)
        event = m.group("event") if m else ""
        if event not in ("start", "end"):
            self._raw(rec)
            return
        kind = v.RCU_GP_START if event == "start" else v.RCU_GP_END
        self.out(rec.ts, kind, rec.cpu, rec.pid, (int(m.group("seq")),), rec.comm)

    # -- TLB flushes and IPIs ------------------------------------------------
    def _on_tlb_flush(self, rec: Record) -> None:
        m = re.match(r"pages:(-?\d+) reason:(.*?) \(\d+\)$", rec.payload)
        if m is None:
            self._raw(rec)
            return
        self.out(rec.ts, v.TLB_FLUSH, rec.cpu, rec.pid,
                 (*self._flush_range_for(rec), int(m.group(1)), m.group(2)), rec.comm)

    def _on_ipi_send_cpu(self, rec: Record) -> None:
        f = fields(rec.payload)
        cpu = _num(f.get("cpu"))
        self._ipi(rec, (cpu,) if cpu is not None else (), f)

    def _on_ipi_send_cpumask(self, rec: Record) -> None:
        f = fields(rec.payload)
        mask = int(f.get("cpumask", "0").replace(",", ""), 16) if f.get("cpumask") else 0
        self._ipi(rec, tuple(c for c in range(mask.bit_length()) if mask >> c & 1), f)

    def _ipi(self, rec: Record, targets: tuple, f: dict[str, str]) -> None:
        site = f.get("callsite", "") + " " + f.get("callback", "")
        if "generic_smp_call_function" not in site:
            # A reschedule IPI (callback NULL): its handler is not a call-function vector,
            # so it cannot be matched to an entry; kept as a raw event.
            self._raw(rec)
            return
        # The traced callback is always the generic handler; the function the IPI runs
        # is in the csd_queue_cpu events just before it on this CPU (KF §2.5).
        queued = self.csd_func.pop(rec.cpu, None)
        func = queued[1] if queued and queued[0] == rec.pid else ""
        what = func or site
        reason = ("tlb_shootdown" if "flush_tlb" in what else
                  "table_sync" if "tlb_remove_table" in what else "call_function")
        self.out(rec.ts, v.IPI_SEND, rec.cpu, rec.pid,
                 (targets, reason, func or f.get("callsite")), rec.comm)

    def _on_call_function_entry(self, rec: Record) -> None:
        self.out(rec.ts, v.IPI_ENTER, rec.cpu, rec.pid, ("call_function",), rec.comm)

    def _on_call_function_exit(self, rec: Record) -> None:
        self.out(rec.ts, v.IPI_EXIT, rec.cpu, rec.pid, ("call_function",), rec.comm)

    _on_call_function_single_entry = _on_call_function_entry
    _on_call_function_single_exit = _on_call_function_exit
