"""ExactMatch on prompt keys: keys from Mooncake hash_ids and CSV hash columns, learning from completed
requests only, exact predictions once a fixed-output prompt has completed, fallback to survival."""
from __future__ import annotations

import json

import numpy as np
import pytest

from algorithms._keyed import KeyedOutputs
from algorithms.brh import BRH, BrhConfig
from analysis.predictor_quality import predictor_quality
from framework.cluster import ClusterConfig
from framework.workloads import workload_config
from framework.policy import scoped_policy
from framework.runner import run_policy
from framework.workload import split_train
from framework.workloads import load_workload

# five prompts, each with a fixed output (a repeated prompt gets the same answer); lengths collide on
# purpose (prompts 0 and 1 have the same length, different blocks), so only the key tells them apart
TEMPLATES = [(600, [1, 2], 37), (600, [1, 3], 5), (120, [9], 60), (1500, [4, 5, 6], 12), (50, [], 21)]


def mooncake_file(path, n=160, seed=0):
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(TEMPLATES), n)
    t = np.cumsum(rng.exponential(25.0, n))  # ms
    with open(path, "w") as f:
        for i, k in enumerate(pick):
            p, ids, o = TEMPLATES[k]
            f.write(json.dumps({"timestamp": float(t[i]), "input_length": p, "output_length": o,
                                "hash_ids": ids}) + "\n")
    return pick


def test_mooncake_keys_follow_the_prompt(tmp_path):
    pick = mooncake_file(tmp_path / "m.jsonl")
    w = load_workload(workload_config(kind="mooncake", path=str(tmp_path / "m.jsonl"), train_fraction=0), 0)
    assert w.meta["prompt_keys"] == "hash_ids"
    k = w.prompt_key
    for a in range(len(TEMPLATES)):
        assert len(np.unique(k[pick == a])) == 1  # the same prompt, one key
    assert len(np.unique(k)) == len(set(pick.tolist()))  # different prompts (even of equal length) differ
    tr, sim = split_train(w, 0.25)
    assert np.array_equal(np.concatenate([tr.prompt_key, sim.prompt_key]), k)  # the split keeps them


def test_a_file_without_hash_ids_has_no_keys(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"timestamp": 0, "input_length": 5, "output_length": 3}\n'
                 '{"timestamp": 1, "input_length": 5, "output_length": 4}\n')
    w = load_workload(workload_config(kind="mooncake", path=str(f), train_fraction=0), 0)
    assert w.prompt_key is None


def test_csv_hash_column_gives_keys(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens,prompt_hash\n"
                 "2023-11-16 18:15:46.0000000,10,3,abc\n2023-11-16 18:15:47.0000000,10,4,abd\n"
                 "2023-11-16 18:15:48.0000000,20,5,abc\n")
    w = load_workload(workload_config(kind="trace", path=str(f), train_fraction=0), 0)
    k = w.prompt_key
    assert k[0] == k[2] != k[1] and (k >= 0).all()
    lt = tmp_path / "l.csv"
    lt.write_text("input_length,output_length,HASH\n10,3,x\n10,4,y\n")
    wl = load_workload(workload_config(kind="lengths", path=str(lt), num_requests=40, train_fraction=0), 0)
    # resampled rows carry their key: equal keys, equal (prompt, output) rows
    for key in np.unique(wl.prompt_key):
        assert len(np.unique(wl.output_tokens[wl.prompt_key == key])) == 1


def test_keyed_store_matches_brute_force():
    rng = np.random.default_rng(3)
    st = KeyedOutputs()
    obs: dict[int, list[int]] = {}
    for _ in range(60):  # batches, with segments growing past their room
        keys = rng.integers(-1, 6, 7)
        outs = rng.integers(1, 40, 7)
        st.add(keys, outs)
        for k, o in zip(keys.tolist(), outs.tolist()):
            if k >= 0:
                obs.setdefault(k, []).append(o)
    keys = np.array([-1, 0, 1, 2, 3, 4, 5, 99])
    d = rng.integers(0, 40, len(keys))
    H = 7
    c, ok = st.lifetimes(st.row_of(keys), d, H, need=2)
    q, okq = st.survival(st.row_of(keys), d, H, need=2)
    assert np.array_equal(ok, okq)
    for i, k in enumerate(keys.tolist()):
        o = np.array(obs.get(k, []))
        tail = o[o > d[i]] if len(o) else o
        expect = len(o) >= 2 and len(tail) > 0
        assert ok[i] == expect
        if expect:
            assert c[i] == pytest.approx(np.minimum(tail - d[i], H + 1).mean())
            np.testing.assert_allclose(q[i], [(tail > d[i] + h).mean() for h in range(H + 1)])


H = 20
CLUSTER = ClusterConfig(workers=2, max_running=4, kv_capacity_tokens=200_000)


