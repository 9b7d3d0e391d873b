"""The papers' per-step imbalance means (framework.metrics.paper_imbalance_metrics), worked by hand."""
from __future__ import annotations

import math

import numpy as np

from framework.metrics import paper_imbalance_metrics
from framework.cluster import ClusterConfig
from framework.runner import run_policy
from framework.workload import Workload


def test_by_hand():
    load = np.array([[4, 0, 2], [6, 3, 3], [0, 0, 0], [1, 1, 4]])
    # G*max - sum: 12-6=6, 18-12=6, (empty), 12-6=6; max - min: 4, 3, -, 3
    m = paper_imbalance_metrics(load, last_admit_step=1)
    assert m["imbalance_tokens_mean"] == 6.0
    assert m["max_min_tokens_mean"] == (4 + 3 + 3) / 3
    assert m["imbalance_tokens_mean_to_last_admit"] == 6.0  # steps 0 and 1
    assert m["max_min_tokens_mean_to_last_admit"] == 3.5
    m = paper_imbalance_metrics(load, last_admit_step=2)  # the cut keeps an empty step too
    assert m["imbalance_tokens_mean_to_last_admit"] == 4.0
    assert math.isnan(paper_imbalance_metrics(load, None)["max_min_tokens_mean_to_last_admit"])


def test_summary_carries_them_and_they_match_the_step_table():
    rng = np.random.default_rng(0)
    wl = Workload("w", np.zeros(60), rng.integers(10, 300, 60), rng.integers(1, 40, 60))
    out = run_policy("br0", wl, ClusterConfig(workers=3, max_running=4, kv_capacity_tokens=10**5), seed=0)
    s, r = out.summary, out.result
    load = r.step_load
    cut = int(r.req_admit_step.max()) + 1
    assert s["imbalance_tokens_mean_to_last_admit"] == (3 * load[:cut].max(1) - load[:cut].sum(1)).mean()
    assert s["max_min_tokens_mean"] == (load.max(1) - load.min(1))[load.max(1) > 0].mean()
