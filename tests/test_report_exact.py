"""The whole JSON report of a sample, written out by hand from the story in
traces/make_samples.py (semi_rcu_walker: 18 events, 1 µs apart from 1.000001 s)."""

import json
import os

from replayer.replay import Replay
from replayer.report import build_report
from tests.conftest import TRACES

MM = "0xffff888003a1c000"
ZERO = {"count": 0, "bytes": 0}


def test_semi_rcu_walker_report_exactly():
    path = os.path.join(TRACES, "semi-rcu-walker-uaf.msgpack")
    report = json.loads(json.dumps(build_report(Replay.load(path))))
    classes = {c: ZERO for c in ("freed_unmap", "freed_collapse", "empty_attached",
                                 "in_flight", "lost", "live")}
    assert report == {
        "schema": 2,
        "trace": {
            "path": path, "source": "hand",
            # x86_64: 4 KiB pages, 512 8-byte entries a table (2 MiB a PTE table maps),
            # 4 levels, IPI shootdowns, GUP-fast (docs/kernel-facts.md §1.2-§1.4).
            "arch": {"name": "x86_64", "page_size": 4096, "ptrs_per_pte": 512, "pte_size": 8,
                     "levels": 4, "pte_table_bytes": 4096, "pmd_table_bytes": 4096,
                     "pmd_span": 2 << 20, "tlb_flush": "ipi", "gup_fast": True,
                     "word_bits": 64, "inferred": False},
            # 6.14 x86_64 resolves table_free=rcu; the story sets semi_rcu against it (the
            # combination the kernel forbids), and the semi-RCU single-table path syncs
            # walkers by a broadcast IPI, as khugepaged does with RCU-TF (§2.5, §8.2).
            "kernel": {"version": "6.14", "pt_reclaim": True,
                       "mmu_gather_rcu_table_free": True,
                       "have_arch_tlb_remove_table": False, "table_free": "semi_rcu",
                       "sync": "ipi_broadcast", "collapse_sync": "ipi_broadcast",
                       "overridden": ["table_free"]},
            "workload": {"name": "hand:semi-rcu-walker", "params": {}, "command": None},
            "cpus": 2, "events": 18,
            "first_ts": 1_000_001_000, "last_ts": 1_000_018_000, "warnings": [],
            "truncated_at_byte": None,
        },
        "at": None,
        "events_applied": 18,
        # The PMD table stays; the PTE table was reclaimed.
        "page_tables": {"bytes": 4096, "peak_bytes": 8192},
        "pte_table_bytes": 4096,
        # Not a recording: which processes were the command's is not known (None).
        "mms": [{"mm": MM, "pids": [4242], "command": None, "comm": "touch-dontneed",
                 "vmpte_bytes": 4096,
                 "peak_vmpte_bytes": 8192,
                 "tables": {"pte": 0, "pmd": 1, "pud": 0, "p4d": 0},
                 "pte_tables": {"reclaimed": {"count": 1, "bytes": 4096}, **classes},
                 "exited_ts": None}],
        "tables": {"reclaimed": {"count": 1, "bytes": 4096}, **classes},
        # Empty from its allocation (event 2, 1.000003) to its first entries (3, 1.000004),
        # in flight from its detach (8, 1.000009) to its free (15).
        "peaks": {"empty_attached": {"count": 1, "bytes": 4096, "ts": 1_000_003_000},
                  "live": {"count": 1, "bytes": 4096, "ts": 1_000_004_000},
                  "in_flight": {"count": 1, "bytes": 4096, "ts": 1_000_009_000}},
        "cpus": [
            {"cpu": 0, "tlb_flushes": 0, "ipis_sent": 1, "ipis_received": 0,
             "ipis_pending": 0, "lost_events": 0, "walker": None},
            {"cpu": 1, "tlb_flushes": 0, "ipis_sent": 0, "ipis_received": 1,
             "ipis_pending": 0, "lost_events": 0, "walker": None},
        ],
        "rcu": {"pending": 0, "invoked": 0, "grace_periods": 0,
                "grace_period_tail_ns": 100_000_000,
                "grace_periods_seen": False},
        # sync_begin at event 10 (1.000011), sync_end at event 14 (1.000015).
        "syncs": {"ipi_broadcast": {"count": 1, "targets": 1, "wait_ns": 4000,
                                    "max_wait_ns": 4000}},
        # walk_begin (4) and walk_table (5) on CPU 1; the free (15) on CPU 0.
        "findings": [{"kind": "use_after_free", "ts": 1_000_016_000, "cpu": 1,
                      "pfn": "0x22000", "mm": MM,
                      "message": "table 0x22000 freed on CPU 0 (ipi_sync) while a "
                                 "pte_offset_map walker on CPU 1 (rcu) still holds it",
                      "events": [4, 5, 15]}],
        "findings_suppressed": {},
        "markers": [],
        "orphan_events": 0,
        "counts_trusted": True,
        # A hand-written story: every step is given (inferred None), nothing inferred.
        "provenance": {"table_alloc": {"seen": 2, "inferred": 0},
                       "table_detach": {"seen": 1, "inferred": 0},
                       "table_queue": {"seen": 1, "inferred": 0},
                       "table_free": {"seen": 1, "inferred": 0}},
        "inference_notes": [],
    }