def test_predictions_are_exact_after_the_first_completion(tmp_path):
    """In a simulation, every running request whose prompt has completed before is predicted exactly
    (E[min(r, H+1)] = min(r, H+1)); a request whose prompt has not completed yet gets survival's value."""
    mooncake_file(tmp_path / "m.jsonl", n=160)
    w = load_workload(workload_config(kind="mooncake", path=str(tmp_path / "m.jsonl"), train_fraction=0), 0)
    train, sim = split_train(w, 0.2)
    train = train.take(slice(None))
    train = type(train)(train.name, train.arrival_s, train.prompt_tokens, train.output_tokens)  # no keys
    OUT, KEYS = sim.output_tokens, sim.prompt_key
    stats = {"exact": 0, "fallback": 0}

    class Probe(BRH):
        def __init__(self, config, context):
            super().__init__(config, context)
            learn, self.done = self.on_complete, set()

            def hook(ids, workers, out):
                assert np.array_equal(out, OUT[ids])
                self.done.update(KEYS[ids].tolist())
                learn(ids, workers, out)
            self.on_complete = hook

        def decide(self, view):
            c = self.classifier.expected_lifetime(view, H)
            seen = np.isin(view.running_key, list(self.done))
            truth = np.minimum(OUT[view.running_ids] - view.running_decoded, H + 1)
            np.testing.assert_array_equal(c[seen], truth[seen])
            surv = self.classifier.pooled.lifetimes(view.running_prompt, view.running_decoded, H)
            np.testing.assert_allclose(c[~seen], surv[~seen])
            stats["exact"] += int(seen.sum())
            stats["fallback"] += int((~seen).sum())
            return super().decide(view)

    with scoped_policy("brh_probe", Probe, BrhConfig):
        out = run_policy({"name": "brh_probe", "classifier": "exact_match", "horizon": H, "min_support": 1},
                         sim, CLUSTER, training=train, check_invariants=True)
    assert out.summary["requests_completed"] == len(sim)
    assert stats["exact"] > 5 * stats["fallback"] > 0  # both branches ran; most requests repeat a prompt
    assert out.summary["classifier_key_hit_rate"] == pytest.approx(
        stats["exact"] / (stats["exact"] + stats["fallback"]))


def test_predictor_quality_on_repeated_prompts(tmp_path):
    """Every test prompt was seen in training with a fixed output: exact_match is perfect (AUC 1,
    MAE 0); survival, which sees only the pooled lengths, is not."""
    mooncake_file(tmp_path / "m.jsonl", n=200)
    w = load_workload(workload_config(kind="mooncake", path=str(tmp_path / "m.jsonl"), train_fraction=0), 0)
    train, test = w.take(slice(0, 100)), w.take(slice(100, None))
    assert set(test.prompt_key.tolist()) <= set(train.prompt_key.tolist())
    em = predictor_quality("exact_match", train, test, horizon=H, stride=1, min_support=1)
    sv = predictor_quality("survival", train, test, horizon=H, stride=1, min_support=1)
    assert em["auc"] == 1.0 and em["mae"] == 0.0
    assert sv["auc"] < 0.99 and sv["mae"] > 1.0


def test_synthetic_repeats_share_keys_and_outputs():
    """workload.repeat_share: about that share repeats a template; equal keys have equal prompts and
    (spread 0) equal outputs; the draw does not change the arrivals."""
    base = dict(kind="synthetic", num_requests=4000, train_fraction=0, arrival="poisson", rate_rps=10.0)
    plain = load_workload(workload_config(**base), 3)
    w = load_workload(workload_config(**base, repeat_share=0.4, repeat_templates=20), 3)
    assert plain.prompt_key is None and w.meta["prompt_keys"].startswith("synthetic repeats")
    np.testing.assert_array_equal(w.arrival_s, plain.arrival_s)
    keys, counts = np.unique(w.prompt_key, return_counts=True)
    assert len(keys[counts > 1]) <= 20
    assert abs(counts[counts > 1].sum() / len(w) - 0.4) < 0.03
    for k in keys[counts > 1]:
        m = w.prompt_key == k
        assert len(np.unique(w.prompt_tokens[m])) == 1 and len(np.unique(w.output_tokens[m])) == 1
    spread = load_workload(workload_config(**base, repeat_share=0.4, repeat_templates=20,
                                           repeat_output_spread=0.2), 3)
    k = spread.prompt_key[np.argmax(np.bincount(np.unique(spread.prompt_key, return_inverse=True)[1]))]
    o = spread.output_tokens[spread.prompt_key == k]
    assert o.max() / o.min() <= 1.2 / 0.8 + 0.02 and len(np.unique(o)) > 1


def test_prompt_key_column_option(tmp_path):
    from framework.errors import ConfigError, TraceFormatError

    lt = tmp_path / "l.csv"
    lt.write_text("input_length,output_length,conv_id,hash\n10,3,a,x\n10,4,a,y\n")
    cfg = dict(kind="lengths", path=str(lt), num_requests=20, train_fraction=0)
    auto = load_workload(workload_config(**cfg), 0).prompt_key  # auto: the 'hash' column
    by_conv = load_workload(workload_config(**cfg, prompt_key_column="conv_id"), 0).prompt_key
    assert len(np.unique(auto)) == 2 and len(np.unique(by_conv)) == 1
    assert load_workload(workload_config(**cfg, prompt_key_column="none"), 0).prompt_key is None
    with pytest.raises(TraceFormatError, match="(?i)prompt_key_column='conv'.*did you mean 'conv_id'"):
        load_workload(workload_config(**cfg, prompt_key_column="conv"), 0)
    with pytest.raises(ConfigError, match="prompt_key_column"):  # mooncake keys come from hash_ids
        workload_config(kind="mooncake", path=str(lt), prompt_key_column="hash")
