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

Windows and filters: ``--cpus``, ``--kinds`` and ``--pid`` choose the events on the
CPU threads (an arrow is drawn when both its ends are kept); the lives and
counters follow the window and ``--mm``, computed from the trace's start, so a
window opens with the VmPTE and the tables alive at that moment.

Times: ``ts`` in µs as exact decimals (``ns // 1000`` "." three digits), never a
float; absolute, as the trace and ftrace show them. Only the metadata names
Perfetto honours are used. Memory: the live tables, the IPIs and detaches waiting
for their other end, and one batch, plus the findings (from a replay of the trace,
unless ``findings=None``).
"""

from __future__ import annotations

from array import array
from typing import Any, BinaryIO

import numpy as np

from replayer import vocab as v
from replayer.fold import ArchSizes

from .chrome_lives import Lives
from .jsonl import to_json

import orjson

_Fragment = orjson.Fragment
_dumps = orjson.dumps

CPUS_PID = 1
MM_PID_BASE = 100_000
_K = {name: v.KIND_BY_NAME[name].id for name in (
    "tlb_flush", "ipi_send", "ipi_enter", "rcu_invoke", "table_detach", "table_free",
    "table_alloc", "marker", "mm_new")}
_X_KINDS = frozenset(_K[n] for n in ("tlb_flush", "ipi_send", "ipi_enter", "rcu_invoke",
                                      "table_detach", "table_free"))
_HEX = frozenset(("mm", "pfn", "addr", "start", "end", "cb", "pfns"))


def _encoded(event: dict[str, Any]) -> bytes:
    """``orjson.dumps(event)``, copied: an orjson result kept (as the buffer keeps it
    until the batch is written) holds a 1 KiB block shrunk in place, so the heap grows
    a page every few events, 1.3 µs an event; the copy (0.1 µs) frees the block for
    the next."""
    return b"%b" % _dumps(event)


def micros(ns: int) -> Any:
    """``ns`` as a JSON number of µs with three exact decimals."""
    sign = "-" if ns < 0 else ""
    q, r = divmod(abs(ns), 1000)
    text = f"{sign}{q}.{r:03d}"
    return _Fragment(text)


def micros_of(stamps) -> list:
    """:func:`micros` of many times, formatted in C through ``map``."""
    t = np.frombuffer(stamps, np.int64) if isinstance(stamps, array) else \
        np.array(stamps, np.int64)
    if not len(t) or int(t.min()) < 0:
        return [micros(x) for x in t.tolist()]
    q, r = np.divmod(t, 1000)
    return list(map(_Fragment, map("{}.{:03d}".format, q.tolist(), r.tolist())))


def _plan(spec) -> tuple:
    """How a kind's events are written: name, field names, the fields shown in hex,
    whether its values are JSON's own, whether it is a slice."""
    from .jsonl import PLAIN_KINDS, VOCAB
    plain = spec.name in PLAIN_KINDS and spec == VOCAB.get(spec.name)
    return (spec.name, spec.fields, tuple(f for f in spec.fields if f in _HEX), plain,
            spec.id in _X_KINDS)


class ChromeWriter:
    """Turns rows into trace events, buffered per batch (``flush`` keeps the JSON
    array's commas)."""

    def __init__(self, stream, out: BinaryIO, findings: list | None, t0: int | None,
                 mms: frozenset | None) -> None:
        self.out = out
        self.kinds = stream.kinds.by_id
        self.findings = findings or []
        self.plan: dict[int, tuple] = {}
        #: Kinds that do more than show themselves (flows, names).
        self.special = frozenset((_K["ipi_send"], _K["ipi_enter"], _K["table_detach"],
                                  _K["table_free"], _K["table_alloc"], _K["marker"],
                                  _K["mm_new"]))
        self.first = True
        self.cpus: set[int] = set()
        self.mm_pid: dict[Any, int] = {}
        self.next_id = 1
        self.t0 = t0
        self.lives = Lives(self, ArchSizes(stream.header.get("arch")), mms)
        #: An IPI send's slice per target CPU, until that CPU's handler entry answers.
        self.sends: dict[int, list[dict]] = {}
        #: A table's detach slice, until its free (the arrow's other end).
        self.detaches: dict[int, dict] = {}
        self.last_ts = 0
        self.buffer: list[bytes] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.buffer.append(_encoded(event))

    def flush(self) -> None:
        if self.buffer:
            sep = b",\n"
            if not self.first:           # written apart: no copy of the batch's events
                self.out.write(sep)
            self.out.write(sep.join(self.buffer))
            self.first = False
            self.buffer = []

    def start(self) -> None:
        self.out.write(b"[\n")
        self.emit({"ph": "M", "name": "process_name", "pid": CPUS_PID, "tid": CPUS_PID,
                   "args": {"name": "CPUs"}})
        self.emit({"ph": "M", "name": "process_sort_index", "pid": CPUS_PID,
                   "tid": CPUS_PID, "args": {"sort_index": 0}})

    def _cpu(self, cpu: int) -> None:
        self.cpus.add(cpu)
        for name, args in (("thread_name", {"name": f"CPU {cpu}"}),
                           ("thread_sort_index", {"sort_index": cpu})):
            self.emit({"ph": "M", "name": name, "pid": CPUS_PID, "tid": cpu + 1,
                       "args": args})

    def mm_track(self, mm: Any, name: str | None = None) -> int:
        """The pid of ``mm``'s process (named when first seen, again by mm_new)."""
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

    def flow_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def row(self, index: int, t: int, ts: Any, kind: int, cpu: int, pid: int | None,
            fields: tuple, comm: str | None, keep: bool) -> None:
        """One event (``ts``: its time as :func:`micros` gives it); ``keep``: whether
        the window and filters keep it (the lives see every event either way)."""
        lives = self.lives
        if not lives.open and (self.t0 is None or t >= self.t0):
            lives.start(ts if self.t0 is None else micros(self.t0))
        lives.update(kind, fields, ts, index)
        if not keep:
            if kind == _K["ipi_enter"]:
                self._unpaired(self.sends.pop(cpu, ()))
            elif kind == _K["table_free"] or kind == _K["table_alloc"]:
                self._unpaired((self.detaches.pop(fields[0 if kind == _K["table_free"] else 2],
                                                  None),))
            return
        self.last_ts = t
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
        event = {"name": name, "cat": "ptviz", "pid": CPUS_PID, "tid": cpu + 1, "ts": ts,
                 "ph": "X", "dur": 0, "args": args} if slice_ else \
            {"name": name, "cat": "ptviz", "pid": CPUS_PID, "tid": cpu + 1, "ts": ts,
             "ph": "i", "s": "t", "args": args}
        if kind in self.special:
            self._special(kind, cpu, fields, event, index)
        else:
            self.buffer.append(_encoded(event))

    def _special(self, kind: int, cpu: int, fields: tuple, event: dict, index: int) -> None:
        """Arrows (held until their other end), markers and process names."""
        if kind == _K["ipi_send"] and fields[0]:
            for target in fields[0]:
                self.sends.setdefault(target, []).append(event)
            return
        if kind == _K["ipi_enter"]:
            waiting = self.sends.pop(cpu, ())
            for send in waiting:
                fid = self.flow_id()
                self.emit({**send, "bind_id": fid, "flow_out": True})
                self.emit({**event, "bind_id": fid, "flow_in": True})
            if waiting:
                return
        elif kind == _K["table_detach"]:
            if self.lives.has(fields[1]):
                self._unpaired((self.detaches.pop(fields[1], None),))
                self.detaches[fields[1]] = event
                return
        elif kind == _K["table_free"]:
            detach = self.detaches.pop(fields[0], None)
            if detach is not None:
                fid = self.flow_id()
                self.emit({**detach, "bind_id": fid, "flow_out": True})
                self.emit({**event, "bind_id": fid, "flow_in": True})
                return
        elif kind == _K["table_alloc"]:
            self._unpaired((self.detaches.pop(fields[2], None),))
        elif kind == _K["marker"]:
            self.emit({"ph": "i", "s": "g", "name": f"marker: {fields[0]}", "cat": "marker",
                       "pid": CPUS_PID, "tid": cpu + 1, "ts": event["ts"],
                       "args": {"event": index}})
        elif kind == _K["mm_new"]:
            tgid = "" if fields[1] is None else f" ({fields[1]})"
            self.mm_track(fields[0], f"{fields[2] or '?'}{tgid}")
        self.emit(event)

    def _unpaired(self, events) -> None:
        """Slices whose arrow's other end is not in the output: shown without it."""
        for event in events:
            if event is not None:
                self.emit(event)

    def finish(self) -> None:
        for f in self.findings:
            self.emit({"ph": "i", "s": "g", "name": f.kind, "cat": "finding",
                       "pid": CPUS_PID, "tid": (f.cpu or 0) + 1, "ts": micros(f.ts),
                       "args": {"message": f.message, "events": list(f.events)}})
        for waiting in self.sends.values():
            self._unpaired(waiting)
        self._unpaired(self.detaches.values())
        self.lives.finish(micros(self.last_ts))
        self.flush()
        self.out.write(b"\n]\n")


def write_chrome(stream, marked, out: BinaryIO, progress=None, findings: list | None = None,
                 t0: int | None = None, mms: frozenset | None = None) -> int:
    """Write the batches of ``marked`` (:meth:`.stream.Stream.marked`: every event up
    to the window's end, and which to keep) as a Chrome JSON array to ``out``.
    ``findings``: those to show; ``t0``, ``mms``: the window's start and the ``mm=``
    term, which the lives and counters follow. Returns the events written."""
    from .chrome_columns import batch_events
    w = ChromeWriter(stream, out, findings, t0, mms)
    w.start()
    written = 0
    for batch, keep in marked:
        if not batch_events(w, batch, keep):
            rows_one_by_one(w, batch, keep)
        written += int(np.count_nonzero(keep))
        w.flush()
        if progress is not None:
            progress(len(batch))
    w.finish()
    return written


def rows_one_by_one(w: ChromeWriter, batch, keep: np.ndarray) -> None:
    """A batch's events, :meth:`ChromeWriter.row` by row: the reference the column
    path (:mod:`.chrome_columns`) matches byte for byte, and its fallback."""
    comm_of = batch.comms.get
    row_out = w.row
    for row, t, ts, i, k in zip(batch.rows, batch.stamps, micros_of(batch.stamps),
                                batch.indexes, keep.tolist()):
        row_out(i, t, ts, row[0], row[2], row[3], row[4:], comm_of(row[3]), k)
