"""The paper's G = 8 table in the simulator: imbalance, TPOT p95 and throughput, ours beside the paper's.

    python -m paper_figures.paper_table [--quick] [--out DIR]

Absolute numbers differ (our workload is ShareGPT lengths on a simulated decode preset, the paper's a
production trace and Azure 2024 on 32 NPUs), so the panels compare each policy's ratio to JSQ.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import metric, setting, tpot_p95_ms
from paper_figures.paper_numbers import TABLE_G8

NAME = "paper_table"
QUICK = ["workload.num_requests=250", "seed=0",
         "variant=random,round_robin,jsq,jsq_pool,br0,brh_oracle,brh_survival,brh_exact_match"]
ORDER = ["random", "round_robin", "p2c", "jsq", "jsq_pool", "br0", "brh_oracle", "brh_survival", "brh_empirical",
         "brh_exact_match"]
LABELS = {"random": "Random", "round_robin": "Round-Robin", "p2c": "P2C", "jsq": "JSQ", "jsq_pool": "JSQ (pool)",
          "br0": "BR-0", "brh_oracle": "BR-H oracle", "brh_survival": "BR-H survival",
          "brh_empirical": "BR-H empirical", "brh_exact_match": "BR-H exact_match"}
METRICS = [("imbalance_tokens_mean", "imbalance (G·max − sum)", 0), ("tpot_p95_ms", "TPOT p95", 1),
           ("throughput_tokens_per_s", "throughput", 2)]


def table(df: pd.DataFrame, sweep_dir) -> pd.DataFrame:
    runs = pd.DataFrame({"policy": df["ov.variant"], "imbalance_tokens_mean": metric(df, "imbalance_tokens_mean"),
                         "max_min_tokens_mean": metric(df, "max_min_tokens_mean"),
                         "tpot_p95_ms": [tpot_p95_ms(sweep_dir, r) for r in df["run_dir"]],
                         "throughput_tokens_per_s": df["throughput_tokens_per_s"]})
    t = runs.groupby("policy").mean().reindex([p for p in ORDER if p in set(runs["policy"])])
    t["runs"] = runs.groupby("policy").size()
    jsq = t.loc["jsq"]
    for m, _, j in METRICS:
        t[f"{m}_ratio_to_jsq"] = t[m] / jsq[m]
        for trace, nums in TABLE_G8.items():
            t[f"paper_{trace}_{m}"] = [nums[p][j] if p in nums else np.nan for p in t.index]
            t[f"paper_{trace}_{m}_ratio_to_jsq"] = t[f"paper_{trace}_{m}"] / nums["jsq"][j]
    return t.reset_index()


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    t = table(df, a.sweep_dir)
    fig, ax = sty.figure(3, width=10.5, height=3.7, sharey=False)
    y = np.arange(len(t))
    h = 0.38
    for j, (m, title, _) in enumerate(METRICS):
        axj = ax[0, j]
        ours = t[f"{m}_ratio_to_jsq"]
        paper = t[f"paper_azure_2024_{m}_ratio_to_jsq"]
        prod = t[f"paper_production_{m}_ratio_to_jsq"]
        axj.barh(y - h / 2, ours, h, color=[sty.colour(p, i) for i, p in enumerate(t["policy"])],
                 label=sty.OURS_LABEL)
        axj.barh(y + h / 2, paper, h, color="white", edgecolor="#555555", hatch="////", lw=0.6,
                 label=f"{sty.PAPER_LABEL} (Azure 2024)")
        axj.plot(prod, y + h / 2, "kx", ms=5, label=f"{sty.PAPER_LABEL} (production)")
        axj.axvline(1.0, color="#333333", lw=0.8)
        axj.set_yticks(y, [LABELS.get(p, p) for p in t["policy"]] if j == 0 else [])
        axj.invert_yaxis()
        axj.set_xlabel(f"{title}, ratio to JSQ")
        axj.set_title({0: "Imbalance (lower is better)", 1: "TPOT p95 (lower is better)",
                       2: "Throughput (higher is better)"}[j])
        if j > 0:  # ratios near 1: zoom in
            vals = np.r_[ours, paper, prod]
            vals = vals[np.isfinite(vals)]
            axj.set_xlim(min(0.95, vals.min() - 0.03), max(1.05, vals.max() + 0.03))
        axj.xaxis.set_major_locator(MaxNLocator(6))
    h_ = [Patch(facecolor="#777777", label=sty.OURS_LABEL),
          Patch(facecolor="white", edgecolor="#555555", hatch="////", label=f"{sty.PAPER_LABEL} (Azure 2024)"),
          Line2D([], [], color="k", marker="x", ls="none", label=f"{sty.PAPER_LABEL} (production)")]
    fig.legend(handles=h_, loc="outside upper center", ncol=3, frameon=False)
    seeds = int(t["runs"].max())
    st = setting(a.sweep_dir, df)
    sty.caption(fig, f"Each bar: the policy's value divided by JSQ's (dispatch form); JSQ (pool): the same rule "
                f"placing FCFS from the central pool. This simulator: ShareGPT lengths, {st.requests} requests at "
                f"{st.rate_rps:g} req/s (the pool backlogs), preset {st.cluster} (G = {st.workers}), mean of {seeds} "
                f"seed(s); imbalance is the mean over steps of G·max − sum of KV tokens. Paper: the G = 8 table "
                f"of arXiv 2605.06113 (values in {NAME}.csv).", width=150)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
