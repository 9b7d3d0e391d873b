"""Per-step worker loads over time: the max / mean / min band of JSQ, BR-0 and BR-H.

    python -m paper_figures.imbalance_timeline [--quick] [--out DIR]

The band's height is what the decode barrier wastes: every worker waits for the most loaded one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import loads

NAME = "imbalance_timeline"
QUICK = ["workload.max_requests=500"]
BINS = 300


def band(L: np.ndarray, step_s: float, bins: int = BINS) -> pd.DataFrame:
    """Loads binned over time: max of the per-step max, mean of the mean, min of the min."""
    K = len(L)
    edges = np.linspace(0, K, min(bins, K) + 1).astype(int)
    mx, mn, me = L.max(axis=1), L.min(axis=1), L.mean(axis=1)
    rows = [{"t_s": 0.5 * (a + b) * step_s, "max_tokens": mx[a:b].max(), "mean_tokens": me[a:b].mean(),
             "min_tokens": mn[a:b].min(), "imbalance_tokens": (L.shape[1] * mx[a:b] - L[a:b].sum(axis=1)).mean()}
            for a, b in zip(edges[:-1], edges[1:]) if b > a]
    return pd.DataFrame(rows)


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    order = [p for p in ("jsq", "br0", "brh_empirical", "brh_survival") if p in set(df["ov.variant"])]
    parts = []
    for p in order:
        r = df[df["ov.variant"] == p].iloc[0]
        b = band(loads(a.sweep_dir, r["run_dir"]), 0.030)
        b.insert(0, "policy", p)
        parts.append(b)
    tab = pd.concat(parts, ignore_index=True)
    fig, ax = sty.figure(len(order), width=3.3 * len(order), height=3.2, sharey=True)
    for i, p in enumerate(order):
        t = tab[tab["policy"] == p]
        c = sty.colour(p, i)
        axi = ax[0, i]
        axi.fill_between(t["t_s"], t["min_tokens"] / 1e3, t["max_tokens"] / 1e3, color=c, alpha=0.3,
                         lw=0, label="min to max worker")
        axi.plot(t["t_s"], t["mean_tokens"] / 1e3, color=c, lw=1.2, label="mean worker")
        mean_imb = float(df[df["ov.variant"] == p]["imbalance_tokens"].iloc[0]) / len(loads(a.sweep_dir, df[df["ov.variant"] == p]["run_dir"].iloc[0]))
        axi.set_title(f"{p}: mean imbalance {mean_imb / 1e3:,.0f}k tokens")
        axi.set_xlabel("simulated time (s)")
        if i == 0:
            axi.set_ylabel("worker load (thousand KV tokens)")
            axi.legend(loc="upper left", frameon=False)
    G = int(df["workers"].iloc[0])
    n = int(df["requests_total"].iloc[0])
    sty.caption(fig, f"Band: the least and most loaded of the G = {G} workers at each step (binned into {BINS} "
                f"intervals: min of the minima, max of the maxima); line: the mean. Workload azure_conv_2023 "
                f"(x8 rate, {n} requests), preset fixed (30 ms steps).", width=130)
    return fig, tab


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
