"""BR-H against its lookahead H for each predictor, and against the error of a noisy oracle.

    python -m paper_figures.horizon_accuracy [--quick] [--out DIR]

The analysis the paper's referees asked for: how far ahead the lookahead pays, and how accurate the
predictor must be for it to pay (an oracle with errors at H = 80, the paper's setting).
"""
from __future__ import annotations

import re

import pandas as pd

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import metric, setting
from paper_figures.paper_numbers import HORIZON

NAME = "horizon_accuracy"
QUICK = ["variant=brh_survival,brh_oracle,brh_noisy_oracle_err20pct,brh_noisy_oracle_err50pct",
         "policy.horizon=0,20,80", "workload.num_requests=250"]
_NOISY = re.compile(r"^brh_noisy_oracle_err(\d+)pct$")


def table(df: pd.DataFrame) -> pd.DataFrame:
    err = [float(_NOISY.match(v)[1]) if _NOISY.match(v) else (0.0 if v == "brh_oracle" else float("nan"))
           for v in df["ov.variant"]]
    t = pd.DataFrame({"predictor": df["ov.variant"].str.replace("brh_", "", regex=False), "horizon": df["ov.policy.horizon"],
                      "oracle_error_pct": err, "imbalance_tokens_mean": metric(df, "imbalance_tokens_mean"),
                      "throughput_tokens_per_s": df["throughput_tokens_per_s"]})
    return t.groupby(["predictor", "horizon"], as_index=False).mean().sort_values(["predictor", "horizon"])


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    t = table(df)
    fig, ax = sty.figure(2, width=9.0, height=3.6)
    preds = [p for p in t["predictor"].unique() if not p.startswith("noisy")]
    for i, p in enumerate(preds + ["noisy_oracle_err20pct"]):
        s = t[t["predictor"] == p]
        if s.empty:
            continue
        ax[0, 0].plot(s["horizon"], s["imbalance_tokens_mean"] / 1e3, marker=sty.MARKERS[i],
                      color=sty.colour("brh_" + p, i), label=p.replace("_err20pct", " (e = 20%)"))
    ax[0, 0].set_xlabel("lookahead H (decode steps)")
    ax[0, 0].set_ylabel("mean G·max − sum (thousand tokens)")
    ax[0, 0].set_title("BR-H against its lookahead (H = 0: BR-0's score)")
    ax[0, 0].legend(frameon=False, loc="best")
    H0 = HORIZON if HORIZON in set(t["horizon"]) else int(t["horizon"].max())
    s = t[(t["horizon"] == H0) & t["oracle_error_pct"].notna()].sort_values("oracle_error_pct")
    base = t[(t["horizon"] == 0)]["imbalance_tokens_mean"].mean()
    ax[0, 1].plot(s["oracle_error_pct"], s["imbalance_tokens_mean"] / 1e3, marker="o", color=sty.colour("brh_oracle"),
                  label=f"noisy oracle, H = {H0}")
    ax[0, 1].axhline(base / 1e3, color="#333333", ls="--", lw=1, label="H = 0 (BR-0's score)")
    sv = t[(t["horizon"] == H0) & (t["predictor"] == "survival")]
    if len(sv):
        ax[0, 1].axhline(sv["imbalance_tokens_mean"].iloc[0] / 1e3, color=sty.colour("brh_survival"), ls=":",
                         lw=1.2, label=f"survival, H = {H0}")
    ax[0, 1].set_xlabel("oracle error e (%): output length seen as o·U[1−e, 1+e]")
    ax[0, 1].set_ylabel("mean G·max − sum (thousand tokens)")
    ax[0, 1].set_title(f"BR-H against predictor error (H = {H0})")
    ax[0, 1].legend(frameon=False)
    st = setting(a.sweep_dir, df)
    sty.caption(fig, f"Noisy oracle: each output length seen as o·U[1−e, 1+e] (BF-IO's model), e on the right "
                f"panel's axis. Workload ShareGPT lengths, {st.requests} requests at {st.rate_rps:g} req/s; preset "
                f"{st.cluster}, G = {st.workers}. The paper runs H = 80.", width=150)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
