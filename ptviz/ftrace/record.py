"""``ptviz record``: trace a command in a private tracefs instance, then import.

The instance (``instances/ptviz-PID``) keeps the top-level buffer and anyone
else's tracing untouched; it is removed on every path out (the command
failing, Ctrl-C, ptviz failing), with its events disabled first.
"""

from __future__ import annotations

import gzip
import os
import platform
import subprocess
import sys
import time
from typing import Any

from replayer.errors import BadInput

TRACEFS = "/sys/kernel/tracing"
EVENTS = (
    "kmem/mm_page_alloc", "kmem/mm_page_free", "kmem/mm_page_free_batched",
    "exceptions/page_fault_user", "tlb/tlb_flush", "ipi", "csd",
    "irq_vectors/call_function_entry", "irq_vectors/call_function_exit",
    "irq_vectors/call_function_single_entry", "irq_vectors/call_function_single_exit",
    "syscalls/sys_enter_madvise", "syscalls/sys_exit_madvise", "syscalls/sys_enter_munmap",
    "syscalls/sys_exit_munmap", "syscalls/sys_enter_mmap", "syscalls/sys_exit_mmap",
    "syscalls/sys_enter_clone", "syscalls/sys_enter_clone3",   # end a fault before dup_mmap
    "sched/sched_process_fork", "sched/sched_process_exit",
    "rcu/rcu_callback", "rcu/rcu_invoke_callback", "rcu/rcu_grace_period",
)
PROBES = (  # offered by --print for kernels with kprobe events (KF §2.1, §5.3)
    "p:ptviz/free_pte free_pte mm=%di addr=%si",
    "p:ptviz/tlb_remove_table tlb_remove_table tlb=%di table=%si",
    "p:ptviz/tlb_remove_table_rcu tlb_remove_table_rcu head=%di",
    "p:ptviz/pte_alloc __pte_alloc mm=%di pmd=%si",
    "p:ptviz/free_pgtables free_pgtables tlb=%di",
    "p:ptviz/flush_tlb_mm_range flush_tlb_mm_range mm=%di start=%si end=%dx",
)


class RecordError(BadInput):
    """Recording cannot start here (no root, no tracefs)."""


def tracefs() -> str:
    if os.geteuid() != 0:
        raise RecordError("recording needs root (tracefs instances are root-only); "
                          "run as root, or see --print for the commands")
    if not os.path.exists(os.path.join(TRACEFS, "instances")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True)
    if not os.path.exists(os.path.join(TRACEFS, "instances")):
        raise RecordError(f"tracefs is not available at {TRACEFS} and could not be mounted")
    return TRACEFS


def kernel_header() -> dict[str, Any]:
    """This machine's architecture and kernel, with PT_RECLAIM from its config."""
    from ..sim import arches
    machine = platform.machine()
    arch = arches.ARCHES.get({"aarch64": "arm64"}.get(machine, machine))
    config = _kernel_config()
    return {"arch": arch.header() if arch else {"name": machine},
            "kernel": {"version": platform.release(),
                       "pt_reclaim": config.get("CONFIG_PT_RECLAIM") == "y" if config else None,
                       "mmu_gather_rcu_table_free":
                           config.get("CONFIG_MMU_GATHER_RCU_TABLE_FREE") == "y"
                           if config else None}}


def _kernel_config() -> dict[str, str]:
    paths = ["/proc/config.gz", f"/boot/config-{platform.release()}"]
    for path in paths:
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                return dict(line.strip().split("=", 1) for line in f if line.startswith("CONFIG_")
                            and "=" in line)
        except OSError:
            continue
    return {}


