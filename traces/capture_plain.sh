#!/usr/bin/env bash
# Capture CMD the way a user with their own tracefs instance would, without ptviz:
# the stock event set of SPEC §6 (page alloc/free, user faults, the madvise/munmap/mmap
# syscalls, TLB flushes, IPIs, csd, sched fork/exit/switch) and NO record-tgid, then
# the instance's text on stdout. Keeps tracing half a second after CMD (RCU frees).
#   traces/capture_plain.sh -- CMD ARGS... > trace.txt
# Root and tracefs needed; the instance is private (instances/plain-PID) and removed
# on every way out.
set -euo pipefail
[ "${1:-}" = "--" ] && shift
T=/sys/kernel/tracing
[ -d "$T/instances" ] || mount -t tracefs nodev "$T"
I="$T/instances/plain-$$"
mkdir "$I"
cleanup() {
  echo 0 > "$I/tracing_on" 2>/dev/null || true
  echo 0 > "$I/events/enable" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$I" 2>/dev/null && break; sleep 0.1; done
}
trap cleanup EXIT
echo 65536 > "$I/buffer_size_kb"
for e in kmem/mm_page_alloc kmem/mm_page_free kmem/mm_page_free_batched \
         exceptions/page_fault_user tlb/tlb_flush ipi csd \
         syscalls/sys_enter_madvise syscalls/sys_exit_madvise \
         syscalls/sys_enter_munmap syscalls/sys_exit_munmap \
         syscalls/sys_enter_mmap syscalls/sys_exit_mmap \
         sched/sched_process_fork sched/sched_process_exit sched/sched_switch; do
  echo 1 > "$I/events/$e/enable"
done
echo 1 > "$I/tracing_on"
PTVIZ_TRACE_MARKER="$I/trace_marker" "$@"
sleep 0.5
echo 0 > "$I/tracing_on"
cat "$I/trace"
