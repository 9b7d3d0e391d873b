"""Scaling with the number of DP workers: throughput and imbalance against G = 4 ... 144.

    python -m paper_figures.scaling [--quick] [--out DIR]

The arrival rate grows with G (conf/scale/gN.yaml), so every G sees the same load per worker. Values
are drawn as ratios to JSQ at the same G (the paper's best baseline), beside the paper's ratios at
G = 4, 8, 16; absolute values are in the CSV.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import metric, run_config
from paper_figures.paper_numbers import SCALING

NAME = "scaling"
QUICK = ["scale=g4,g16,g64", "variant=jsq,br0", "workload.num_requests=200"]


def table(df: pd.DataFrame) -> pd.DataFrame:
    t = pd.DataFrame({"policy": df["ov.variant"], "G": df["workers"],
                      "throughput_tokens_per_s": df["throughput_tokens_per_s"],
                      "imbalance_tokens_mean": metric(df, "imbalance_tokens_mean"),
                      "requests": df["requests_total"]})
    t = t.groupby(["policy", "G"], as_index=False).mean()
    base = t[t["policy"] == "jsq"].set_index("G")
    for m in ("throughput_tokens_per_s", "imbalance_tokens_mean"):
        t[f"{m}_ratio_to_jsq"] = t[m] / t["G"].map(base[m])
    paper = [{"policy": f"paper {p}", "G": G, "throughput_tokens_per_s": v[j],
              "throughput_tokens_per_s_ratio_to_jsq": v[j] / v[0]}
             for G, v in SCALING.items() for j, p in enumerate(("best baseline", "br0", "brh_oracle"))]
    return pd.concat([t, pd.DataFrame(paper)], ignore_index=True)


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    t = table(df)
    ours = t[~t["policy"].str.startswith("paper")]
    fig, ax = sty.figure(2, width=9.0, height=3.6)
    for i, (p, s) in enumerate(ours.groupby("policy", sort=False)):
        c, ls = sty.colour(p, i), "--" if p.endswith("_pool") else "-"
        ax[0, 0].plot(s["G"], s["throughput_tokens_per_s_ratio_to_jsq"], marker=sty.MARKERS[i], color=c, ls=ls,
                      label=f"{p} ({sty.OURS_LABEL})")
        ax[0, 1].plot(s["G"], s["imbalance_tokens_mean_ratio_to_jsq"], marker=sty.MARKERS[i], color=c, ls=ls, label=p)
    for p, mk in (("br0", "o"), ("brh_oracle", "D")):
        s = t[t["policy"] == f"paper {p}"]
        ax[0, 0].plot(s["G"], s["throughput_tokens_per_s_ratio_to_jsq"], mk, mfc="none", color=sty.colour(p),
                      ms=8, mew=1.5, ls="none", label=f"{p} ({sty.PAPER_LABEL})")
    Gs = sorted(ours["G"].unique())
    for axj in ax[0]:
        axj.set_xscale("log")
        axj.xaxis.set_major_locator(FixedLocator(Gs))
        axj.xaxis.set_major_formatter(ScalarFormatter())
        axj.xaxis.set_minor_formatter(NullFormatter())
        axj.axhline(1.0, color="#333333", lw=0.8)
        axj.set_xlabel("DP workers G")
    ax[0, 0].set_ylabel("throughput, ratio to JSQ at the same G")
    ax[0, 0].set_title("Throughput (higher is better)")
    ax[0, 1].set_ylabel("mean imbalance G·max − sum, ratio to JSQ")
    ax[0, 1].set_title("Imbalance (lower is better)")
    ax[0, 1].set_ylim(bottom=0)
    h, lab = ax[0, 0].get_legend_handles_labels()
    fig.legend(h, lab, loc="outside right center", frameon=False, fontsize=7.5)
    r0 = df.iloc[0]
    rate, G8 = float(run_config(a.sweep_dir, r0["run_dir"]).workload.rate_rps), float(r0["workers"])
    sty.caption(fig, f"Arrival rate {rate / G8:g} req/s per worker and 120 requests per worker (fewer in --quick), so the "
                f"load per worker is the same at every G. Workload ShareGPT lengths, preset {df['cluster'].iloc[0]}. "
                f"Paper: production trace, best baseline / BR-0 / BR-H oracle at G = 4, 8, 16.", width=150)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