def _write(path: str, value: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError:
        return False


def record_text(cmd: list[str], text_out: str, events: tuple[str, ...] = EVENTS,
                tail: float = 0.5, buffer_kb: int = 65536, progress: bool = True
                ) -> dict[str, Any]:
    """Run ``cmd`` traced; write the instance's text (plus loss markers) to ``text_out``."""
    root = tracefs()
    inst = os.path.join(root, "instances", f"ptviz-{os.getpid()}")
    os.mkdir(inst)
    enabled, missing = [], []
    proc = None
    started = time.monotonic()
    try:
        _write(os.path.join(inst, "options", "record-tgid"), "1")
        _write(os.path.join(inst, "buffer_size_kb"), str(buffer_kb))
        for ev in events:
            (enabled if _write(os.path.join(inst, "events", ev, "enable"), "1")
             else missing).append(ev)
        _write(os.path.join(inst, "tracing_on"), "1")
        try:
            proc = subprocess.Popen(cmd, env={**os.environ, "PTVIZ_TRACE_MARKER":
                                              os.path.join(inst, "trace_marker")})
        except OSError as exc:
            raise RecordError(f"cannot run {cmd[0]!r}: {exc.strerror}") from None
        while True:
            try:
                proc.wait(timeout=0.2)      # returns as soon as CMD exits
                break
            except subprocess.TimeoutExpired:
                pass
            if progress and sys.stderr.isatty():
                print(f"\rptviz: recording {time.monotonic() - started:5.1f} s, "
                      f"{_entries(inst):,} events", end="", file=sys.stderr, flush=True)
        time.sleep(tail)                   # RCU-deferred frees arrive after the command
        _write(os.path.join(inst, "tracing_on"), "0")
        lost = _overruns(inst)
        with open(os.path.join(inst, "trace"), errors="replace") as src, \
                open(text_out, "w") as dst:
            for line in src:
                dst.write(line)
            for cpu, n in sorted(lost.items()):
                if n:
                    dst.write(f"CPU:{cpu} [LOST {n} EVENTS]\n")
        if progress and sys.stderr.isatty():
            print(file=sys.stderr)
        return {"returncode": proc.returncode, "enabled": enabled, "missing": missing,
                "lost": lost, "seconds": time.monotonic() - started}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        _write(os.path.join(inst, "tracing_on"), "0")
        _write(os.path.join(inst, "events", "enable"), "0")
        for _ in range(50):         # busy while the kernel still holds a reader
            try:
                os.rmdir(inst)
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"ptviz: warning: could not remove {inst}; remove it with rmdir",
                  file=sys.stderr)


def _entries(inst: str) -> int:
    total = 0
    for cpu in os.listdir(os.path.join(inst, "per_cpu")):
        total += _stat(os.path.join(inst, "per_cpu", cpu, "stats"), "entries")
    return total


def _overruns(inst: str) -> dict[int, int]:
    out = {}
    for cpu in os.listdir(os.path.join(inst, "per_cpu")):
        out[int(cpu[3:])] = _stat(os.path.join(inst, "per_cpu", cpu, "stats"), "overrun")
    return out


def _stat(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split(":")[1])
    except (OSError, ValueError):
        pass
    return 0


def print_commands(cmd: list[str], events: tuple[str, ...] = EVENTS) -> str:
    """The tracefs and trace-cmd commands that record the same thing without ptviz."""
    inst = f"{TRACEFS}/instances/ptviz"
    lines = ["# with tracefs (as root):", f"mkdir {inst}",
             f"echo 1 > {inst}/options/record-tgid"]
    lines += [f"echo 1 > {inst}/events/{e}/enable" for e in events]
    lines += [f"echo 1 > {inst}/tracing_on", f"{' '.join(cmd) or 'CMD'}; sleep 0.5",
              f"echo 0 > {inst}/tracing_on", f"cat {inst}/trace > trace.txt",
              f"echo 0 > {inst}/events/enable; rmdir {inst}",
              "ptviz convert trace.txt trace.msgpack", "",
              "# with trace-cmd:",
              "trace-cmd record -B ptviz -O record-tgid " + " ".join(
                  f"-e {e.replace('/', ':')}" for e in events) + f" {' '.join(cmd) or 'CMD'}",
              "trace-cmd report > trace.txt   # or: ptviz convert trace.dat trace.msgpack", "",
              "# on kernels with kprobe events, the explicit steps (KF §2.1):"]
    lines += [f"echo '{p}' >> {TRACEFS}/kprobe_events" for p in PROBES]
    return "\n".join(lines) + "\n"
