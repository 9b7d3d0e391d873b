"""Where BalanceRoute wins and where it ties: BR-0's imbalance relative to JSQ against offered load.

    python -m paper_figures.regimes [--quick] [--out DIR]

At low load every request finds a free slot at once, so there is nothing to choose and BR-0 ties the
load-aware baselines; as the pool backlogs, BR-0 chooses which requests to admit and its advantage
opens. JSQ in its pool form separates choosing which request (BR-0) from choosing where (both).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullFormatter, FuncFormatter

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import metric

NAME = "regimes"
QUICK = ["workload.rate_rps=0.5,2,50", "workload.num_requests=250"]
TIE = 0.05


def table(df: pd.DataFrame) -> pd.DataFrame:
    t = pd.DataFrame({"policy": df["ov.variant"], "rate_rps": df["ov.workload.rate_rps"],
                      "imbalance_tokens_mean": metric(df, "imbalance_tokens_mean"),
                      "throughput_tokens_per_s": df["throughput_tokens_per_s"], "ttft_p50_s": df["ttft_p50_s"]})
    t = t.groupby(["policy", "rate_rps"], as_index=False).mean()
    wide = t.pivot(index="rate_rps", columns="policy")
    out = pd.DataFrame({"rate_rps": wide.index})
    for p in [c for c in wide["imbalance_tokens_mean"].columns if c != "br0"]:
        out[f"br0_over_{p}_imbalance"] = (wide["imbalance_tokens_mean"]["br0"] / wide["imbalance_tokens_mean"][p]).to_numpy()
        out[f"br0_over_{p}_throughput"] = (wide["throughput_tokens_per_s"]["br0"] / wide["throughput_tokens_per_s"][p]).to_numpy()
    for p in wide["imbalance_tokens_mean"].columns:
        out[f"{p}_imbalance_tokens_mean"] = wide["imbalance_tokens_mean"][p].to_numpy()
        out[f"{p}_ttft_p50_s"] = wide["ttft_p50_s"][p].to_numpy()
    return out


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    t = table(df)
    fig, ax = sty.figure(2, width=9.0, height=3.6)
    for i, p in enumerate(c[len("br0_over_"):-len("_imbalance")] for c in t.columns if c.endswith("_imbalance")):
        c, ls = sty.colour(p, i), "--" if p.endswith("_pool") else "-"
        ax[0, 0].plot(t["rate_rps"], t[f"br0_over_{p}_imbalance"], marker=sty.MARKERS[i], color=c, ls=ls,
                      label=f"BR-0 / {p}")
        ax[0, 1].plot(t["rate_rps"], t[f"br0_over_{p}_throughput"], marker=sty.MARKERS[i], color=c, ls=ls,
                      label=f"BR-0 / {p}")
    ticks: list[float] = []
    for r in sorted(t["rate_rps"].unique()):  # label only rates far enough apart on the log axis
        if not ticks or r / ticks[-1] >= 1.45:
            ticks.append(float(r))
    for axj in ax[0]:
        axj.set_xscale("log")
        axj.xaxis.set_major_locator(FixedLocator(ticks))
        axj.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axj.xaxis.set_minor_formatter(NullFormatter())
        axj.axhspan(1 - TIE, 1 + TIE, color="#999999", alpha=0.15, lw=0)
        axj.axhline(1.0, color="#333333", lw=0.8)
        axj.set_xlabel("arrival rate (requests/s, log scale)")
    ax[0, 0].text(0.02, 1 + TIE + 0.02, f"tie (±{TIE:.0%})", transform=ax[0, 0].get_yaxis_transform(), fontsize=7.5)
    ax[0, 0].set_ylabel("BR-0 mean imbalance / baseline's")
    ax[0, 0].set_title("Imbalance ratio (below 1: BR-0 balances better)")
    ax[0, 0].set_ylim(0, max(1.2, float(np.nanmax(t.filter(like="_imbalance").filter(like="br0_over").to_numpy())) + 0.1))
    ax[0, 0].legend(loc="lower left", frameon=False)
    ax[0, 1].set_ylabel("BR-0 throughput / baseline's")
    ax[0, 1].set_title("Throughput ratio (above 1: BR-0 serves more)")
    n = int(df["requests_total"].iloc[0])
    sty.caption(fig, f"Poisson arrivals at each rate (the highest keeps the central pool backlogged throughout). "
                f"Workload ShareGPT lengths, {n} requests per run; preset {df['cluster'].iloc[0]}, G = "
                f"{int(df['workers'].iloc[0])}; dashed: JSQ in its pool form (FCFS from the pool, worker by JSQ).",
                width=150)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
