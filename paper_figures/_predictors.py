"""Scoring length predictors as the paper does: AUC of "finishes within H" and MAE of the remainder.

Each test request is looked at after d decoded tokens, d uniform in [0, o) (several draws per request):
label = (o - d <= H); the survival predictor's score is P(O <= d + H | O > d) from the training split's
output lengths (pooled, or per prompt-length bin), and its remainder estimate for requests that finish
within H is E[O - d | d < O <= d + H]. The same conditional survival as algorithms.classifiers'
`empirical` classifier, evaluated offline on arrays instead of inside a router.
"""
from __future__ import annotations

import numpy as np


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney with average ranks for ties); nan without both classes."""
    label = np.asarray(label, bool)
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def survival_scores(train_o: np.ndarray, o: np.ndarray, d: np.ndarray, H: int,
                    min_support: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(P(finish within H | age d), E[remaining | finish within H, age d]) from training lengths.

    Ages with fewer than min_support training requests still running reuse the oldest supported age
    (a stationary residual life beyond the data, as the `empirical` classifier assumes)."""
    t = np.sort(np.asarray(train_o, np.int64))
    n = len(t)
    dcap = t[max(0, n - min(min_support, n))] - 1  # the oldest age with >= min_support still running
    d = np.minimum(np.asarray(d, np.int64), dcap)
    gt_d = n - np.searchsorted(t, d, side="right")            # #{O > d}
    le_dH = np.searchsorted(t, d + H, side="right")            # #{O <= d + H}
    within = np.maximum(le_dH - (n - gt_d), 0)                 # #{d < O <= d + H}
    p = within / np.maximum(gt_d, 1)
    csum = np.concatenate(([0], np.cumsum(t)))
    lo = n - gt_d
    mean_o = np.where(within > 0, (csum[le_dH] - csum[lo]) / np.maximum(within, 1), d + H / 2)
    # the remainder is measured from the true age: the capped age only chose the conditional table
    return p, mean_o - d


def evaluate(train_p, train_o, test_p, test_o, H: int, bins: int = 1, draws: int = 20,
             seed: int = 0) -> tuple[float, float]:
    """(AUC, MAE in steps) of the survival predictor, pooled (bins=1) or per prompt-length bin."""
    rng = np.random.default_rng(seed)
    o = np.repeat(np.asarray(test_o, np.int64), draws)
    pr = np.repeat(np.asarray(test_p, np.int64), draws)
    d = np.floor(rng.random(len(o)) * o).astype(np.int64)
    edges = np.quantile(train_p, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else np.array([])
    tb, qb = np.searchsorted(edges, train_p, side="right"), np.searchsorted(edges, pr, side="right")
    score, rem = np.empty(len(o)), np.empty(len(o))
    for b in range(bins):
        sel = qb == b
        score[sel], rem[sel] = survival_scores(np.asarray(train_o)[tb == b], o[sel], d[sel], H)
    label = (o - d) <= H
    mae = float(np.mean(np.abs(rem[label] - (o - d)[label]))) if label.any() else float("nan")
    return auc(score, label), mae
