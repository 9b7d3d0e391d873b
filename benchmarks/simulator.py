"""Simulator throughput benchmark (issue 2): request-steps simulated per second, end to end.

    python benchmarks/simulator.py [--preset azure_conv_2023] [--rate-scale 8] [--workers 16]
                                   [--policy round_robin] [--cluster fixed] [--repeat 3]

Prints JSON: request_steps, steps, sim_s (simulation only, best of --repeat), request_steps_per_s,
load_s (trace loading), wall_s (load + one simulation + summary, the end-to-end figure).
Target (one core): >= 5e6 request-steps/s and wall_s < 10 s on azure_conv_2023, rate_scale 8, 16 workers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="azure_conv_2023")
    ap.add_argument("--rate-scale", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--policy", default="round_robin")
    ap.add_argument("--cluster", default="fixed", help="preset name in conf/cluster")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from framework.cli import CONF_DIR
    from framework.runner import prepare_workload, run_policy

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("config", overrides=[f"workload={args.preset}", f"cluster={args.cluster}",
                                           f"policy={args.policy}", f"workload.rate_scale={args.rate_scale}",
                                           f"cluster.workers={args.workers}"])
    t0 = time.perf_counter()
    train, w = prepare_workload(OmegaConf.to_object(cfg.workload), 0)
    load_s = time.perf_counter() - t0
    cluster = OmegaConf.to_object(cfg.cluster)
    best = None
    for i in range(max(1, args.repeat)):
        t1 = time.perf_counter()
        out = run_policy(cfg.policy, w, cluster, 0, training=train)
        run_s = time.perf_counter() - t1
        if i == 0:
            wall_s = load_s + run_s
        if best is None or out.result.wall_s < best.result.wall_s:
            best = out
    r = best.result
    print(json.dumps({
        "preset": args.preset, "rate_scale": args.rate_scale, "workers": args.workers,
        "policy": args.policy, "cluster": args.cluster, "requests": len(w), "steps": r.steps,
        "request_steps": r.request_steps, "sim_s": round(r.wall_s, 4),
        "request_steps_per_s": round(r.request_steps / r.wall_s),
        "load_s": round(load_s, 4), "wall_s": round(wall_s, 4),
        "avg_dp_imbalance": round(best.summary["avg_dp_imbalance"], 5),
        "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
        "pid_cpus": len(os.sched_getaffinity(0)),
    }, indent=2))


if __name__ == "__main__":
    main()
