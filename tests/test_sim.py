"""The simulator retells the PT_RECLAIM story (issue #4's must-shows)."""

import json

import pytest

from ptviz.cli import main
from ptviz import arches
from ptviz.sim import kernels, walker
from ptviz.sim.run import simulate
from replayer.replay import Replay
from replayer.report import build_report

KB = 1024


def run(tmp_path, arch="x86_64", kernel="6.14", workload="coverletter", cpus=4, seed=1,
        name="t.msgpack", sets=None, **params):
    out = tmp_path / name
    result = simulate(str(out), arch, kernel, workload, {k: str(v) for k, v in params.items()},
                      dict(sets or {}), cpus=cpus, seed=seed)
    return result, build_report(Replay.load(out)), out


def vmpte_at_markers(report):
    """(what the simulated process wrote, what the replayer computed) at each marker."""
    return [(int(m["text"].split()[1]) * KB, m["vmpte_bytes"]) for m in report["markers"]]


def test_coverletter_613_leaks_one_table_per_2mb_and_614_reclaims_all(tmp_path):
    _, before, path = run(tmp_path, kernel="6.13", size="64M", name="a.msgpack")
    _, after, _ = run(tmp_path, kernel="6.14", size="64M", name="b.msgpack")
    # 32 steps of 2 MiB: 6.13 keeps 32 empty PTE tables of 512 × 8 bytes each.
    end_before = vmpte_at_markers(before)[-1]
    end_after = vmpte_at_markers(after)[-1]
    assert end_before[0] - end_after[0] == 32 * 512 * 8
    assert end_before[0] == end_before[1] and end_after[0] == end_after[1]
    assert after["tables"]["reclaimed"]["count"] == 32
    assert before["tables"]["reclaimed"]["count"] == 0
    # Before exit, the 6.13 tables are empty but attached: the leak PT_RECLAIM fixes.
    marker_ts = before["markers"][-1]["ts"]
    at = build_report(Replay.load(path), marker_ts)
    assert at["tables"]["empty_attached"] == {"count": 32, "bytes": 32 * 4096}


def test_published_case_matches_up_to_the_baseline(tmp_path):
    """docs/kernel-facts.md §3: 50 GB, 25600 iterations; VmPTE 102640 kB before, 240 kB after."""
    params = dict(size="50G", iterations=25600, batch=512)
    _, before, _ = run(tmp_path, kernel="6.13", name="a.msgpack", **params)
    _, after, _ = run(tmp_path, kernel="6.14", name="b.msgpack", **params)
    sim_before, replay_before = vmpte_at_markers(before)[-1]
    sim_after, replay_after = vmpte_at_markers(after)[-1]
    assert (sim_before, sim_after) == (replay_before, replay_after)
    published_before, published_after = 102640 * KB, 240 * KB
    assert sim_before - sim_after == published_before - published_after == 25600 * 4 * KB
    baseline = published_before - sim_before
    assert baseline == published_after - sim_after == 36 * KB  # the process's other tables
    assert after["tables"]["reclaimed"]["count"] == 25600


RECLAIMS_AT = {
    "6.19": {"x86_64"},
    "7.0": set(arches.ARCHES) - {"powerpc64", "powerpc64-hash", "sparc64", "arm"},
}


@pytest.mark.parametrize("version", ["6.19", "7.0"])
def test_arch_matrix(tmp_path, version):
    reclaimers, vmpte = set(), {}
    for name, arch in arches.ARCHES.items():
        span = arch.pmd_span
        result, report, _ = run(tmp_path, arch=name, kernel=version, cpus=2, size=8 * span,
                                step=span, batch=arch.ptrs_per_pte, name=f"{name}.msgpack")
        end = report["markers"][-1]["vmpte_bytes"]
        if result["reclaimed"]:
            assert result["reclaimed"] == 8
            reclaimers.add(name)
        else:
            # Eight empty PTE tables of PTRS_PER_PTE entries stay: bytes differ per arch.
            upper = end - 8 * arch.pte_table_bytes
            assert upper in (0, arch.page_size, 2 * arch.page_size), name
        vmpte[name] = end
    assert reclaimers == RECLAIMS_AT[version]
    assert "powerpc64" not in reclaimers and "sparc64" not in reclaimers
    if version == "6.19":
        assert vmpte["arm64"] == 8 * 4096 + 2 * 4096          # 4 levels: a PMD and a PUD
        assert vmpte["arm64-64k"] == 8 * 65536 + 65536        # 3 levels: a PMD table
        assert vmpte["s390"] == 8 * 2048 + 2 * 4096       # 256-entry, 2 KiB PTE tables


