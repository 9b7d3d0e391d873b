"""What the bounded-wait rule costs under arrivals: imbalance against TTFT p99 as max_hold_steps grows.

    python -m paper_figures.hold_tradeoff [--quick] [--out DIR]

BR-0 and BR-H admit the pooled requests that fit; a request bypassed max_hold_steps times is forced in
(oldest first), which bounds how long it can wait. Near saturation the pool grows, so the bound binds
often: a looser bound buys balance with tail TTFT. Each point is a mean over workload seeds; JSQ (the
paper's strongest baseline) in dispatch and pool form is the reference at ratio 1.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import metric, run_config, setting
from paper_figures.paper_numbers import TABLE_G8

NAME = "hold_tradeoff"
HOLDS = "300,1000,100000"
QUICK = ["seed=1", "workload.num_requests=1112", "workload.max_requests=1000"]
QUICK_HOLDS = "1000"
UNBOUNDED = 100_000  # more bypasses than any run here makes: the bound never binds


def runs(a) -> pd.DataFrame:
    """Both grids: the experiment's own (JSQ, BR-0 and BR-H oracle at the default bound) and the looser bounds."""
    extra = QUICK if a.quick else []
    ref = run_sweep(NAME, a.sweep_dir / "default_bound", extra, launcher=a.launcher, jobs=a.jobs)
    hold = run_sweep(NAME, a.sweep_dir / "looser_bounds", [*extra, "variant=br0,brh_oracle",
                     f"policy.max_hold_steps={QUICK_HOLDS if a.quick else HOLDS}"], launcher=a.launcher, jobs=a.jobs)
    ref["sweep"], hold["sweep"] = a.sweep_dir / "default_bound", a.sweep_dir / "looser_bounds"
    return pd.concat([ref, hold], ignore_index=True)


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (policy, bound): means over seeds, and ratios to JSQ's means (the bound each run used read back
    from its resolved config, so the default is whatever the policy's config says)."""
    hold = [run_config(s, d).policy.get("max_hold_steps") for s, d in zip(df["sweep"], df["run_dir"])]
    t = pd.DataFrame({"policy": df["ov.variant"], "max_hold_steps": pd.array(hold, dtype="Int64"),
                      "seed": df["seed"], "imbalance_tokens_mean": metric(df, "imbalance_tokens_mean"),
                      "ttft_p99_s": df["ttft_p99_s"], "throughput_tokens_per_s": df["throughput_tokens_per_s"]})
    keys = ["policy", "max_hold_steps"]
    g = t.groupby(keys, dropna=False)
    out = g[["imbalance_tokens_mean", "ttft_p99_s", "throughput_tokens_per_s"]].mean()
    out["seeds"] = g["seed"].nunique()
    out = out.reset_index()
    jsq = out[out["policy"] == "jsq"].iloc[0]
    out["jsq_over_this_imbalance"] = jsq["imbalance_tokens_mean"] / out["imbalance_tokens_mean"]
    out["throughput_gain_pct"] = 100 * (out["throughput_tokens_per_s"] / jsq["throughput_tokens_per_s"] - 1)
    out["ttft_p99_over_jsq"] = out["ttft_p99_s"] / jsq["ttft_p99_s"]
    return out.sort_values(keys, na_position="first").reset_index(drop=True)


def hold_label(h) -> str:
    if pd.isna(h):
        return ""
    return "unbounded" if h >= UNBOUNDED else f"{int(h):,}"


def make(a):
    df = runs(a)
    t = table(df)
    fig, ax = sty.figure(2, width=10.0, height=4.0)
    left, right = ax[0, 0], ax[0, 1]
    routers = [p for p in ("br0", "brh_oracle") if p in set(t["policy"])]
    for i, p in enumerate(routers):
        c = t[t["policy"] == p].sort_values("max_hold_steps")
        col = sty.colour(p, i)
        left.plot(c["ttft_p99_s"], c["jsq_over_this_imbalance"], marker=sty.MARKERS[i], color=col, label=p)
        for _, r in c.iterrows():
            left.annotate(hold_label(r["max_hold_steps"]), (r["ttft_p99_s"], r["jsq_over_this_imbalance"]),
                          textcoords="offset points", xytext=(5, -10 if p == "br0" else 5), fontsize=7, color=col)
        xs = np.arange(len(c))
        right.plot(xs, c["throughput_gain_pct"].to_numpy(), marker=sty.MARKERS[i], color=col, label=p)
        right.set_xticks(xs, [hold_label(h) for h in c["max_hold_steps"]])
    for j, p in enumerate(("jsq", "jsq_pool")):
        r = t[t["policy"] == p]
        if len(r):
            left.scatter(r["ttft_p99_s"], r["jsq_over_this_imbalance"], marker="X" if j else "s", s=40 if j else 70,
                         facecolors=sty.colour(p) if j else "none", edgecolors=sty.colour(p), zorder=3,
                         label=p.replace("_pool", " (pool form)"))
    paper = TABLE_G8["azure_2024"]
    # the paper's ratios, labelled where no point of ours is: br0 below its line at the right, BR-H above
    for p, ls, x, ha, va in (("br0", ":", 0.99, "right", "top"), ("brh_oracle", "--", 0.45, "center", "bottom")):
        v = paper["jsq"][0] / paper[p][0]
        left.axhline(v, color=sty.colour(p), ls=ls, lw=0.9)
        left.text(x, v, f"paper {p}, Azure 2024 ({v:.2f}x)", transform=left.get_yaxis_transform(),
                  ha=ha, va=va, fontsize=7, color=sty.colour(p))
    left.set_xscale("log")
    lo, hi = float(t["ttft_p99_s"].min()), float(t["ttft_p99_s"].max())
    ticks = [v for v in (10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000) if lo / 1.3 <= v <= hi * 1.3]
    left.xaxis.set_major_locator(FixedLocator(ticks))
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.xaxis.set_minor_formatter(NullFormatter())
    left.set_xlim(lo / 1.15, hi * 1.35)
    left.set_xlabel("TTFT p99 (s, log scale)")
    left.set_ylabel("JSQ's mean imbalance / this policy's")
    left.set_title("Balance against tail TTFT (labels: max_hold_steps)")
    left.set_ylim(0, max(3.2, float(t["jsq_over_this_imbalance"].max()) + 0.3))
    left.legend(loc="lower right", frameon=False, bbox_to_anchor=(1.0, 0.1))
    right.axhline(0.0, color="#333333", lw=0.8)
    right.set_xlabel("max_hold_steps (bypasses before a request is forced in)")
    right.set_ylabel("throughput gain over JSQ (%)")
    right.set_title("Throughput")
    right.set_ylim(0, max(1.0, float(t["throughput_gain_pct"].max()) * 1.25))
    right.legend(loc="lower right", frameon=False)
    st = setting(df["sweep"].iloc[0], df)
    seeds = int(t["seeds"].min())
    sty.caption(fig, f"Workload ShareGPT lengths, outputs >= 500, {st.requests} requests at {st.rate_rps:g} req/s (the "
                f"pool grows: arrivals exceed the node's service rate); preset {st.cluster}, G = "
                f"{st.workers}; means over {seeds} workload seed(s). Imbalance: mean G*max - sum "
                f"per step. The default bound is the leftmost point of each line.", width=175)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
