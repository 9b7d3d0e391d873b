"""Paired comparison of policies over many request samples, in the backlog or under arrivals.

    python benchmarks/paired_samples.py --samples 40 --jobs 2                     # the B4 backlog
    python benchmarks/paired_samples.py --dataset conv --policies "br0,brh[survival],brh[horizon=16]"
    python benchmarks/paired_samples.py --regime arrivals --samples 20 --jobs 2   # the paper_table setting
    python benchmarks/paired_samples.py --regime arrivals --rate 1.7 --policies "jsq,br0,brh[oracle]"

One sample says little: br0's own imbalance ranges over 5k-13k tokens between backlog samples of the
same trace. This runs every policy on the same samples (seeds 1..N) and reports, against a baseline,
the paired difference of the imbalance: its mean with a 95% t interval, the samples won, and a Wilcoxon
signed-rank p-value, so "below", "tied" and "above" are statements with a measured spread.

- ``backlog``: the B4 check's setting (benchmarks/backlog_regime.py: 1500 requests at t = 0, G = 8,
  B = 32); metric the mean G*max - sum to the last admission; training split seed 99.
- ``arrivals``: analysis.paper_table's full setting (ShareGPT outputs >= 500, 3000 requests, Poisson
  1.8 req/s or --rate, ascend910c_dsv3_decode), workload seed = sample seed; metric the mean
  G*max - sum.

Labels are NAME or NAME[key=value,...]; a bare item in brackets is the classifier (brh[oracle]).
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.backlog_regime import FILES, cluster, parse_value, sample  # noqa: E402

DEFAULT_POLICIES = "br0,brh[survival],brh[none],brh[oracle],brh[oracle,refill=pool],jsq[mode=pool]"
TRAIN_SEED = 99
REGIMES = ("backlog", "arrivals")


def policy_dict(label: str) -> dict:
    """``brh[oracle,horizon=16]`` -> {"name": "brh", "classifier": "oracle", "horizon": 16}."""
    from analysis.compare import label_items
    from framework.errors import ConfigError

    try:
        name, items = label_items(label)
    except ConfigError as e:
        raise SystemExit(f"paired_samples: {e}") from None
    return {"name": name, **{key: parse_value(value) for key, value in items}}


def run_one(regime: str, dataset: str, seed: int, label: str, rate_rps: float | None = None) -> dict:
    """One policy on one sample of one regime (``rate_rps``: arrivals only; None = paper_table's 1.8)."""
    from framework.runner import run_policy

    if regime == "backlog":
        out = run_policy(policy_dict(label), sample(dataset, 1500, seed), cluster(), 0,
                         training=sample(dataset, 1500, TRAIN_SEED))
        key = "imbalance_tokens_mean_to_last_admit"
    else:
        from analysis.paper_table import ascend_cluster, workload_config
        from framework.runner import prepare_workload

        train, sim = prepare_workload(workload_config(False, rate_rps)[0], seed)
        out = run_policy(policy_dict(label), sim, ascend_cluster(), seed, training=train)
        key = "imbalance_tokens_mean"
    s = out.summary
    return {"dataset": dataset, "seed": seed, "policy": label, "imbalance": s[key],
            "tok_s": s["throughput_tokens_per_s"], "ttft_p99_s": s["ttft_p99_s"]}


def paired(rows: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per (dataset, policy): means, and the paired imbalance difference against the baseline."""
    wide = rows.pivot_table(index=["dataset", "seed"], columns="policy", values="imbalance")
    means = rows.groupby(["dataset", "policy"])[["tok_s", "ttft_p99_s"]].mean()
    out = []
    for dataset, w in wide.groupby(level="dataset"):
        base = w[baseline].to_numpy()
        for pol in w.columns:
            x = w[pol].to_numpy()
            d = (x - base) / base.mean() * 100
            n = len(d)
            half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
            p = stats.wilcoxon(x, base).pvalue if pol != baseline and n > 1 and np.any(x != base) else float("nan")
            out.append({"dataset": dataset, "policy": pol, "samples": n, "mean": round(x.mean()),
                        "median": round(float(np.median(x))), f"vs_{baseline}_pct": round(d.mean(), 1),
                        "ci95_pct": f"[{d.mean() - half:+.1f}, {d.mean() + half:+.1f}]",
                        "wins": f"{int((x < base).sum())}/{n}", "wilcoxon_p": round(p, 4),
                        "tok_s": round(means.loc[(dataset, pol), "tok_s"], 1),
                        "ttft_p99_s": round(means.loc[(dataset, pol), "ttft_p99_s"], 2)})
    return pd.DataFrame(out).sort_values(["dataset", "mean"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regime", default="backlog", choices=REGIMES)
    ap.add_argument("--dataset", nargs="*", default=None, choices=sorted(FILES),
                    help="backlog only (default: both); arrivals runs paper_table's ShareGPT >= 500")
    ap.add_argument("--samples", type=int, default=40, help="request samples, seeds 1..N")
    ap.add_argument("--rate", type=float, default=None, help="arrivals only: req/s (default paper_table's 1.8)")
    ap.add_argument("--policies", default=DEFAULT_POLICIES)
    ap.add_argument("--baseline", default="br0")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--csv", type=Path, help="also write every run's row here (atomically)")
    a = ap.parse_args(argv)
    from analysis.compare import policy_labels
    from analysis.sweep import to_markdown
    from framework.errors import ConfigError

    try:  # names and keys checked against the registry before any run starts
        labels = policy_labels(a.policies)
    except ConfigError as e:
        raise SystemExit(f"paired_samples: {e}") from None
    if a.baseline not in labels:
        labels.insert(0, a.baseline)
    if a.regime == "backlog" and TRAIN_SEED <= a.samples:
        raise SystemExit(f"paired_samples: --samples must be below {TRAIN_SEED} (that seed is the training split)")
    if a.regime == "arrivals" and a.dataset:
        raise SystemExit("paired_samples: --dataset applies to --regime backlog only")
    if a.regime == "backlog" and a.rate is not None:
        raise SystemExit("paired_samples: --rate applies to --regime arrivals only (the backlog has all requests at t = 0)")
    datasets = (a.dataset or sorted(FILES)) if a.regime == "backlog" else ["sharegpt_ge500"]
    jobs = [(a.regime, d, s, p, a.rate) for d in datasets for s in range(1, a.samples + 1) for p in labels]
    rows = []
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        for i, r in enumerate(ex.map(run_one, *zip(*jobs)), 1):
            rows.append(r)
            if i % 20 == 0 or i == len(jobs):
                print(f"paired_samples: {i}/{len(jobs)} runs", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    if a.csv:
        from framework.results import write_atomic

        write_atomic(a.csv, lambda tmp: df.to_csv(tmp, index=False))
    print(to_markdown(paired(df, a.baseline)))


if __name__ == "__main__":
    main()