def uaf(report):
    return sum(1 for f in report["findings"] if f["kind"] == "use_after_free")


def test_walkers_semi_rcu_use_after_free_rcu_safe_gup_fast_safe(tmp_path):
    common = dict(workload="walkers", kernel="6.14", size="16M")
    _, semi, _ = run(tmp_path, sets={"table_free": "semi_rcu"}, walker="pte_offset_map",
                     name="semi.msgpack", **common)
    _, rcu, _ = run(tmp_path, walker="pte_offset_map", name="rcu.msgpack", **common)
    _, gup, _ = run(tmp_path, sets={"table_free": "semi_rcu"}, walker="gup_fast",
                    name="gup.msgpack", **common)
    assert uaf(semi) > 0
    assert "rcu_read_lock" not in semi["findings"][0]["message"]
    assert "pte_offset_map walker" in semi["findings"][0]["message"]
    assert uaf(rcu) == 0 and rcu["tables"]["reclaimed"]["count"] > 0
    assert uaf(gup) == 0 and gup["tables"]["reclaimed"]["count"] > 0
    assert semi["trace"]["kernel"]["table_free"] == "semi_rcu"


def test_sync_methods_side_by_side(tmp_path):
    """Broadcast vs targeted IPIs vs synchronize_rcu on 16 CPUs, single-table path forced."""
    rows = {}
    for sync in ("ipi_broadcast", "ipi_targeted", "synchronize_rcu"):
        _, rep, _ = run(tmp_path, workload="walkers", kernel="7.0", cpus=16, size="8M",
                        walker="gup_fast", readers=4, batch_fail=1.0,
                        sets={"pt_reclaim": "off", "sync": sync}, name=f"{sync}.msgpack")
        s = rep["syncs"][sync]
        rows[sync] = (s["count"], s["targets"], s["wait_ns"] / s["count"])
    (nb, tb, wb), (nt, tt, _), (nr, tr, wr) = (rows["ipi_broadcast"], rows["ipi_targeted"],
                                               rows["synchronize_rcu"])
    assert nb == nt == nr > 0                 # the same frees needed a sync each time
    assert tb == 15 * nb                      # every other CPU, every time
    assert tt < tb / 3                        # only CPUs inside a GUP-fast walk of this mm
    assert tr == 0 and wr > 100 * wb          # no IPI, but a grace period of waiting


def test_same_seed_same_bytes(tmp_path):
    a = run(tmp_path, workload="walkers", size="8M", name="a.msgpack", seed=7)[2]
    b = run(tmp_path, workload="walkers", size="8M", name="b.msgpack", seed=7)[2]
    c = run(tmp_path, workload="walkers", size="8M", name="c.msgpack", seed=8)[2]
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("workload", ["allocator", "munmap", "fork-exit", "collapse"])
def test_other_workloads_replay_clean(tmp_path, workload):
    result, report, _ = run(tmp_path, workload=workload, kernel="7.0")
    assert result["events"] > 100 and report["findings"] == []
    assert report["page_tables"]["bytes"] == 0            # every process exited
    assert report["tables"]["lost"]["count"] == 0
    # What the processes wrote as their VmPTE is what the replayer computes.
    for written, replayed in vmpte_at_markers(report):
        assert written == replayed


def test_collapse_syncs_walkers(tmp_path):
    _, report, _ = run(tmp_path, workload="collapse", kernel="7.0", regions=8)
    assert report["tables"]["freed_collapse"]["count"] == 8
    assert report["syncs"]["ipi_broadcast"]["count"] == 8


def test_header_records_how_to_reproduce(tmp_path, capsys):
    out = tmp_path / "h.msgpack"
    assert main(["simulate", "--arch", "arm64", "--kernel", "7.0", "--param", "size=16M",
                 "--set", "sync=ipi_targeted", "--seed", "3", "-o", str(out)]) == 0
    assert main(["info", "--json", str(out)]) == 0
    header = json.loads(capsys.readouterr().out)["header"]
    assert header["seed"] == 3 and header["arch"]["name"] == "arm64"
    assert header["kernel"]["sync"] == "ipi_targeted"
    assert header["kernel"]["overridden"] == ["sync"]
    assert "--set" in header["command"] and "sync=ipi_targeted" in header["command"]


