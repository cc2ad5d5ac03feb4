"""Run any program and write its VmPTE into the trace every few ms, for checking ptviz
against the kernel on programs that do not write markers themselves.

    ptviz record -- python3 traces/workloads/vmpte_sampler.py -- gcc -O2 -c x.c
    traces/capture_plain.sh -- python3 traces/workloads/vmpte_sampler.py -- sort big.txt

Each sample is a trace-marker line ``SAMPLE pid=<program's pid> VmPTE=<kB>``, written
by this process (so its mm is not the program's: a reader maps the pid itself, as
``tests/test_real_programs.py`` does). ``SAMPLE_S`` sets the period (default 0.02 s).
Only the program itself is sampled, not the children it starts.
"""
import os
import subprocess
import sys
import time

marker = open(os.environ.get("PTVIZ_TRACE_MARKER", "/sys/kernel/tracing/trace_marker"), "w")
cmd = sys.argv[sys.argv.index("--") + 1:]
period = float(os.environ.get("SAMPLE_S", "0.02"))
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def vmpte():
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


while p.poll() is None:
    kb = vmpte()
    if kb is not None:
        marker.write(f"SAMPLE pid={p.pid} VmPTE={kb}\n")
        marker.flush()
    time.sleep(period)
sys.exit(p.returncode)
