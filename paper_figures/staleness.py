"""Routers reading stale worker counts: imbalance against the age of the view (0 to 500 ms).

    python -m paper_figures.staleness [--quick] [--out DIR]

Every router reads the engines' counters through the framework's stale view (policy.stale_s,
framework.view.StaleView): refreshed every 0/20/100/500 ms of simulated time, plus its own placements
since. vLLM publishes engine counts every 100 ms and SGLang reads them at most every 20 ms (their
defaults); least_kv and br0 get the same view, so all four are real runs at every age.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.sweep import run_sweep
from paper_figures import _style as sty

NAME = "staleness"
QUICK = ["workload.max_requests=600"]
ORDER = ["vllm", "sglang_total_tokens", "least_kv", "br0"]
DEFAULT_MS = {"vllm": 100, "sglang_total_tokens": 20}  # the source systems' own intervals


def table(df: pd.DataFrame) -> pd.DataFrame:
    t = pd.DataFrame({
        "policy": df["ov.variant"].astype(str),
        "stale_ms": (df["ov.policy.stale_s"].astype(float) * 1000).round().astype(int),
        "imbalance_tokens_mean": df["imbalance_tokens"] / df["steps"].clip(lower=1),
        "avg_dp_imbalance": df["avg_dp_imbalance"], "ttft_p99_s": df["ttft_p99_s"],
    })
    t["policy_default_ms"] = t["policy"].map(DEFAULT_MS)
    rank = {p: i for i, p in enumerate(ORDER)}
    return t.sort_values(["policy", "stale_ms"], key=lambda c: c.map(rank) if c.name == "policy" else c) \
        .reset_index(drop=True)


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    tab = table(df)
    fig, ax = sty.figure(2, width=8.8, height=3.6)
    ages = sorted(tab["stale_ms"].unique())
    xs = np.arange(len(ages))
    styles = ["-", "--", "-.", ":"]
    for j, (col, lab, scale) in enumerate([("imbalance_tokens_mean", "mean G·max − sum per step (k tokens)", 1e3),
                                           ("avg_dp_imbalance", "avg DP imbalance (max − mean)/max", 1.0)]):
        axj = ax[0, j]
        for i, (p, t) in enumerate(tab.groupby("policy", sort=False)):
            t = t.set_index("stale_ms").reindex(ages)
            c = sty.colour(p, i)
            axj.plot(xs, t[col] / scale, marker=sty.MARKERS[i], color=c, ls=styles[i % 4], label=p)
            if p in DEFAULT_MS and DEFAULT_MS[p] in ages:  # the system's own interval: a ring
                k = ages.index(DEFAULT_MS[p])
                axj.plot(xs[k], t[col].iloc[k] / scale, marker="o", ms=13, mfc="none", mec=c, mew=1.2, ls="none")
        axj.set_xticks(xs, [f"{int(x)}" for x in ages])
        axj.set_xlabel("age bound of the router's view of worker counts (ms)")
        axj.set_ylabel(lab)
        axj.set_ylim(bottom=0)
    ax[0, 0].set_title("Imbalance in KV tokens")
    ax[0, 1].set_title("Relative imbalance")
    ax[0, 1].legend(loc="lower right", frameon=True, framealpha=0.9)
    n = int(df["requests_total"].iloc[0])
    sty.caption(fig, "Each router decides on worker counts refreshed every 0/20/100/500 ms of simulated time plus "
                "its own placements since (policy.stale_s); a ring marks vLLM's and SGLang's own interval "
                f"(100 and 20 ms). Workload azure_conv_2023 (x16 rate, {n} requests), "
                f"G = {int(df['workers'].iloc[0])}, preset fixed (30 ms steps).", width=140)
    return fig, tab


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
