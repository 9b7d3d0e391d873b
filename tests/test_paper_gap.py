"""analysis.paper_gap: each setting reaches the cluster and workload it names."""
from __future__ import annotations

import pandas as pd

from analysis import paper_gap


def test_each_setting_changes_only_what_it_names(monkeypatch):
    seen = []

    def fake_table(quick, seed, policies, cluster, workload, prompt_scale):
        seen.append((cluster, workload[0], prompt_scale))
        df = pd.DataFrame({"imbalance": [100.0, 50.0, 40.0 + seed], "tok_s": [1000.0, 1010.0, 1020.0],
                           "step_ms": [50.0] * 3, "concurrency": [60.0, 61.0, 62.0]},
                          index=[label for label, _ in policies])
        return df, "", {}

    monkeypatch.setattr(paper_gap, "paper_table", fake_table)
    out = paper_gap.run(quick=True)
    labels = [label for label, _, _ in paper_gap.settings(True)]
    assert list(out.index) == labels and len(seen) == len(labels)
    base_cluster, base_wl, base_scale = seen[0]
    assert base_scale == 1.0
    by_label = dict(zip(labels, seen))
    kv_cluster, _, _ = by_label["KV binds (B 32, 30k KV per rank)"]
    assert (kv_cluster.max_running, kv_cluster.kv_capacity_tokens) == (32, 30_000)
    assert kv_cluster.cost.c_kv == base_cluster.cost.c_kv
    assert by_label["c_kv 4.4e-8 (HBM rate)"][0].cost.c_kv == 4.4e-8
    assert by_label["c_kv 4.4e-8 (HBM rate)"][0].max_running == base_cluster.max_running
    assert by_label["outputs > 1000"][1].min_output_tokens == 1001
    long_cluster, long_wl, scale = by_label["prompts x1.944 (mean 4.65k, SYNTHETIC)"]
    assert scale == 4652 / 2393 and long_wl == base_wl and long_cluster == base_cluster
    like_cluster, like_wl, like_scale = by_label["paper-like: both, at 1.1 req/s"]
    assert (like_cluster.cost.c_kv, like_wl.rate_rps, like_scale) == (8.5e-7, 1.1, 4652 / 2393)
    assert base_wl.rate_rps == 1.8
    # gain and bound from the fake table: br0 +1%; bound = c_kv * (100 - 50) / G / 0.05 s
    row = out.loc[labels[0]]
    assert abs(row["br0_gain_pct"] - 1.0) < 1e-9
    assert abs(row["br0_bound_pct"] - 100 * base_cluster.cost.c_kv * 50 / base_cluster.workers / 0.05) < 1e-12
    assert row["br0_concurrency"] == 61.0 and row["seeds"] == 1
    assert row["jsq_over_brh_oracle"] == 2.5  # 100 / 40 at seed 0


def test_several_seeds_are_averaged(monkeypatch):
    def fake_table(quick, seed, policies, cluster, workload, prompt_scale):
        df = pd.DataFrame({"imbalance": [100.0, 50.0, 40.0 + 10 * seed], "tok_s": [1000.0, 1000.0 + seed, 1000.0],
                           "step_ms": [50.0] * 3, "concurrency": [60.0] * 3},
                          index=[label for label, _ in policies])
        return df, "", {}

    monkeypatch.setattr(paper_gap, "paper_table", fake_table)
    row = paper_gap.run(quick=True, seeds=[1, 3]).iloc[0]
    # seed 1: 100/50 and 100/50; seed 3: 100/70 -> mean of 2 and 1.4286; gains 0.1% and 0.3% -> 0.2%
    assert row["seeds"] == 2 and row["jsq_over_br0"] == 2.0
    assert abs(row["jsq_over_brh_oracle"] - (2.0 + 100 / 70) / 2) < 1e-12
    assert abs(row["br0_gain_pct"] - 0.2) < 1e-9
