"""Chrome Trace Event JSON for Perfetto UI, written as a stream.

Laid out as Perfetto's JSON importer reads it (``reference/anchors.md`` §8):

* one process "CPUs" (pid 1) whose threads are the CPUs: tid = cpu + 1 (never 0:
  Perfetto turns tid 0 into the pid), named "CPU n" and sorted by number. Every
  event of the trace is on its CPU's thread, with ``args.event`` = its index:
  TLB flushes, IPIs, RCU callbacks, detaches and frees as ``X`` slices of
  ``dur`` 0 (so flows bind to them), the rest as thread instants;
* flows (v2: ``bind_id`` with ``flow_out``/``flow_in``): an IPI send to each of
  its target CPUs' handler entry (a send to k CPUs is k slices, one an arrow, all
  with the same ``args.event``; a handler entry answering k sends likewise), and a
  table's detach to its free;
* one process per mm (pid 100000 + n, named by its command and tgid): each PTE
  table page's life as an async ``b``/``e`` pair (integer ``id``), from its
  allocation to its free (or the trace's end), with ``n`` steps at its detach
  and queue (same name and id: Perfetto keys an async track by both); counters
  ``VmPTE`` (``bytes``) and ``PTE tables`` (``empty``: attached with no entry),
  which Perfetto shows as tracks "VmPTE bytes" and "PTE tables empty";
* markers and the replay's findings as global instants.

Times: ``ts`` in µs as exact decimals (``ns // 1000`` "." three digits), never a
float; absolute, as the trace and ftrace show them. Only the metadata names
Perfetto honours are used. Memory: the live tables and one batch, plus the
findings (from a replay of the trace, unless ``findings=None``).
"""

from __future__ import annotations

from array import array
from typing import Any, BinaryIO

import numpy as np

from replayer import vocab as v
from replayer.fold import ArchSizes

from .jsonl import to_json

try:
    import orjson
    _Fragment = orjson.Fragment
except (ImportError, AttributeError):    # pragma: no cover - a dependency
    orjson = None

CPUS_PID = 1
MM_PID_BASE = 100_000
_K = {name: v.KIND_BY_NAME[name].id for name in (
    "tlb_flush", "ipi_send", "ipi_enter", "rcu_invoke", "table_detach", "table_free",
    "table_alloc", "table_queue", "pte_set", "pte_clear", "marker", "mm_new")}
_X_KINDS = frozenset(_K[n] for n in ("tlb_flush", "ipi_send", "ipi_enter", "rcu_invoke",
                                      "table_detach", "table_free"))
_HEX = frozenset(("mm", "pfn", "addr", "start", "end", "cb", "pfns"))


def micros(ns: int) -> Any:
    """``ns`` as a JSON number of µs with three exact decimals."""
    sign = "-" if ns < 0 else ""
    q, r = divmod(abs(ns), 1000)
    text = f"{sign}{q}.{r:03d}"
    return _Fragment(text.encode()) if orjson is not None else _Exact(text)


def micros_of(stamps) -> list:
    """:func:`micros` of many times, formatted in C through ``map``."""
    t = np.frombuffer(stamps, np.int64) if isinstance(stamps, array) else \
        np.array(stamps, np.int64)
    if not len(t) or int(t.min()) < 0 or orjson is None:
        return [micros(x) for x in t.tolist()]
    q, r = np.divmod(t, 1000)
    return list(map(_Fragment, map("{}.{:03d}".format, q.tolist(), r.tolist())))


class _Exact(float):                   # pragma: no cover - the json fallback
    def __new__(cls, text: str):
        obj = super().__new__(cls, text)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text


if orjson is not None:
    _dumps = orjson.dumps
else:                                    # pragma: no cover
    def _dumps(obj: Any) -> bytes:
        import json
        return json.dumps(obj, separators=(",", ":")).encode()


