"""Write the simulated sample traces in this folder (deterministic: same bytes each run).

    python traces/make_sim_samples.py [OUTDIR]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ptviz.cli import main  # noqa: E402

SAMPLES = {
    "sim-coverletter-6.13-x86_64.msgpack":
        ["--kernel", "6.13", "--workload", "coverletter", "--param", "size=32M"],
    "sim-coverletter-6.14-x86_64.msgpack":
        ["--kernel", "6.14", "--workload", "coverletter", "--param", "size=32M"],
    "sim-walkers-semi-rcu-uaf.msgpack":
        ["--kernel", "6.14", "--workload", "walkers", "--set", "table_free=semi_rcu",
         "--param", "walker=pte_offset_map", "--param", "size=8M"],
    "sim-walkers-rcu-7.0-arm64.msgpack":
        ["--arch", "arm64", "--kernel", "7.0", "--workload", "walkers", "--param", "size=8M"],
}


def run(outdir: str) -> None:
    for name, args in SAMPLES.items():
        code = main(["simulate", *args, "--cpus", "4", "--seed", "1", "--force",
                     "-o", os.path.join(outdir, name)])
        if code:
            raise SystemExit(code)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
