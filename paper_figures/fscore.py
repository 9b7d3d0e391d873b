"""F-score of admitting load Ds to a worker with margin m_g, and how often routers stay in its safe regime.

    python -m paper_figures.fscore [--quick] [--out DIR]

Left and middle: F_g = Ds - G (Ds - m_g)^+ (algorithms.fscore.f_score), rising with slope 1 while the
load fits the margin (safe: the imbalance falls by Ds) and falling with slope 1 - G past it (overflow:
the envelope rises for all G workers). Right: from `experiment=fscore`, the share of admissions that a
router made within the worker's margin.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from algorithms.fscore import f_score
from analysis.sweep import run_sweep
from paper_figures import _style as sty
from paper_figures._runs import safe_share

NAME = "fscore"
QUICK = ["workload.max_requests=300", "cluster.workers=4,16"]


def analytic() -> pd.DataFrame:
    ds = np.linspace(0, 8000, 161)
    rows = []
    for G, m in [(8, 1000), (8, 3000), (8, 5000), (4, 3000), (16, 3000)]:
        rows += [{"panel": "F", "G": G, "margin_tokens": m, "added_tokens": d, "F_tokens": f}
                 for d, f in zip(ds, f_score(ds, m, G))]
    return pd.DataFrame(rows)


def make(a):
    df = run_sweep(NAME, a.sweep_dir, QUICK if a.quick else [], launcher=a.launcher, jobs=a.jobs)
    emp = pd.DataFrame({"panel": "safe_share", "policy": df["ov.variant"], "G": df["workers"],
                        "safe_share": [safe_share(a.sweep_dir, r) for r in df["run_dir"]]})
    emp = emp.sort_values(["policy", "G"])
    an = analytic()
    fig, ax = sty.figure(3, width=9.6, height=3.5)
    for j, (sel, title, key) in enumerate([(an["G"] == 8, "G = 8, margins m_g", "margin_tokens"),
                                           (an["margin_tokens"] == 3000, "m_g = 3,000 tokens, G", "G")]):
        axj = ax[0, j]
        part = an[sel]
        vals = sorted(part[key].unique())
        for i, v in enumerate(vals):
            c = part[part[key] == v]
            lab = f"m_g = {v:,}" if key == "margin_tokens" else f"G = {v}"
            axj.plot(c["added_tokens"], c["F_tokens"] / 1e3, color=sty.OKABE_ITO[i + 4 if i < 3 else i], label=lab)
        m0 = 3000 if key == "G" else None
        if m0:
            axj.axvspan(0, m0, color="#009E73", alpha=0.08)
            axj.text(m0 / 2, 5.3, "safe", ha="center", fontsize=8, color="#009E73")
            axj.text(m0 + 2500, 5.3, "overflow", ha="center", fontsize=8, color="#D55E00")
        axj.axhline(0, color="#333333", lw=0.6)
        axj.set_ylim(-25, 7)
        axj.set_xlabel("added load Ds (KV tokens)")
        axj.set_ylabel("F_g (thousand KV tokens)")
        axj.set_title(f"F-score, {title}")
        axj.legend(loc="lower left", frameon=False)
    axr = ax[0, 2]
    pols = list(dict.fromkeys(emp["policy"]))
    Gs = sorted(emp["G"].unique())
    w = 0.8 / len(pols)
    for i, p in enumerate(pols):
        c = emp[emp["policy"] == p].set_index("G").reindex(Gs)
        axr.bar(np.arange(len(Gs)) + (i - (len(pols) - 1) / 2) * w, 100 * c["safe_share"], w,
                color=sty.colour(p, i), label=p)
    axr.set_xticks(range(len(Gs)), [str(g) for g in Gs])
    axr.set_xlabel("workers G")
    axr.set_ylabel("admissions within the margin (%)")
    axr.set_ylim(0, 118)
    axr.set_yticks(range(0, 101, 20))
    axr.set_title("Safe-regime admissions")
    axr.legend(loc="upper center", frameon=False, ncol=len(pols))
    n = int(df["requests_total"].iloc[0])
    sty.caption(fig, f"Left, middle: F_g = Ds - G (Ds - m_g)^+; shaded: the safe regime Ds <= m_g (imbalance "
                f"falls by Ds), past it every worker's envelope rises (slope 1 - G). Right: share of admissions "
                f"whose added load fit the worker's margin; workload azure_conv_2023 (x8 rate, {n} requests), "
                f"preset fixed (30 ms steps).")
    return fig, pd.concat([an, emp], ignore_index=True)


main = sty.entry_point(__name__, NAME, __doc__, make)  # python -m paper_figures.NAME [--quick] ...
