"""AUC / MAE of the predictors (analysis.predictor_quality) on hand cases."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.predictor_quality import auc, predictor_quality
from framework.workload import Workload


def test_auc_by_hand():
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs won 1 + 1 + 0 + 1 = 3 of 4
    assert auc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1, 1, 0, 0])) == 0.75
    assert auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5  # a tie counts one half


def wl(o, p=None):
    o = np.asarray(o)
    return Workload("w", np.zeros(len(o)), np.full(len(o), 100) if p is None else np.asarray(p), o)


def test_oracle_is_perfect_and_survival_on_a_single_length_too():
    test = wl([5, 20, 40, 90])
    assert predictor_quality("oracle", wl([1]), test, horizon=10, stride=3) == pytest.approx(
        {"predictor": "oracle", "auc": 1.0, "mae": 0.0, "pairs": 53, "horizon": 10})
    # every training output is 30: survival knows the remainder exactly for requests of length 30
    q = predictor_quality("survival", wl([30] * 50), wl([30, 30]), horizon=10, stride=1, min_support=1)
    assert q["auc"] == 1.0 and q["mae"] == 0.0
