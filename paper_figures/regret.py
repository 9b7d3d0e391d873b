"""Regret against the hindsight optimum: each router's gap, as a share of the compute it paid for.

    python -m paper_figures.regret [--quick] [--out DIR]

For every run of `experiment=regret`, analysis.regret solves the offline problem with the run's own
admission steps (regret.json is reused when already computed by this solver revision); where the solver
proves only an interval [LB, UB] for the optimum, the regret is the interval [J - UB, J - LB].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.offline_optimum import stdout_to_stderr
from analysis.regret import sweep_table
from analysis.sweep import run_sweep
from paper_figures import _style as sty

NAME = "regret"
QUICK = ["workload.start_s=0", "workload.max_requests=120",
         "variant=round_robin,jsq,least_kv,br0,brh_empirical"]
TIME_LIMIT = {True: 4.0, False: 20.0}


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    with stdout_to_stderr():
        reg = sweep_table(a.sweep_dir, time_limit=TIME_LIMIT[a.quick])
    reg = reg[reg["run"].isin(set(df["run_dir"]))]
    reg = reg.merge(df[["run_dir", "ov.variant", "ov.workload.start_s"]].rename(columns={"run_dir": "run"}), on="run")
    order = list(dict.fromkeys(v for v in ["round_robin", "random", "jsq", "least_kv", "sglang_total_tokens",
                                           "br0", "brh_empirical", "brh_survival", "brh_oracle"]
                               if v in set(reg["ov.variant"])))
    g = reg.groupby("ov.variant").agg(share_low=("share_of_compute", "mean"),
                                      share_high=("share_of_compute_high", "mean"),
                                      regret_low=("regret", "mean"), regret_high=("regret_high", "mean"),
                                      j_online=("j_online", "mean"), windows=("run", "size"),
                                      optimal=("status", lambda s: int((s == "optimal").sum()))).reindex(order)
    fig, ax = sty.figure(2, width=9.0, height=3.6)
    x = np.arange(len(order))
    for i, p in enumerate(order):
        r = g.loc[p]
        ax[0, 0].bar(i, 100 * r["share_low"], 0.6, color=sty.colour(p, i))
        ax[0, 0].errorbar(i, 100 * (r["share_low"] + r["share_high"]) / 2,
                          yerr=100 * (r["share_high"] - r["share_low"]) / 2, color="#333333", capsize=4, lw=1)
    ax[0, 0].set_xticks(x, order, rotation=25, ha="right")
    ax[0, 0].set_ylabel("regret (% of the run's compute)")
    ax[0, 0].set_title("Gap to the offline optimum")
    w0 = sorted(reg["ov.workload.start_s"].unique())[0]
    for i, p in enumerate(order):
        row = reg[(reg["ov.variant"] == p) & (reg["ov.workload.start_s"] == w0)]
        if row.empty:
            continue
        st = pd.read_parquet(Path(a.sweep_dir) / row["run"].iloc[0] / "regret_steps.parquet")
        ax[0, 1].plot(st["step"] * 0.030, st["cumulative_regret"] / 1e6, color=sty.colour(p, i), label=p,
                      ls=["-", "--", "-.", ":"][i % 4])  # distinct dashes: coinciding runs stay visible
    ax[0, 1].set_xlabel("simulated time (s)")
    ax[0, 1].set_ylabel("cumulative regret (10⁶ token-steps)")
    ax[0, 1].set_title(f"Cumulative regret, window starting at {w0:.0f} s")
    ax[0, 1].legend(loc="upper left", frameon=False)
    n = int(df["requests_total"].iloc[0])
    same = [f"{a} and {b}" for k, a in enumerate(order) for b in order[k + 1:]
            if np.allclose(reg[reg["ov.variant"] == a].sort_values("ov.workload.start_s")["j_online"].to_numpy(),
                           reg[reg["ov.variant"] == b].sort_values("ov.workload.start_s")["j_online"].to_numpy())]
    twins = f" {'; '.join(same)} made the same assignments (equal J_online in every window)." if same else ""
    sty.caption(fig, f"Regret = J_online - J* with J = sum over steps of (G max_g s_g - sum_g s_g); bar: the regret "
                f"proven (against the best assignment found), whisker: up to the regret against the proven lower bound "
                f"(mean over windows); right: against the best assignment. The optimum "
                f"re-chooses only the workers (same admission steps), solved for {TIME_LIMIT[a.quick]:.0f} s per run "
                f"({int(g['optimal'].sum())} of {int(g['windows'].sum())} proven optimal). Workload azure_conv_2023 "
                f"(x4 rate, {n} requests per window, {int(g['windows'].max())} window(s)), G = 4, preset fixed.{twins}",
                width=130)
    tab = g.reset_index().rename(columns={"ov.variant": "policy"})
    return fig, tab


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
