"""How close the offline optimum's search gets to a known good assignment at scale (analysis.offline).

    BALANCEROUTE_DATA=../shared/data python benchmarks/offline_search_quality.py [--time-limit 120]

Why: on 1000 Azure requests x 16 workers the certified interval stays wide, and the question is which
side is loose. Planted instances answer it for the search: take every G-th of the first --rows trace
rows (rate_scale 8, 30 ms steps, as in benchmarks/offline_optimum.py) and give each of G workers its
own copy, each copy's starts shifted by a random 0 .. jitter-1 steps. The planted assignment (copy r on
worker r) is a known good one: with jitter 0 every worker carries the same loads, so J = 0 is the
optimum. The search (search_incumbent, one process) starts from its own greedy, not from the planted
assignment. Prints one JSON object: per jitter, J of the per-step bound, of the planted assignment and
of the search.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from offline_optimum import azure_instance, trace_path  # noqa: E402


def planted(a, p, o, G: int, jitter: int, seed: int):
    """G copies of (a, p, o), copy r's starts shifted by 0 .. jitter-1; returns the copies' worker too."""
    rng = np.random.default_rng(seed)
    A = np.concatenate([a + (rng.integers(0, jitter, len(a)) if jitter > 1 else 0) for _ in range(G)])
    return A, np.tile(p, G), np.tile(o, G), np.repeat(np.arange(G), len(a))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--jitter", type=int, nargs="+", default=[0, 3, 20])
    ap.add_argument("--time-limit", type=float, default=120.0, help="search seconds per instance")
    args = ap.parse_args()

    import pandas as pd

    from analysis.offline import kernels as ks
    from analysis.objective import objective, total_load_sum
    from analysis.offline.search import search_incumbent

    df = pd.read_csv(trace_path(), parse_dates=["TIMESTAMP"])
    a, p, o = azure_instance(df, 0, args.rows)
    G = args.workers
    a, p, o = a[::G], p[::G], o[::G]
    out = {"rows": args.rows, "workers": G, "requests": int(len(a) * G), "time_limit_s": args.time_limit,
           "instances": []}
    for jit in args.jitter:
        A, P, O, w_plant = planted(a, p, o, G, jit, seed=jit)
        A = A - A.min()
        K = int((A + O).max())
        step_j = G * int(ks.step_bounds(A, P, O, G, K).sum()) - total_load_sum(P, O)
        t0 = time.perf_counter()
        w, _ = search_incumbent(A, P, O, G, args.time_limit)
        row = {"jitter": jit, "step_bound_J": step_j, "planted_J": objective(A, P, O, w_plant, G),
               "search_J": objective(A, P, O, w, G), "search_s": round(time.perf_counter() - t0, 1)}
        out["instances"].append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
