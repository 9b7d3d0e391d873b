"""Wall time of one 8-run sweep, sequential (Hydra's basic launcher) against joblib on 2 processes.

    python benchmarks/sweep_parallel.py [--requests 1500] [--jobs 2]

The grid: br0 and brh on a backlogged synthetic pool (200 req/s, 8 slots per worker), 4 seeds each: compute-bound runs
of a few seconds, so the figure measures the launcher, not Python's start-up. Both sweeps run the same grid through ``balanceroute --multirun`` into fresh folders (nothing is
reused); prints one JSON object with both wall times, their ratio and the load average around them,
since on a shared machine other jobs take CPU from both.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.sweep import balanceroute_cmd  # noqa: E402


def timed_sweep(sweep_dir: Path, launcher: list[str], requests: int) -> float:
    cmd = [*balanceroute_cmd(), "--multirun", f"hydra.sweep.dir={sweep_dir}", "hydra/sweeper=resume",
           "policy=br0,brh", "seed=0,1,2,3", f"workload.num_requests={requests}", "workload.rate_rps=200", "cluster.max_running=8",
           "progress=false", *launcher]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    dt = time.perf_counter() - t0
    n = len(list(sweep_dir.rglob("summary.json")))
    if n != 8:
        raise SystemExit(f"expected 8 runs in {sweep_dir}, found {n}")
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        # warm numba's on-disk cache first, so neither form pays the compilation
        subprocess.run([*balanceroute_cmd(), "policy=brh", "workload.num_requests=50", "progress=false",
                        f"hydra.run.dir={tmp}/warm"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        load0 = os.getloadavg()
        seq = timed_sweep(Path(tmp) / "seq", ["hydra/launcher=basic"], a.requests)
        par = timed_sweep(Path(tmp) / "par", ["hydra/launcher=joblib_local", f"hydra.launcher.n_jobs={a.jobs}"],
                          a.requests)
        load1 = os.getloadavg()
    print(json.dumps({"runs": 8, "requests_per_run": a.requests, "jobs": a.jobs, "sequential_s": round(seq, 2),
                      "joblib_s": round(par, 2), "ratio": round(par / seq, 3),
                      "loadavg_1min_before_after": [round(load0[0], 2), round(load1[0], 2)],
                      "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
