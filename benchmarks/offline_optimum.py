"""Offline optimum benchmark (analysis.offline): exact sizes and certified intervals.

    python benchmarks/offline_optimum.py [--quick] [--start ROW] [--scan-limit 60] [--big-limit 600]

Instances: consecutive rows of the Azure 2023 conversation trace from row --start, at rate_scale 8 with
30 ms steps: arrival_step = floor((t - t_first) / 8 / 0.03), prompt = ContextTokens,
output = GeneratedTokens.
(a) exact: n = 10, 20, 30, 40, 45, 50, ... on 4 workers, each with --scan-limit seconds, until one is not
    proven optimal; reports the largest n proven and its time. Target: n >= 40 within 60 s.
(b) interval: --big-n (1000) requests on 16 workers within --big-limit (600) seconds: the width
    UB - LB relative to J and to the total compute G * sum_k max_g s_g(k). Target: width <= 2% of compute.
    "profile" splits the width over --profile-blocks equal step ranges (ramp-up, busy middle, ramp-down).
--quick: (a) up to n = 30 with 20 s each, (b) 300 requests with 30 s (about a minute in all).
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TRACE = "AzureLLMInferenceTrace_conv.csv"


def trace_path() -> Path:
    root = Path(__file__).resolve().parent.parent
    for d in (os.environ.get("BALANCEROUTE_DATA"), root.parent / "shared" / "data"):
        if d and (Path(d) / TRACE).is_file():
            return Path(d) / TRACE
    raise SystemExit(f"{TRACE} not found: set BALANCEROUTE_DATA to the folder holding it.")


def azure_instance(df, start: int, n: int, rate_scale: float = 8.0, step_s: float = 0.03):
    rows = df.iloc[start:start + n]
    if len(rows) < n:
        raise SystemExit(f"the trace has only {len(df)} rows; lower --start or n.")
    t = (rows["TIMESTAMP"] - rows["TIMESTAMP"].iloc[0]).dt.total_seconds().to_numpy()
    a = np.floor(t / rate_scale / step_s).astype(np.int64)
    return a, rows["ContextTokens"].to_numpy(np.int64), rows["GeneratedTokens"].to_numpy(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--start", type=int, default=0, help="first trace row of every instance")
    ap.add_argument("--scan-limit", type=float, default=None, help="seconds per exact solve (default 60)")
    ap.add_argument("--scan-workers", type=int, default=4)
    ap.add_argument("--big-n", type=int, default=None, help="requests of (b) (default 1000)")
    ap.add_argument("--big-workers", type=int, default=16)
    ap.add_argument("--big-limit", type=float, default=None, help="seconds for (b) (default 600)")
    ap.add_argument("--skip-scan", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--profile-blocks", type=int, default=8,
                    help="(b): split the width over this many equal step ranges (default 8)")
    ap.add_argument("--jobs", type=int, default=None, help="processes for the solver (default: up to 2)")
    args = ap.parse_args()
    scan_limit = args.scan_limit or (20.0 if args.quick else 60.0)
    big_n = args.big_n or (300 if args.quick else 1000)
    big_limit = args.big_limit or (30.0 if args.quick else 600.0)
    sizes = [10, 20, 30] if args.quick else [10, 20, 30, 40] + list(range(45, 205, 5))

    import pandas as pd

    from analysis.offline.cli import stdout_to_stderr
    from analysis.offline.solve import solve_offline
    from framework.cpus import default_jobs

    df = pd.read_csv(trace_path(), parse_dates=["TIMESTAMP"])
    out: dict = {"trace": TRACE, "start_row": args.start, "rate_scale": 8.0, "step_s": 0.03,
                 "quick": args.quick, "python": platform.python_version(), "jobs": args.jobs or default_jobs(),
                 "cpus": os.cpu_count()}
    # compile the numba kernels outside the timings
    with stdout_to_stderr():
        solve_offline(*azure_instance(df, args.start, 8), 2, time_limit=5)
    if not args.skip_scan:
        scan = []
        best = None
        for n in sizes:
            a, p, o = azure_instance(df, args.start, n)
            t0 = time.perf_counter()
            with stdout_to_stderr():
                r = solve_offline(a, p, o, args.scan_workers, time_limit=scan_limit, jobs=args.jobs)
            wall = time.perf_counter() - t0
            row = {"n": n, "status": r.status, "wall_s": round(wall, 2), "objective": r.objective,
                   "lower_bound": r.lower_bound, "gap_rel": r.gap_rel, "parts": r.parts,
                   "milp_rounds": r.details.get("milp_rounds")}
            scan.append(row)
            print(json.dumps(row), file=sys.stderr)
            if r.status != "optimal":
                break
            best = row
        out["exact"] = {"workers": args.scan_workers, "time_limit_s": scan_limit, "scan": scan,
                        "largest_proven_n": best["n"] if best else None,
                        "largest_proven_wall_s": best["wall_s"] if best else None}
    if not args.skip_big:
        a, p, o = azure_instance(df, args.start, big_n)
        t0 = time.perf_counter()
        with stdout_to_stderr():
            r = solve_offline(a, p, o, args.big_workers, time_limit=big_limit, jobs=args.jobs)
        wall = time.perf_counter() - t0
        out["interval"] = {
            "requests": big_n, "workers": args.big_workers, "time_limit_s": big_limit,
            "wall_s": round(wall, 1), "objective": r.objective, "lower_bound": r.lower_bound,
            "step_bound_alone": r.details.get("step_bound"), "status": r.status,
            "width": r.gap, "width_rel_J": r.gap_rel, "width_rel_compute": r.gap_compute,
            "total_compute": r.total_compute, "parts": r.parts, "windows": r.details.get("windows"),
            "search_s": r.details.get("search_s"),
            "target_width_rel_compute": 0.02,
            "profile": r.bounds.blocks(args.profile_blocks),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
