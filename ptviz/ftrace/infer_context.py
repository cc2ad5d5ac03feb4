"""What surrounds the tables, from stock tracepoints: TLB flushes, IPIs (with the
function each one runs, from ``csd:*``) and RCU (``rcu:*``, only on kernels with
CONFIG_RCU_TRACE, docs/kernel-facts.md §5.2). A mixin of :class:`.infer.Inference`."""

from __future__ import annotations

import re

from replayer import vocab as v

from .probes import RCU_CALLBACKS
from .textparse import CPU_END, I64_END, U64_END, Record, checked, field, fields
from .textparse import number as _num

_RCU = re.compile(r"(?P<flavour>\S++) rhp=(?P<rhp>[0-9a-fA-Fx]++) func=(?P<func>\S++)")
_GP = re.compile(r"(?P<flavour>\S++) (?P<seq>-?\d++) (?P<event>\w++)")
_FLUSH = re.compile(r"pages:(-?\d++) reason:(.*?) \(\d++\)$")
_HEX_MASK = re.compile(r"[0-9a-fA-F,]++")


def cpumask(text: str | None) -> tuple[int, ...] | None:
    """The CPUs of a ``%*pb`` mask (``00000000,00000006`` → (1, 2)), or None if it is
    not one or names a CPU ≥ CPU_END. O(digits)."""
    if text is None or _HEX_MASK.fullmatch(text) is None:
        return None
    digits = text.replace(",", "").lstrip("0")
    if len(digits) > CPU_END // 4:
        return None
    bits = bin(int(digits or "0", 16))[:1:-1]          # bit 0 first
    return tuple(c for c, bit in enumerate(bits) if bit == "1")


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
        cb = checked(m.group("rhp"), 16)
        if cb is None:
            self._raw(rec)
            return
        if cb in self.rcu_cbs:              # a call_rcu probe saw it first
            return
        self.rcu_cbs.add(cb)
        self.out(rec.ts, v.RCU_QUEUE, rec.cpu, rec.pid, (cb, func, ()), rec.comm)

    def _on_rcu_invoke_callback(self, rec: Record) -> None:
        m = _RCU.match(rec.payload)
        cb = checked(m.group("rhp"), 16) if m else None
        if cb is None or cb not in self.rcu_cbs:
            self._raw(rec)
            return
        self.rcu_cbs.discard(cb)
        self.last_invoked = cb
        self.out(rec.ts, v.RCU_INVOKE, rec.cpu, rec.pid, (cb,), rec.comm)

    def _on_rcu_grace_period(self, rec: Record) -> None:
        """``rcu_preempt 1234 start`` / ``… end``: start and end carry the same number
        (docs/kernel-facts.md §5.2); the other gp events stay raw."""
        m = _GP.match(rec.payload)
        event = m.group("event") if m else ""
        # gp_seq is an unsigned long printed with %ld, negative for a while after boot
        # (it starts 300 short of wrapping): back to the u64 the field holds.
        seq = checked(m.group("seq"), 10, -I64_END, I64_END) if m else None
        if event not in ("start", "end") or seq is None:
            self._raw(rec)
            return
        kind = v.RCU_GP_START if event == "start" else v.RCU_GP_END
        self.out(rec.ts, kind, rec.cpu, rec.pid, (seq & (U64_END - 1),), rec.comm)

    # -- TLB flushes and IPIs ------------------------------------------------
    def _on_tlb_flush(self, rec: Record) -> None:
        m = _FLUSH.match(rec.payload)
        # Signed: a full flush prints pages:-1 (TLB_FLUSH_ALL).
        pages = checked(m.group(1), 10, -I64_END, I64_END) if m else None
        if pages is None:
            self._raw(rec)
            return
        self.out(rec.ts, v.TLB_FLUSH, rec.cpu, rec.pid,
                 (*self._flush_range_for(rec), pages, m.group(2)), rec.comm)

    def _on_ipi_send_cpu(self, rec: Record) -> None:
        f = fields(rec.payload)
        cpu = _num(f.get("cpu"), hi=CPU_END)
        self._ipi(rec, (cpu,) if cpu is not None else (), f)

    def _on_ipi_send_cpumask(self, rec: Record) -> None:
        f = fields(rec.payload)
        # The mask from the payload, commas and all (%*pb groups 8 digits: >32 CPUs).
        self._ipi(rec, cpumask(field(rec.payload, "cpumask=")) or (), f)

    def _ipi(self, rec: Record, targets: tuple, f: dict[str, str]) -> None:
        site = f.get("callsite", "") + " " + f.get("callback", "")
        if "generic_smp_call_function" not in site:
            # A reschedule IPI (callback NULL): its handler is not a call-function vector,
            # so it cannot be matched to an entry; kept as a raw event.
            self._raw(rec)
            return
        # The traced callback is always the generic handler; the function the IPI runs
        # is in the csd_queue_cpu events just before it on this CPU (docs/kernel-facts.md §2.5).
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
