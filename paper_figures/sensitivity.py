"""Sensitivity of BR-H to its score weights: throughput over a beta x gamma grid (oracle, H = 80).

    python -m paper_figures.sensitivity [--quick] [--out DIR]

beta weighs the predicted overflow of the envelope against the admitted load (alpha = 1), gamma
discounts the lookahead; the paper reports 945-1043 tok/s over its grid, every setting above the best
baseline.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import metric, setting
from paper_figures.paper_numbers import SENSITIVITY_RANGE

NAME = "sensitivity"
QUICK = ["policy.beta=4,16", "policy.gamma=0.95,1.0", "workload.num_requests=250", "policy.horizon=40"]


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    t = pd.DataFrame({"beta": df["ov.policy.beta"], "gamma": df["ov.policy.gamma"],
                      "throughput_tokens_per_s": df["throughput_tokens_per_s"],
                      "imbalance_tokens_mean": metric(df, "imbalance_tokens_mean")}).sort_values(["beta", "gamma"])
    grid = t.pivot(index="beta", columns="gamma", values="throughput_tokens_per_s")
    fig, ax = sty.figure(1, width=6.2, height=4.2)
    axh = ax[0, 0]
    lo, hi = np.nanmin(grid.to_numpy()), np.nanmax(grid.to_numpy())
    mid, half = (lo + hi) / 2, max((hi - lo) / 2, 0.01 * (lo + hi) / 2)  # at least +-1%: no false contrast
    im = axh.imshow(grid.to_numpy(), cmap="cividis", aspect="auto", origin="lower", vmin=mid - half, vmax=mid + half)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            axh.text(j, i, f"{v:,.0f}", ha="center", va="center", fontsize=8,
                     color="black" if v > mid else "white")
    axh.set_xticks(range(grid.shape[1]), [f"{g:g}" for g in grid.columns])
    axh.set_yticks(range(grid.shape[0]), [f"{b:g}" for b in grid.index])
    axh.set_xlabel("gamma (discount per step of lookahead)")
    axh.set_ylabel("beta (weight of the predicted overflow)")
    axh.set_title("BR-H oracle throughput (tokens/s)")
    axh.grid(False)
    fig.colorbar(im, ax=axh, label="throughput (tokens/s)")
    H = int(df["ov.policy.horizon"].iloc[0]) if "ov.policy.horizon" in df else 80
    st = setting(a.sweep_dir, df)
    sty.caption(fig, f"This simulator: {lo:,.0f}-{hi:,.0f} tok/s over the grid ({hi / lo - 1:.1%} spread); "
                f"{sty.PAPER_LABEL}: {SENSITIVITY_RANGE[0]:,.0f}-{SENSITIVITY_RANGE[1]:,.0f} tok/s. Workload ShareGPT "
                f"lengths, {st.requests} requests at {st.rate_rps:g} req/s; preset {st.cluster}, G = {st.workers}, "
                f"H = {H}, alpha = 1.", width=95)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