def _plan(spec) -> tuple:
    """How a kind's events are written: name, field names, the fields shown in hex,
    whether its values are JSON's own, whether it is a slice."""
    from .jsonl import _PLAIN, _VOCAB
    plain = spec.name in _PLAIN and spec == _VOCAB.get(spec.name)
    return (spec.name, spec.fields, tuple(f for f in spec.fields if f in _HEX), plain,
            spec.id in _X_KINDS)


class ChromeWriter:
    """Turns rows into trace events; ``write`` keeps the JSON array's commas."""

    def __init__(self, stream, out: BinaryIO, findings: list | None) -> None:
        self.out = out
        self.kinds = stream.kinds.by_id
        self.sizes = ArchSizes(stream.header.get("arch"))
        self.findings = sorted(findings or (), key=lambda f: f.ts)
        self.next_finding = 0
        self.next_finding_ts = self.findings[0].ts if self.findings else 1 << 64
        self.plan: dict[int, tuple] = {}
        #: Kinds that do more than show themselves (lives, counters, flows, names).
        self.special = frozenset(_K.values())
        self.first = True
        self.cpus: set[int] = set()
        self.mm_pid: dict[int, int] = {}
        self.mm_bytes: dict[int, int] = {}
        self.mm_empty: dict[int, int] = {}
        # pfn → [life id, mm, level, present, attached, flow id of its detach]
        self.tables: dict[int, list] = {}
        self.next_id = 1
        self.pending_ipis: dict[int, list[int]] = {}     # target cpu → flow ids
        self.last_ts = 0
        self.buffer: list[bytes] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.buffer.append(_dumps(event))

    def flush(self) -> None:
        if self.buffer:
            sep = b",\n"
            self.out.write((b"" if self.first else sep) + sep.join(self.buffer))
            self.first = False
            self.buffer = []

    def start(self) -> None:
        self.out.write(b"[\n")
        self.emit({"ph": "M", "name": "process_name", "pid": CPUS_PID, "tid": CPUS_PID,
                   "args": {"name": "CPUs"}})
        self.emit({"ph": "M", "name": "process_sort_index", "pid": CPUS_PID,
                   "tid": CPUS_PID, "args": {"sort_index": 0}})

    def _cpu(self, cpu: int) -> int:
        if cpu not in self.cpus:
            self.cpus.add(cpu)
            for name, args in (("thread_name", {"name": f"CPU {cpu}"}),
                               ("thread_sort_index", {"sort_index": cpu})):
                self.emit({"ph": "M", "name": name, "pid": CPUS_PID, "tid": cpu + 1,
                           "args": args})
        return cpu + 1

    def _mm(self, mm: Any, name: str | None = None) -> int:
        pid = self.mm_pid.get(mm)
        if pid is None or name is not None:
            if pid is None:
                pid = self.mm_pid[mm] = MM_PID_BASE + len(self.mm_pid)
                self.emit({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": pid,
                           "args": {"sort_index": len(self.mm_pid)}})
            label = f"mm {mm:#x}" if type(mm) is int else f"mm {mm}"
            self.emit({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
                       "args": {"name": f"{label} {name}" if name else label}})
        return pid

    def _counters(self, mm: Any, ts: Any) -> None:
        pid = self._mm(mm)
        self.emit({"ph": "C", "name": "VmPTE", "pid": pid, "tid": pid, "ts": ts,
                   "args": {"bytes": self.mm_bytes.get(mm, 0)}})
        self.emit({"ph": "C", "name": "PTE tables", "pid": pid, "tid": pid, "ts": ts,
                   "args": {"empty": self.mm_empty.get(mm, 0)}})

    def row(self, index: int, t: int, ts: Any, kind: int, cpu: int, pid: int | None,
            fields: tuple, comm: str | None) -> None:
        """One event (``ts``: its time as :func:`micros` gives it)."""
        if t >= self.next_finding_ts:
            self._findings_before(t)
        self.last_ts = t
        tid = cpu + 1
        if cpu not in self.cpus:
            self._cpu(cpu)
        plan = self.plan.get(kind)
        if plan is None:
            plan = self.plan[kind] = _plan(self.kinds[kind])
        name, names, hexed, plain, slice_ = plan
        args = dict(zip(names, fields))
        if not plain:
            args = to_json(args)
        for k in hexed:
            x = args[k]
            if type(x) is int:
                args[k] = hex(x)
            elif type(x) in (tuple, list):
                args[k] = [hex(p) if type(p) is int else p for p in x]
        args["event"] = index
        if pid is not None:
            args["pid"] = pid
        if comm is not None:
            args["comm"] = comm
        if kind in self.special:
            self._special(kind, index, ts, tid, cpu, fields, name, args)
        elif slice_:
            self.buffer.append(_dumps({"name": name, "cat": "ptviz", "pid": CPUS_PID, "tid": tid,
                                       "ts": ts, "ph": "X", "dur": 0, "args": args}))
        else:
            self.buffer.append(_dumps({"name": name, "cat": "ptviz", "pid": CPUS_PID, "tid": tid,
                                       "ts": ts, "ph": "i", "s": "t", "args": args}))

    def _special(self, kind: int, index: int, ts: Any, tid: int, cpu: int, fields: tuple,
                 name: str, args: dict) -> None:
        """Table steps, IPIs, markers and new mms: what they add besides their event."""
        flows = self._tables(kind, fields, ts, index)
        if kind == _K["ipi_send"]:
            flows = []
            for target in fields[0] or ():
                fid = self._flow_id()
                self.pending_ipis.setdefault(target, []).append(fid)
                flows.append({"bind_id": fid, "flow_out": True})
        elif kind == _K["ipi_enter"]:
            flows = [{"bind_id": fid, "flow_in": True}
                     for fid in self.pending_ipis.pop(cpu, ())]
        elif kind == _K["marker"]:
            self.emit({"ph": "i", "s": "g", "name": f"marker: {fields[0]}", "cat": "marker",
                       "pid": CPUS_PID, "tid": tid, "ts": ts, "args": {"event": index}})
        elif kind == _K["mm_new"]:
            self._mm(fields[0], f"{fields[2] or '?'} ({fields[1]})")
        base = {"name": name, "cat": "ptviz", "pid": CPUS_PID, "tid": tid, "ts": ts,
                "args": args}
        if kind in _X_KINDS:
            for flow in flows or ({},):
                self.emit({**base, "ph": "X", "dur": 0, **flow})
        else:
            self.emit({**base, "ph": "i", "s": "t"})

    def _flow_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _tables(self, kind: int, f: tuple, ts: Any, index: int) -> list[dict]:
        """Lives, counters and the detach → free flow. Returns the flows of this slice."""
        tables = self.tables
        if kind == _K["table_alloc"]:
            mm, level, pfn = f[0], f[1], f[2]
            self._close(pfn, ts, freed=False)
            life = self._flow_id()
            tables[pfn] = [life, mm, level, 0, True, None]
            self.mm_bytes[mm] = self.mm_bytes.get(mm, 0) + self.sizes.table_bytes(level)
            if level == v.LEVEL_PTE:
                self.mm_empty[mm] = self.mm_empty.get(mm, 0) + 1
                self.emit({"ph": "b", "cat": "pte_table", "name": f"PTE table {pfn:#x}",
                           "id": life, "pid": self._mm(mm), "tid": self._mm(mm), "ts": ts,
                           "args": {"pfn": f"{pfn:#x}", "addr": to_json(f[3]),
                                    "event": index}})
            self._counters(mm, ts)
        elif kind in (_K["pte_set"], _K["pte_clear"]):
            t = tables.get(f[1])
            if t is None or not isinstance(f[2], int):
                return []
            was = t[3]
            t[3] = was + f[2] if kind == _K["pte_set"] else max(0, was - f[2])
            if t[4] and t[2] == v.LEVEL_PTE and (was == 0) != (t[3] == 0):
                self.mm_empty[t[1]] += 1 if t[3] == 0 else -1
                self._counters(t[1], ts)
        elif kind == _K["table_detach"]:
            t = tables.get(f[1])
            if t is None or not t[4]:
                return []
            t[4] = False
            mm = t[1]
            self.mm_bytes[mm] -= self.sizes.table_bytes(t[2])
            if t[2] == v.LEVEL_PTE:
                if t[3] == 0:
                    self.mm_empty[mm] -= 1
                self._step(t, "detached", ts, index, f[2], f[1])
            self._counters(mm, ts)
            t[5] = self._flow_id()
            return [{"bind_id": t[5], "flow_out": True}]
        elif kind == _K["table_queue"]:
            t = tables.get(f[0])
            if t is not None and t[2] == v.LEVEL_PTE:
                self._step(t, "queued", ts, index, f[1], f[0])
        elif kind == _K["table_free"]:
            t = tables.get(f[0])
            flow = t[5] if t is not None else None
            self._close(f[0], ts, freed=True, index=index)
            return [{"bind_id": flow, "flow_in": True}] if flow is not None else []
        return []

    def _step(self, t: list, what: str, ts: Any, index: int, how: Any, pfn: int) -> None:
        pid = self._mm(t[1])
        self.emit({"ph": "n", "cat": "pte_table", "name": f"PTE table {pfn:#x}", "id": t[0],
                   "pid": pid, "tid": pid, "ts": ts,
                   "args": {"step": what, "how": to_json(how), "event": index}})

    def _close(self, pfn: int, ts: Any, freed: bool, index: int | None = None) -> None:
        t = self.tables.pop(pfn, None)
        if t is None:
            return
        mm = t[1]
        if t[4]:                       # freed (or replaced) while attached
            self.mm_bytes[mm] -= self.sizes.table_bytes(t[2])
            if t[2] == v.LEVEL_PTE and t[3] == 0:
                self.mm_empty[mm] -= 1
            self._counters(mm, ts)
        if t[2] == v.LEVEL_PTE:
            pid = self._mm(mm)
            self.emit({"ph": "e", "cat": "pte_table", "name": f"PTE table {pfn:#x}",
                       "id": t[0], "pid": pid, "tid": pid, "ts": ts,
                       "args": {"freed": freed} if index is None else
                       {"freed": freed, "event": index}})

    def _findings_before(self, t: int | None) -> None:
        while self.next_finding < len(self.findings) and (
                t is None or self.findings[self.next_finding].ts <= t):
            f = self.findings[self.next_finding]
            self.next_finding += 1
            self.next_finding_ts = self.findings[self.next_finding].ts \
                if self.next_finding < len(self.findings) else 1 << 64
            self.emit({"ph": "i", "s": "g", "name": f"{f.kind}", "cat": "finding",
                       "pid": CPUS_PID, "tid": (f.cpu or 0) + 1, "ts": micros(f.ts),
                       "args": {"message": f.message, "events": list(f.events)}})

    def finish(self) -> None:
        self._findings_before(None)
        end = micros(self.last_ts)
        for pfn in list(self.tables):
            self._close(pfn, end, freed=False)
        self.flush()
        self.out.write(b"\n]\n")


def write_chrome(stream, rows, out: BinaryIO, progress=None, findings: list | None = None
                 ) -> int:
    """Write the rows as a Chrome JSON array to ``out``. Returns the events written."""
    w = ChromeWriter(stream, out, findings)
    w.start()
    index = 0
    for batch in rows:
        comm_of = batch.comms.get
        row_out = w.row
        for row, t, ts in zip(batch.rows, batch.stamps, micros_of(batch.stamps)):
            row_out(index, t, ts, row[0], row[2], row[3], row[4:], comm_of(row[3]))
            index += 1
        w.flush()
        if progress is not None:
            progress(len(batch))
    w.finish()
    return index
