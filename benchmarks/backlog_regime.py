"""The B4 check's backlogged regime in-process: mean imbalance G*max - sum to the last admission.

    python benchmarks/backlog_regime.py --dataset sharegpt --set classifier=survival horizon=16 ...
    python benchmarks/backlog_regime.py --dataset conv --policy br0

1500 requests sampled (seed 1, without replacement, rows with both lengths > 0) from a shared trace,
all at t = 0; G = 8, B = 32, c0 = 3.3875 ms, c_kv = 1.005e-7 s/token, no prefill budget (the check's
setting, ../shared/checks/B4-backlogged-regime). Learned classifiers get a training split of another
1500 requests (seed 99). Prints one JSON line per run: the options, imbalance to the last admission,
the mean over the run, throughput and the run's wall time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from framework.cluster import ClusterConfig  # noqa: E402
from framework.runner import run_policy  # noqa: E402
from framework.workload import Workload  # noqa: E402
from framework.workloads import presets  # noqa: E402

FILES = {"sharegpt": ("sharegpt_8k_lengths_llama2_tokenizer.csv", "num_prefill_tokens", "num_decode_tokens"),
         "conv": ("AzureLLMInferenceTrace_conv.csv", "ContextTokens", "GeneratedTokens")}


def sample(dataset: str, n: int, seed: int) -> Workload:
    """The check's sample (evaluate.py's rule): n rows without replacement, all at t = 0."""
    import pandas as pd

    f, cs, co = FILES[dataset]
    path = next((d / f for d in presets.data_dirs() if (d / f).is_file()), ROOT.parent / "shared" / "data" / f)
    d = pd.read_csv(path)
    s, o = d[cs].to_numpy(np.int64), d[co].to_numpy(np.int64)
    keep = (s > 0) & (o > 0)
    s, o = s[keep], o[keep]
    idx = np.random.default_rng(seed).choice(len(s), size=n, replace=n > len(s))
    return Workload(f"{dataset}[seed {seed}]", np.zeros(n), s[idx], o[idx])


def cluster() -> ClusterConfig:
    c = ClusterConfig(workers=8, max_running=32, kv_capacity_tokens=100_000_000, prefill_chunk_tokens=0)
    c.cost.c0, c.cost.c_kv = 0.0033875, 1.0052490234375e-07
    return c


def parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(v, v)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="sharegpt", choices=sorted(FILES))
    ap.add_argument("--policy", default="brh")
    ap.add_argument("--seed", type=int, default=1, help="request sample")
    ap.add_argument("--set", nargs="*", default=[], help="policy options KEY=VALUE")
    a = ap.parse_args(argv)
    wl, train = sample(a.dataset, 1500, a.seed), sample(a.dataset, 1500, 99)
    pol = {"name": a.policy, **{k: parse_value(v) for k, v in (s.split("=", 1) for s in a.set)}}
    t0 = time.perf_counter()
    out = run_policy(pol, wl, cluster(), 0, training=train)
    s = out.summary
    print(json.dumps({"dataset": a.dataset, "seed": a.seed, **pol,
                      "imb_to_last_admit": round(s["imbalance_tokens_mean_to_last_admit"]),
                      "imb_mean": round(s["imbalance_tokens_mean"]),
                      "tok_s": round(s["throughput_tokens_per_s"]), "wall_s": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
