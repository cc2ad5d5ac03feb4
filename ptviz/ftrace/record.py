"""``ptviz record``: trace a command in a private tracefs instance, then import.

The instance (``instances/ptviz-PID``) keeps the top-level buffer and anyone
else's tracing untouched; it is removed on every path out (the command
failing, Ctrl-C, SIGTERM, ptviz failing), with its events disabled first.

Stopped early (SIGTERM, SIGHUP, a failure), ptviz ends the command and every
process it started (:mod:`.proctree`) rather than leave a half-run build behind.
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import signal
import subprocess
import sys
import time
from typing import Any

from replayer.errors import BadInput

from . import probes as pr
from .proctree import STOP_GRACE_S, end_tree, own_children, signals_deferred, subreaper
from .vmpte import VmpteSampler

TRACEFS = "/sys/kernel/tracing"
EVENTS = (
    "kmem/mm_page_alloc", "kmem/mm_page_free", "kmem/mm_page_free_batched",
    # A fault in the kernel on a user address (copy_to_user into a fresh buffer) also
    # allocates the task's page tables.
    "exceptions/page_fault_user", "exceptions/page_fault_kernel",
    "tlb/tlb_flush", "ipi", "csd",
    "irq_vectors/call_function_entry", "irq_vectors/call_function_exit",
    "irq_vectors/call_function_single_entry", "irq_vectors/call_function_single_exit",
    # The VMAs (PT_RECLAIM frees a table only when one VMA's zap covers its span) and
    # the calls that move or drop page tables.
    "syscalls/sys_enter_madvise", "syscalls/sys_exit_madvise", "syscalls/sys_enter_munmap",
    "syscalls/sys_exit_munmap", "syscalls/sys_enter_mmap", "syscalls/sys_exit_mmap",
    "syscalls/sys_enter_mprotect", "syscalls/sys_exit_mprotect",
    "syscalls/sys_enter_mremap", "syscalls/sys_exit_mremap",
    "syscalls/sys_enter_brk", "syscalls/sys_exit_brk",
    # fork: the child's copied tables are allocated inside the parent's call; whether it
    # is a thread (CLONE_VM) or a process is in task_newtask's clone_flags.
    "syscalls/sys_enter_clone", "syscalls/sys_exit_clone",
    "syscalls/sys_enter_clone3", "syscalls/sys_exit_clone3",
    "syscalls/sys_enter_fork", "syscalls/sys_exit_fork",
    "syscalls/sys_enter_vfork", "syscalls/sys_exit_vfork", "task/task_newtask",
    # mm teardowns: exit, and exec (the new image's first tables come inside the call).
    "syscalls/sys_enter_exit_group", "syscalls/sys_enter_execve", "syscalls/sys_exit_execve",
    "syscalls/sys_enter_execveat", "syscalls/sys_exit_execveat", "mmap/exit_mmap",
    "sched/sched_process_fork", "sched/sched_process_exit", "sched/sched_process_exec",
    "rcu/rcu_callback", "rcu/rcu_invoke_callback", "rcu/rcu_grace_period",
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
    from ..arches import of_machine
    machine = platform.machine()
    arch = of_machine(machine)
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


def _append(path: str, line: str) -> bool:
    """One line onto a tracefs list file (``dynamic_events``): never "w", which would
    clear every probe on the system."""
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
        return True
    except OSError:
        return False


def install_probes(root: str, group: str) -> tuple[list[str], str | None]:
    """Define the page-table probes (:mod:`.probes`) in ``group``: fprobes, else kprobes.

    Returns the events defined and the style used (None: this kernel has neither;
    every definition that failed is left undefined). Dynamic events are global, so
    the group name is private to this run and :func:`remove_probes` undoes it.
    """
    path = os.path.join(root, "dynamic_events")
    for style in ("fprobe", "kprobe"):
        done = [line.split()[0].split("/", 1)[1] for line in pr.definitions(style, group)
                if _append(path, line)]
        if done:
            return done, style
    return [], None


def remove_probes(root: str, group: str, events: list[str]) -> None:
    for event in events:
        _append(os.path.join(root, "dynamic_events"), f"-:{group}/{event}")


def _call_rcu_filter() -> str | None:
    """Keep only call_rcu of the table callbacks (every call_rcu would flood the buffer)."""
    addrs = []
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] in pr.RCU_CALLBACKS:
                    addrs.append(f"func == 0x{parts[0]}")
    except OSError:
        return None
    return " || ".join(addrs) or None


def record_text(cmd: list[str], text_out: str, events: tuple[str, ...] = EVENTS,
                tail: float = 0.5, buffer_kb: int = 65536, progress: bool = True,
                probes: bool = True, sample_s: float = 0.1) -> dict[str, Any]:
    """Run ``cmd`` traced; write the instance's text (plus loss markers) to ``text_out``.

    With ``probes``, the page-table probes are defined where the kernel allows, and
    the instance's ``hash-ptr`` option is turned off so that probe pointers can be
    tied to pfns (the text then holds raw kernel addresses). The kernel's VmPTE of
    ``cmd``'s processes is written into the trace at its start, every ``sample_s``
    seconds (0: never) and at their exits (:mod:`.vmpte`).
    """
    root = tracefs()
    inst = os.path.join(root, "instances", f"ptviz-{os.getpid()}")
    group = f"ptviz_{os.getpid()}"
    os.mkdir(inst)
    subreaper(True)
    enabled, missing, probe_events, style = [], [], [], None
    proc = None
    started = time.monotonic()
    try:
        _write(os.path.join(inst, "options", "record-tgid"), "1")
        _write(os.path.join(inst, "buffer_size_kb"), str(buffer_kb))
        for ev in events:
            (enabled if _write(os.path.join(inst, "events", ev, "enable"), "1")
             else missing).append(ev)
        if probes:
            probe_events, style = install_probes(root, group)
            for ev in probe_events:
                _write(os.path.join(inst, "events", group, ev, "enable"), "1")
            if probe_events:
                _write(os.path.join(inst, "options", "hash-ptr"), "0")
                rcu_filter = _call_rcu_filter()
                if rcu_filter and "call_rcu" in probe_events:
                    _write(os.path.join(inst, "events", group, "call_rcu", "filter"),
                           rcu_filter)
            else:
                missing.append("probes (no kprobe or fprobe events in this kernel)")
        _write(os.path.join(inst, "tracing_on"), "1")
        marker = open(os.path.join(inst, "trace_marker"), "w")
        others = own_children()
        try:
            with signals_deferred():     # a stop now ends the command: its pid is known
                proc = subprocess.Popen(cmd, env={**os.environ, "PTVIZ_TRACE_MARKER":
                                                  os.path.join(inst, "trace_marker")})
        except OSError as exc:
            marker.close()
            raise RecordError(f"cannot run {cmd[0]!r}: {exc.strerror}") from None
        except BaseException:            # stopped as CMD started: the instance must go,
            marker.close()               # and an open trace_marker keeps it busy
            raise
        with marker:
            sampler = VmpteSampler(marker, proc.pid)
            interrupted = _run_sampled(proc, sampler, sample_s,
                                       inst if progress and sys.stderr.isatty() else None,
                                       started, others)
            # After CMD: its exit's sample, the tail, the end's sample. A Ctrl-C in any
            # of them cuts them short and keeps what was recorded, unless it is the
            # second (one stopped CMD already): that gives up.
            tail_cut = False
            try:
                if sample_s:
                    sampler.sample()       # CMD's exit: its last sample is 0
                time.sleep(tail)           # RCU-deferred frees arrive after the command
                if sample_s:
                    sampler.sample("end")  # the exits the tail saw (background children)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                tail_cut = True
        samples, ours = sampler.samples, set(sampler.pids)
        _write(os.path.join(inst, "tracing_on"), "0")
        lost = _overruns(inst)
        with open(os.path.join(inst, "trace"), errors="replace") as src, \
                open(text_out, "w") as dst:
            # `trace` is read in overwrite mode: an overrun dropped that CPU's OLDEST
            # events, so its marker goes first and the import ties the loss to the
            # first event left on that CPU.
            for cpu, n in sorted(lost.items()):
                if n:
                    dst.write(f"CPU:{cpu} [LOST {n} EVENTS]\n")
            for line in src:
                dst.write(line)
                if "sched_process_fork" in line:
                    _follow_fork(line, ours)
        if progress and sys.stderr.isatty():
            print(file=sys.stderr)
        return {"returncode": proc.returncode, "enabled": enabled, "missing": missing,
                "probes": probe_events, "probe_style": style, "vmpte_samples": samples,
                "interrupted": interrupted, "tail_cut": tail_cut,
                "command_pids": sorted(ours),
                "lost": lost, "seconds": time.monotonic() - started}
    finally:
        # A second Ctrl-C or SIGTERM now would leave the instance tracing and the
        # command's processes running: they wait until this is done (seconds at most).
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM,
                                                         signal.SIGHUP})
        try:
            if proc is not None and proc.poll() is None:
                end_tree(proc, STOP_GRACE_S, others)  # stopped early: no half-run command
            subreaper(False)
            _remove_instance(root, inst, group, probe_events)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _remove_instance(root: str, inst: str, group: str, probe_events: list[str]) -> None:
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
    remove_probes(root, group, probe_events)


def _run_sampled(proc: subprocess.Popen, sampler: VmpteSampler, sample_s: float,
                 show: str | None, started: float, others: set[int]) -> bool:
    """Wait for ``proc``, sampling VmPTE every ``sample_s`` seconds (from its start; its
    exit's sample is the caller's) and, with ``show`` (the instance), the
    events recorded so far on the terminal. Ctrl-C stops CMD and keeps what was
    recorded, as trace-cmd does: True when it did (a second one gives up)."""
    if sample_s:
        sampler.sample("start")
    next_sample = time.monotonic() + sample_s
    interrupted = False
    try:
        while True:
            wait = min(0.2, max(0.0, next_sample - time.monotonic())) if sample_s else 0.2
            try:
                proc.wait(timeout=wait)    # returns as soon as CMD exits
                break
            except subprocess.TimeoutExpired:
                pass
            if sample_s and time.monotonic() >= next_sample:
                sampler.sample()
                next_sample = time.monotonic() + sample_s
            if show is not None:
                print(f"\rptviz: recording {time.monotonic() - started:5.1f} s, "
                      f"{_entries(show):,} events", end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        _stop(proc, others)
    return interrupted


def _stop(proc: subprocess.Popen, others: set[int], grace_s: float = 5.0) -> None:
    """CMD stopped as Ctrl-C stops it: from a terminal it had the SIGINT already, so it
    is sent only to a CMD still running a second later (a second SIGINT would cut its
    own cleanup short); killed, with what it started, if still there after ``grace_s``
    (``others``: this process's children from before, not CMD's)."""
    try:
        proc.wait(timeout=1.0)
        return
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        end_tree(proc, 0.0, others)


_FORK = re.compile(r"sched_process_fork: .*\bpid=(\d+) child_comm=.* child_pid=(\d+)")


def _follow_fork(line: str, ours: set[int]) -> None:
    """Add the child of a ``sched_process_fork`` line whose parent is in ``ours``: the
    command's tasks are the processes the VmPTE samples saw and every task they forked,
    directly or not (brief children the samples missed too). Lines come in time order."""
    m = _FORK.search(line)
    if m and int(m[1]) in ours:
        ours.add(int(m[2]))


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
              "# on kernels with fprobe events (kprobes: the second list), the explicit",
              "# steps; define them before enabling, with pointers unhashed:"]
    lines += [f"echo '{p}' >> {TRACEFS}/dynamic_events" for p in pr.definitions("fprobe")]
    lines += [f"echo '{p}' >> {TRACEFS}/dynamic_events" for p in pr.definitions("kprobe")]
    lines += [f"echo 1 > {inst}/events/{pr.PROBE_GROUP}/enable",
              f"echo 0 > {inst}/options/hash-ptr",
              f"echo 'func == 0x<tlb_remove_table_rcu> || func == 0x<__tlb_remove_table_one_rcu>'"
              f" > {inst}/events/{pr.PROBE_GROUP}/call_rcu/filter   # from /proc/kallsyms"]
    return "\n".join(lines) + "\n"
