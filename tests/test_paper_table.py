"""The paper-table module runs in its quick form and labels what it ran."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from analysis.paper_table import PAPER_AZURE, ascend_cluster, markdown, paper_table

DATA = Path(os.environ.get("BALANCEROUTE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def test_ascend_preset_is_the_papers_regime():
    c = ascend_cluster()
    assert (c.workers, c.max_running, c.prefill_chunk_tokens, c.cost.c_pf) == (8, 8, 0, 0.0)
    # ~60 ms per step at 8 sequences of ~5.2k context per rank (the derivation in the YAML)
    step = c.cost.c0 + 8 * c.cost.c_seq + c.cost.c_kv * 8 * 5200 + c.cost.c_sync
    assert 0.055 < step < 0.065


@pytest.mark.skipif(not (DATA / "sharegpt_8k_lengths_llama2_tokenizer.csv").is_file(), reason="no shared data")
def test_quick_table_has_the_columns_and_the_jsq_ratio():
    pols = [("jsq", {"name": "jsq"}), ("br0", {"name": "br0"})]
    df, md, meta = paper_table(quick=True, policies=pols)
    assert list(df.index) == ["jsq", "br0"] and meta["requests"] == 600
    assert df.loc["jsq", "jsq_over_this"] == 1.0
    assert df.loc["br0", "paper_azure_imbalance"] == PAPER_AZURE["br0"][0]
    assert np.isclose(df.loc["br0", "paper_azure_jsq_over_this"], 104737 / 54051)
    assert "ShareGPT" in meta["workload"] or "2024" in meta["workload"]
    assert md.count("\n") >= 4 and "| br0 |" in md
    # the pool backlogs at this rate: BR-0 balances better than JSQ
    assert df.loc["br0", "imbalance"] < df.loc["jsq", "imbalance"]


def test_markdown_formats():
    import pandas as pd

    md = markdown(pd.DataFrame({"a": [1234.5, 0.5], "b": [True, False], "n": [54051, 7]},
                               index=pd.Index(["x", "y"], name="p")))
    assert md.splitlines() == ["| p | a | b | n |", "|---|---|---|---|", "| x | 1,234 | true | 54,051 |",
                               "| y | 0.5 | false | 7 |"]


@pytest.mark.skipif(not (DATA / "sharegpt_8k_lengths_llama2_tokenizer.csv").is_file(), reason="no shared data")
def test_exact_match_arm_falls_back_without_hashes_and_not_with_synthetic_repeats():
    from analysis.paper_table import workload_config

    pols = [("brh[survival]", {"name": "brh", "classifier": "survival"}),
            ("brh[exact_match]", {"name": "brh", "classifier": "exact_match"})]
    df, md, meta = paper_table(quick=True, policies=pols)
    assert not meta["prompt_keys"] and "falls back to survival on every request" in md
    assert df.loc["brh[survival]", "imbalance"] == df.loc["brh[exact_match]", "imbalance"]
    wl = workload_config(True, repeat_share=0.5)
    df2, md2, meta2 = paper_table(quick=True, policies=pols, workload=wl)
    assert meta2["prompt_keys"] and "SYNTHETIC" in md2 and "falls back" not in md2
    assert df2.loc["brh[survival]", "imbalance"] != df2.loc["brh[exact_match]", "imbalance"]


def test_scaled_prompts_keep_everything_but_the_prompt():
    from analysis.paper_table import scaled_prompts
    from framework.workload import Workload

    w = Workload("w", np.array([0.0, 1.0, 2.0]), np.array([1, 10, 333]), np.array([5, 6, 7]),
                 prompt_key=np.array([3, 4, 5]))
    s = scaled_prompts(w, 1.5)
    assert s.prompt_tokens.tolist() == [2, 15, 500]  # rint(1.5) = 2, rint(499.5) = 500 (half to even)
    assert s.output_tokens.tolist() == [5, 6, 7] and s.arrival_s.tolist() == [0.0, 1.0, 2.0]
    assert s.prompt_key.tolist() == [3, 4, 5] and w.prompt_tokens.tolist() == [1, 10, 333]
    assert scaled_prompts(w, 0.01).prompt_tokens.tolist() == [1, 1, 3]  # at least one token


@pytest.mark.skipif(not (DATA / "sharegpt_8k_lengths_llama2_tokenizer.csv").is_file(), reason="no shared data")
def test_prompt_scale_is_labelled_synthetic():
    pols = [("jsq", {"name": "jsq"})]
    _, _, plain = paper_table(quick=True, policies=pols)
    df, _, meta = paper_table(quick=True, policies=pols, prompt_scale=2.0)
    assert "SYNTHETIC: prompts x2" in meta["workload"] and "SYNTHETIC" not in plain["workload"]
    with pytest.raises(ValueError, match="prompt_scale"):
        paper_table(quick=True, policies=pols, prompt_scale=0.0)


@pytest.mark.skipif(not (DATA / "sharegpt_8k_lengths_llama2_tokenizer.csv").is_file(), reason="no shared data")
def test_paper_like_cli_says_what_it_changed(capsys, monkeypatch):
    from analysis import paper_table as pt

    seen = {}
    real = pt.paper_table

    def spy(quick, seed, **kw):
        seen.update(kw, quick=quick)
        return real(quick, seed, policies=[("jsq", {"name": "jsq"}), ("br0", {"name": "br0"})],
                    **{k: v for k, v in kw.items() if k != "policies"})

    monkeypatch.setattr(pt, "paper_table", spy)
    pt.main(["--quick", "--paper-like", "--rate", "1.0"])
    out = capsys.readouterr().out
    assert seen["cluster"].cost.c_kv == 8.5e-7 and seen["prompt_scale"] == 4652 / 2393
    assert seen["rate_rps"] == 1.0  # an explicit flag wins over the paper-like default (1.1)
    assert "SYNTHETIC: prompts x1.944" in out and "c_kv 8.5e-07 s/token" in out and "Poisson 1.0 req/s" in out


def test_cluster_changes_name_what_differs_from_the_preset():
    from analysis.paper_table import cluster_changes

    c = ascend_cluster()
    assert cluster_changes(c) == ""
    c.cost.c_kv, c.max_running = 8.5e-7, 32
    assert cluster_changes(c) == "max_running 32, c_kv 8.5e-07 s/token"
    c.name = "other"
    assert cluster_changes(c) == ""  # another preset is named, not diffed
