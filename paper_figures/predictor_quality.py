"""Predictor quality per trace: AUC of "finishes within H" and MAE of the remaining steps.

    python -m paper_figures.predictor_quality [--quick] [--out DIR]

Predictors: survival (the training split's output lengths) and survival per prompt-length bin (8
bins: what the prompt tells about the output). The paper also scores ExactMatch (per prompt hash),
which needs prompt hashes that none of the shared traces carries.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from analysis.sweep import run_sweep
from framework.workloads import workload_config
from framework.runner import prepare_workload
from paper_figures import _style as sty
from paper_figures._predictors import evaluate
from paper_figures._runs import run_config
from paper_figures.paper_numbers import HORIZON, PREDICTORS

NAME = "predictor_quality"
QUICK = ["workload.max_requests=300"]
PREDICTOR_BINS = {"survival": 1, "survival_by_prompt": 8}


def table(df: pd.DataFrame, sweep_dir) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        cfg = run_config(sweep_dir, r["run_dir"])
        wcfg = workload_config(**OmegaConf.to_container(cfg.workload, resolve=True))
        cap, wcfg.max_requests = wcfg.max_requests, None  # the whole training head, the run's test requests
        train, test = prepare_workload(wcfg, int(cfg.seed))
        if cap is not None:
            test = test.take(slice(0, cap))
        for pred, bins in PREDICTOR_BINS.items():
            a, m = evaluate(train.prompt_tokens, train.output_tokens, test.prompt_tokens, test.output_tokens,
                            HORIZON, bins=bins)
            rows.append({"trace": r["ov.workload"], "predictor": pred, "auc": a, "mae_steps": m,
                         "train_requests": len(train), "test_requests": len(test), "horizon": HORIZON,
                         "brh_throughput_tokens_per_s": r["throughput_tokens_per_s"]})
    return pd.DataFrame(rows)


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    t = table(df, a.sweep_dir)
    traces = list(dict.fromkeys(t["trace"]))
    preds = list(PREDICTOR_BINS)
    paper = [(f"paper {tr}", p, v) for tr, d in PREDICTORS.items() for p, v in d.items()]
    fig, ax = sty.figure(2, width=9.0, height=3.6)
    w = 0.8 / len(preds)
    x = np.arange(len(traces) + len(PREDICTORS))
    short = {"azure_conv_2023": "Azure conv\n2023", "azure_code_2023": "Azure code\n2023", "sharegpt": "ShareGPT"}
    labels = [short.get(t_, t_) for t_ in traces] + [{"azure": "paper:\nAzure 2024"}.get(k, f"paper:\n{k}")
                                                     for k in PREDICTORS]
    for j, (col, ylab) in enumerate([("auc", 'AUC of "finishes within H"'), ("mae_steps", "MAE of the remainder (steps)")]):
        axj = ax[0, j]
        fmt = "{:.2f}" if col == "auc" else "{:.1f}"
        for i, p in enumerate(preds):
            v = t[t["predictor"] == p].set_index("trace").reindex(traces)[col]
            bars = axj.bar(np.arange(len(traces)) + (i - (len(preds) - 1) / 2) * w, v, w,
                           color=sty.OKABE_ITO[4 + i * 1], label=f"{p} ({sty.OURS_LABEL})")
            axj.bar_label(bars, [fmt.format(b) for b in v], fontsize=6.5, padding=1)
        hatches = {"survival": "////", "exact_match": "xxxx"}
        for k, (tr, d) in enumerate(PREDICTORS.items()):
            for i, (p, v) in enumerate(d.items()):
                bars = axj.bar(len(traces) + k + (i - 0.5) * 0.4, v[j], 0.4, color="white", edgecolor="#555555",
                               hatch=hatches.get(p, "...."), lw=0.6, label=f"{p} ({sty.PAPER_LABEL})" if k == 0 else None)
                axj.bar_label(bars, [fmt.format(v[j])], fontsize=6.5, padding=1)
        axj.set_xticks(x, labels, fontsize=7.5)
        axj.set_ylabel(ylab)
    ax[0, 0].set_ylim(0.0, 1.08)
    ax[0, 0].axhline(0.5, color="#333333", ls="--", lw=0.8, label="chance (AUC 0.5)")
    ax[0, 0].set_title(f"Ranking: finishes within H = {HORIZON} steps")
    ax[0, 1].set_title("Remaining steps of requests that finish")
    h, lab = ax[0, 0].get_legend_handles_labels()
    fig.legend(h, lab, loc="outside upper center", ncol=3, frameon=False)
    n = int(t["test_requests"].min())
    sty.caption(fig, f"Each test request scored at 20 uniform points of its decode; survival fitted on the trace's "
                f"first 10% (training split), tested on the next {n}+ requests (AUC 0.5: no better than chance). Hatched: "
                f"the paper's survival and exact_match (Azure 2024 and its production trace); exact_match needs prompt "
                f"hashes the shared traces lack. Shared traces: Azure 2023 conversation and code, ShareGPT lengths; "
                f"H = {HORIZON} steps.", width=150)
    return fig, t


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
