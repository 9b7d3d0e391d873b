"""benchmarks/paired_samples.py: the paired statistics and label parsing, by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.paired_samples import paired, policy_dict


def test_policy_labels_parse_to_policy_dicts():
    assert policy_dict("br0") == {"name": "br0"}
    assert policy_dict("brh[oracle,horizon=16]") == {"name": "brh", "classifier": "oracle", "horizon": 16}
    assert policy_dict("jsq[mode=pool]") == {"name": "jsq", "mode": "pool"}
    with pytest.raises(SystemExit, match="NAME or NAME"):
        policy_dict("brh[oracle")


def test_paired_difference_against_the_baseline():
    # baseline 100, 200, 300 (mean 200); policy 90, 220, 270: differences -10, +20, -30 = -5%, +10%, -15%
    # of the baseline's mean; their mean -3.33%; two of three samples won.
    rows = pd.DataFrame({"dataset": "d", "seed": [1, 2, 3] * 2, "policy": ["b"] * 3 + ["x"] * 3,
                         "imbalance": [100, 200, 300, 90, 220, 270], "tok_s": [10, 20, 30, 40, 50, 60],
                         "ttft_p99_s": [1.0, 2.0, 3.0, 4.0, 5.0, 9.0]})
    t = paired(rows, "b").set_index("policy")
    assert t.loc["x", "mean"] == 193 and t.loc["x", "median"] == 220
    assert t.loc["x", "vs_b_pct"] == pytest.approx(-3.3)
    assert t.loc["x", "wins"] == "2/3" and t.loc["b", "wins"] == "0/3"
    # t interval: sd of (-5, 10, -15) = 12.583; t(0.975, 2) = 4.303; half = 4.303 * 12.583 / sqrt(3) = 31.26
    assert t.loc["x", "ci95_pct"] == "[-34.6, +27.9]"
    # exact signed-rank test: |d| ranks 1, 2, 3, W+ = 2; of the 8 sign patterns W+ in {0, 1, 2, 3, 3, 4, 5, 6},
    # P(W+ <= 2) = 3/8, two-sided 0.75
    assert t.loc["x", "wilcoxon_p"] == pytest.approx(0.75)
    assert list(t.index) == ["x", "b"]  # sorted by mean
    assert t.loc["x", "tok_s"] == 50 and t.loc["b", "tok_s"] == 20  # plain means over the samples
    assert t.loc["x", "ttft_p99_s"] == 6.0 and t.loc["b", "ttft_p99_s"] == 2.0
