"""Write small hand-made traces inline in tests: one call per event, names not ids."""

from __future__ import annotations

from replayer import vocab as v
from replayer.replay import Replay
from replayer.traceio import TraceWriter

X86_64 = {"name": "x86_64", "page_size": 4096, "ptrs_per_pte": 512, "levels": 4,
          "pte_table_bytes": 4096, "pmd_table_bytes": 4096, "tlb_flush": "ipi"}
MM = 0xFFFF888000001000
MM2 = 0xFFFF888000002000
MB2 = 2 << 20


class Story:
    """``s.at(ts).on(cpu, pid).table_alloc(mm=..., level=1, pfn=..., addr=...)``.

    Unset fields are None. Every call returns the event's global index.
    """

    def __init__(self, path, chunk_events: int = 4096, **header) -> None:
        self.path = path
        self.writer = TraceWriter(path, {"source": "hand", "cpus": 4, "arch": X86_64, **header},
                                  chunk_events=chunk_events)
        self.ts, self.cpu, self.pid = 1000, 0, 100
        self.count = 0

    def at(self, ts: int) -> "Story":
        self.ts = ts
        return self

    def on(self, cpu: int, pid: int | None = 100) -> "Story":
        self.cpu, self.pid = cpu, pid
        return self

    def __getattr__(self, kind: str):
        spec = v.KIND_BY_NAME[kind]

        def add(**fields) -> int:
            unknown = set(fields) - set(spec.fields)
            assert not unknown, unknown
            self.writer.add(self.ts, spec.id, self.cpu, self.pid,
                            tuple(fields.get(f) for f in spec.fields))
            self.ts += 10
            self.count += 1
            return self.count - 1
        return add

    def replay(self, **kw) -> Replay:
        self.writer.close()
        return Replay.load(self.path, **kw)