def test_list_arches_fits_100_columns_and_says_what_resolve_says(capsys):
    assert main(["simulate", "--list-arches"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = lines[0].split()
    versions = header[header.index("tlb") + 1:]
    assert versions == list(kernels.VERSIONS)
    rows = [line.split() for line in lines[1:len(arches.ARCHES) + 1]]
    assert [words[0] for words in rows] == list(arches.ARCHES)
    # The words of the legend, read back: what each cell says of the resolved config.
    free = {"page": "page", "semi": "semi_rcu", "rcu": "rcu"}
    sync = {"ipi": "ipi_broadcast", "sync": "synchronize_rcu"}
    for name, *words in rows:
        arch = arches.get(name)
        assert words[:5] == [f"{arch.page_size // 1024}K", str(arch.ptrs_per_pte),
                             str(arch.page_table_levels), str(arch.pte_table_bytes),
                             arch.tlb_shootdown]
        cells: list[list[str]] = []
        for word in words[5:]:
            if word in ("R", "-"):
                cells.append([word])
            else:
                cells[-1].append(word)
        assert len(cells) == len(versions), name
        for version, cell in zip(versions, cells):
            cfg = kernels.resolve(arch, version)
            said = (cell[0] == "R", free[cell[1]], sync[cell[2]] if len(cell) == 3 else "none")
            assert said == (cfg.pt_reclaim, cfg.table_free, cfg.sync), (name, version, cell)
    legend = " ".join(lines[len(arches.ARCHES) + 1:])
    for words in ("PTRS: PTRS_PER_PTE", "R = PT_RECLAIM", "semi = semi_rcu",
                  "ipi = ipi_broadcast", "sync = synchronize_rcu", "single-table path"):
        assert words in legend


def test_explain(capsys):
    assert main(["simulate", "--explain", "--arch", "sparc64", "--kernel", "7.0"]) == 0
    out = capsys.readouterr().out
    assert "pt_reclaim                  n" in out and "fails the dependency" in out
    assert main(["simulate", "--explain", "--kernel", "6.14", "--set",
                 "table_free=semi_rcu"]) == 0
    assert "the kernel forbids this" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["--arch", "vax", "-o", "x"], "unknown architecture"),
    (["--kernel", "five", "-o", "x"], "kernel 'five'"),
    (["--set", "table_free=maybe", "-o", "x"], "table_free=maybe"),
    (["--set", "nonsense=1", "-o", "x"], "unknown flag"),
    (["--workload", "nope", "-o", "x"], "unknown workload"),
    ([], "-o OUT.msgpack is required"),
])
def test_usage_errors(capsys, args, words):
    assert main(["simulate", *args]) == 2
    assert words in capsys.readouterr().err


def test_kernel_resolution_cites_its_rules():
    x86 = arches.get("x86_64")
    cfg = kernels.resolve(x86, "6.13")
    assert (cfg.pt_reclaim, cfg.table_free) == (False, "page")
    cfg = kernels.resolve(arches.get("arm64"), "after-7.0", {"pt_reclaim": "off"})
    assert (cfg.table_free, cfg.sync) == ("semi_rcu", "synchronize_rcu")
    assert "1fb3d8c20bfa" in cfg.reasons["sync"]
    assert arches.get("x86_64").max_table_batch(True) == 509      # docs/kernel-facts.md §2.5
    assert arches.get("x86").max_table_batch(True) == 1021
    assert arches.get("arm64-64k").max_table_batch(True) == 8189


def test_reclaim_needs_dontneed_a_whole_span_and_nothing_skipped(tmp_path):
    whole = run(tmp_path, size="16M", name="a.msgpack")[0]["reclaimed"]
    half = run(tmp_path, size="16M", step="1M", name="b.msgpack")[0]["reclaimed"]
    skipped = run(tmp_path, size="16M", skipped=1.0, name="c.msgpack")[0]["reclaimed"]
    unmapped = run(tmp_path, workload="munmap", size="16M", chunk="2M", name="d.msgpack")
    assert whole == 8 and half == 0 and skipped == 0
    assert unmapped[0]["reclaimed"] == 0          # munmap frees, but not by PT_RECLAIM
    assert unmapped[1]["tables"]["freed_unmap"]["count"] == 8


def test_recheck_path_keeps_a_refaulted_table(tmp_path):
    # The PMD trylock always fails: the re-check path runs, and another thread refaults.
    result, report, _ = run(tmp_path, size="16M", pmd_contention=1.0, refault=1.0)
    assert result["reclaimed"] == 0
    # Contention alone (no refault) still reclaims through the re-check path.
    assert run(tmp_path, size="16M", pmd_contention=1.0, name="b.msgpack")[0]["reclaimed"] == 8


