#!/usr/bin/env bash
# Record the real sample traces on this machine (root, tracefs). Each run of the
# workload writes its VmPTE into the trace marker at known points; tests check
# ptviz's per-process page-table bytes against those numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
PTVIZ=${PTVIZ:-ptviz}
K=$(uname -r | cut -d. -f1,2)
VMPTE_MB=32 $PTVIZ record -o "traces/real-$K-x86_64-vmpte-steps.msgpack" -- \
    python3 traces/workloads/vmpte_steps.py --reader --fork
