"""Routers reading stale worker counts: imbalance against the age of the view (0 to 500 ms).

    python -m paper_figures.staleness [--quick] [--out DIR]

vLLM publishes engine counts every 100 ms and SGLang every 20 ms; between snapshots a router only adds
its own placements. least_kv and br0 read fresh loads (the framework has no stale option for them), so
they are drawn as references at every age.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from paper_figures import _style as sty
from paper_figures._sweep import run_sweep

NAME = "staleness"
QUICK = ["workload.max_requests=600"]
_STALE = re.compile(r"^(?P<policy>.+)_stale(?P<ms>\d+)ms$")


def table(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        m = _STALE.match(str(r["ov.variant"]))
        pol, ms = (m["policy"], int(m["ms"])) if m else (str(r["ov.variant"]), np.nan)
        rows.append({"policy": pol, "stale_ms": ms, "fresh_only": m is None,
                     "imbalance_tokens_mean": r["imbalance_tokens"] / max(1, r["steps"]),
                     "avg_dp_imbalance": r["avg_dp_imbalance"], "ttft_p99_s": r["ttft_p99_s"]})
    return pd.DataFrame(rows).sort_values(["fresh_only", "policy", "stale_ms"]).reset_index(drop=True)


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    tab = table(df)
    fig, ax = sty.figure(2, width=8.4, height=3.4)
    ages = sorted(tab["stale_ms"].dropna().unique())
    xs = np.arange(len(ages))
    for j, (col, lab, scale) in enumerate([("imbalance_tokens_mean", "mean G·max − sum (thousand tokens)", 1e3),
                                           ("avg_dp_imbalance", "avg DP imbalance (max − mean)/max", 1.0)]):
        axj = ax[0, j]
        for i, (p, t) in enumerate(tab.groupby("policy", sort=False)):
            c = sty.colour(p, i)
            if t["fresh_only"].all():
                axj.axhline(t[col].iloc[0] / scale, color=c, ls="--", lw=1.2, label=f"{p} (fresh view)")
            else:
                t = t.set_index("stale_ms").reindex(ages)
                axj.plot(xs, t[col] / scale, marker=sty.MARKERS[i], color=c, label=p)
        axj.set_xticks(xs, [f"{int(x)}" for x in ages])
        axj.set_xlabel("age of the router's view of worker counts (ms)")
        axj.set_ylabel(lab)
        axj.set_ylim(bottom=0)
    ax[0, 0].set_title("Imbalance in KV tokens")
    ax[0, 1].set_title("Relative imbalance")
    ax[0, 1].legend(loc="lower right", frameon=False)
    n = int(df["requests_total"].iloc[0])
    sty.caption(fig, f"vllm and sglang_total_tokens re-read worker counts every 0/20/100/500 ms (their defaults: "
                f"100 and 20 ms) and add their own placements in between; dashed: routers with a fresh view. "
                f"Workload azure_conv_2023 (x16 rate, {n} requests), G = {int(df['workers'].iloc[0])}, "
                f"preset fixed (30 ms steps).", width=140)
    return fig, tab


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