def test_mmu_gather_batches_of_max_table_batch(tmp_path):
    _, _, path = run(tmp_path, workload="munmap", size="2G", chunk="2G", batch=512)
    replay = Replay.load(path)
    sizes = [len(e["pfns"]) for _, e in replay.events(kinds={"rcu_queue"})]
    # 1024 PTE tables + 2 PMD tables in one munmap, then the PUD at exit: 509 per batch page.
    assert sizes[:3] == [509, 509, 8]


def test_unknown_param_is_a_usage_error(capsys):
    assert main(["simulate", "--param", "sise=1G", "-o", "x"]) == 2
    assert "--param sise" in capsys.readouterr().err


@pytest.mark.parametrize("workload, kernel, leaks", [
    ("coverletter", "6.13", 32),     # each emptied table waits for exit: the leak
    ("coverletter", "6.14", 0),      # PT_RECLAIM takes them at MADV_DONTNEED
    ("munmap", "6.14", 0),           # munmap empties and frees its own tables
    ("fork-exit", "6.14", 0),
])
def test_leaks_are_the_tables_one_zap_emptied_and_another_took(tmp_path, workload, kernel,
                                                                leaks):
    params = {"size": "64M"} if workload == "coverletter" else {}
    _, _, path = run(tmp_path, kernel=kernel, workload=workload, **params)
    tables = Replay.load(path).tables()
    assert int((tables.leaked_since >= 0).sum()) == leaks


@pytest.mark.parametrize("arch", ["x86_64", "arm64-64k", "x86"])
def test_a_forked_child_starts_with_copies_of_its_parents_tables(tmp_path, arch):
    # dup_mmap copies the parent's tables into the child: the child's VmPTE right after
    # fork is the parent's, the replay agrees at every marker, and the copies go with
    # the child's exit (nothing left once everyone has exited).
    _, report, path = run(tmp_path, arch=arch, workload="fork-exit", children=2)
    marks = vmpte_at_markers(report)
    assert all(simulated == replayed for simulated, replayed in marks)
    texts = [m["text"] for m in report["markers"]]
    parent = next(b for (b, _), t in zip(marks, texts) if t.endswith("(parent touched)"))
    forked = [b for (b, _), t in zip(marks, texts) if t.endswith("(child forked)")]
    assert parent > 0 and forked == [parent, parent]
    assert report["tables"]["live"]["count"] == 0


@pytest.mark.parametrize("workload,params", [("walkers", {"size": "8M", "hold_ns": "3000"}),
                                             ("collapse", {"regions": "40"})])
def test_walkers_written_out_loop_makes_the_general_loops_trace(tmp_path, monkeypatch,
                                                                workload, params):
    """A reader of fresh data has its draws and pick written out in its loop; the loop
    that calls pick and the rng's randrange (taken when this Python's draws differ)
    writes the same bytes."""
    _, _, fast = run(tmp_path, workload=workload, name="fast.msgpack", **params)
    monkeypatch.setattr(walker, "_SAME_DRAWS", False)
    _, _, general = run(tmp_path, workload=workload, name="general.msgpack", **params)
    assert fast.read_bytes() == general.read_bytes()


def test_a_shootdowns_handling_as_one_record_makes_the_general_handlers_trace(tmp_path,
                                                                              monkeypatch):
    """A TLB shootdown's handling is one record (buffer.IPI); a handler that records the
    remote flush itself, between ipi_enter and ipi_exit, writes the same bytes."""
    from ptviz.sim import mm
    from ptviz.sim.machine import CODES, NO_TASK
    from replayer import vocab

    def flush_tlb(self):
        m, a = self.k.m, self.a
        m.record(m.now, self.cpu, vocab.TLB_FLUSH, a.task, a.mm, CODES["local mm shootdown"])
        if m.ipi_flush:
            m.call_function(self.cpu, a.task, tuple(sorted(a.cpus - {self.cpu})),
                            "tlb_shootdown", "flush_tlb_mm_range",
                            lambda t, at: m.record(at, t, vocab.TLB_FLUSH, NO_TASK, a.mm,
                                                   CODES["remote shootdown"]))
    for workload, params in (("collapse", {"regions": "40"}), ("walkers", {"size": "8M"})):
        _, _, grouped = run(tmp_path, workload=workload, name=f"{workload}-1.msgpack", **params)
        with monkeypatch.context() as patch:
            patch.setattr(mm.Gather, "flush_tlb", flush_tlb)
            _, _, general = run(tmp_path, workload=workload, name=f"{workload}-2.msgpack",
                                **params)
        assert grouped.read_bytes() == general.read_bytes()
