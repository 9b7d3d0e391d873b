"""BR-H: H = 0 is BR-0, the lookahead value by hand and from scratch, classifiers end to end."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.brh import refilled_lifetimes
from algorithms.fscore import horizon_value
from framework.errors import ConfigError
from framework.oracle import OracleChannel
from framework.policy import PolicyContext, make_policy
from framework.runner import run_policy
from tests.test_br0 import CLUSTER, azure_slice
from tests.test_classifiers import FakeSim, training

CLASSIFIERS = ["none", "empirical", "noisy_oracle", "oracle"]


def ctx(G, outputs, seed=0):
    rng = np.random.default_rng(99)
    return PolicyContext(workers=G, max_running=np.full(G, 8), kv_capacity=np.full(G, 10**9), seed=seed,
                         training=training(rng.integers(1, 40, 200), rng.integers(1, 400, 200)),
                         oracle_channel=OracleChannel(np.asarray(outputs)))


def random_sim(rng):
    G = int(rng.integers(1, 5))
    n_run, n_wait = int(rng.integers(0, 15)), int(rng.integers(1, 25))
    N = n_run + n_wait
    prompt = rng.integers(1, 400, N)
    out = rng.integers(1, 40, N)
    running = [(i, int(rng.integers(0, G)), int(rng.integers(0, out[i]))) for i in range(n_run)]
    sim = FakeSim(G, prompt, running, np.arange(n_run, N), free_slots=rng.integers(0, 5, G),
                  free_kv=rng.integers(50, 3000, G), committed=rng.integers(0, 100, G))
    return sim, out


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(CLASSIFIERS), st.booleans(), st.integers(1, 12))
def test_horizon_zero_is_br0(seed, classifier, wc, window):
    rng = np.random.default_rng(seed)
    sim, out = random_sim(rng)
    common = {"work_conserving": wc, "window": window}
    br0 = make_policy({"name": "br0", **common}, ctx(sim.G, out))
    brh = make_policy({"name": "brh", "horizon": 0, "classifier": classifier, **common}, ctx(sim.G, out))
    env = {"decomposition": "envelope", **common}
    br0e = make_policy({"name": "br0", **env}, ctx(sim.G, out))
    brhe = make_policy({"name": "brh", "horizon": 0, "classifier": classifier, **env}, ctx(sim.G, out))
    for _ in range(3):
        a, b = br0e.decide(sim.view()), brhe.decide(sim.view())
        assert a.requests.tolist() == b.requests.tolist() and a.workers.tolist() == b.workers.tolist()
        assert br0e.last_plan.value == brhe.last_plan.value
    for _ in range(3):  # also across decisions (hold counters)
        a, b = br0.decide(sim.view()), brh.decide(sim.view())
        assert a.requests.tolist() == b.requests.tolist() and a.workers.tolist() == b.workers.tolist()
        assert br0.last_plan.value == brh.last_plan.value


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(CLASSIFIERS), st.integers(1, 6),
       st.floats(0.5, 1.0))
def test_plan_value_is_the_discounted_joint_f_score(seed, classifier, H, gamma):
    """Recompute V^H from scratch (loops over requests) for the placement BR-H returned."""
    rng = np.random.default_rng(seed)
    sim, out = random_sim(rng)
    c = ctx(sim.G, out)
    pol = make_policy({"name": "brh", "horizon": H, "gamma": gamma, "classifier": classifier,
                       "decomposition": "envelope"}, c)
    view = sim.view()
    ids = view.waiting_ids[:pol.config.window]
    q = pol.classifier.survival(view, H, ids)
    pl = pol.decide(view)
    s = np.zeros((sim.G, H + 1))
    for r, (g, l) in enumerate(zip(view.running_worker, view.running_prompt + view.running_decoded)):
        for h in range(H + 1):
            s[g, h] += q.running[r, h] * (l + h)
    s += view.committed_tokens[:, None]
    m = s.max(axis=0) - s
    D = np.zeros_like(s)
    pos = {int(r): j for j, r in enumerate(ids)}
    for r, g in zip(pl.requests, pl.workers):
        j = pos[int(r)]
        for h in range(H + 1):
            D[g, h] += q.candidates[j, h] * (view.waiting_prompt[j] + h)
    assert pol.last_plan.value == pytest.approx(horizon_value(D, m, gamma), rel=1e-9, abs=1e-6)


def test_lookahead_sees_a_worker_about_to_drain():
    # both workers carry 100 tokens now; worker 0's request runs 50 more steps, worker 1's ends now.
    # BR-0 sees a tie (index order: worker 0); BR-H with the oracle puts the request on worker 1.
    sim = FakeSim(2, [100, 100, 30], running=[(0, 0, 0), (1, 1, 0)], pool=[2])
    out = [50, 1, 20]
    assert make_policy("br0", ctx(2, out)).decide(sim.view()).workers.tolist() == [0]
    c = ctx(2, out)
    brh = make_policy({"name": "brh", "horizon": 4, "classifier": "oracle"}, c)
    assert brh.decide(sim.view()).workers.tolist() == [1]
    assert c.oracle_used
    # q = 1 everywhere: both workers grow alike, so the tie stays and worker 0 is chosen
    none = make_policy({"name": "brh", "horizon": 4, "classifier": "none"}, ctx(2, out))
    assert none.decide(sim.view()).workers.tolist() == [0]


def test_refilled_lifetimes_by_hand():
    c = np.array([3.0, 81.0, 1.0, 2.0, 2.5])
    assert refilled_lifetimes(c, 80, 2).tolist() == [3.0, 81.0, 81.0, 81.0, 2.5]  # the 2 earliest finishes
    assert refilled_lifetimes(c, 80, 0).tolist() == c.tolist()
    assert refilled_lifetimes(c, 80, 10).tolist() == [81.0] * 5
    assert c.tolist() == [3.0, 81.0, 1.0, 2.0, 2.5]  # the classifier's array is not written


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_refill_pool_drops_only_the_finishes_the_pool_refills(seed, H):
    # backlog >= every running request: every predicted finish is refilled, so the oracle's loads are
    # the no-finish loads of classifier=none and the decisions match; backlog <= 0: refill=none exactly
    sim, out = random_sim(np.random.default_rng(seed))
    view = sim.view()
    backlog = view.num_waiting - int(view.free_slots.sum())
    if 0 < backlog < len(view.running_worker):
        return
    ref = "none" if backlog >= len(view.running_worker) else "oracle"
    opts = {"name": "brh", "horizon": H}
    pool = make_policy({**opts, "classifier": "oracle", "refill": "pool"}, ctx(sim.G, out)).decide(view)
    other = make_policy({**opts, "classifier": ref}, ctx(sim.G, out)).decide(view)
    assert pool.requests.tolist() == other.requests.tolist() and pool.workers.tolist() == other.workers.tolist()


@pytest.mark.parametrize("cfg,key", [({"horizon": -1}, "horizon"), ({"gamma": 0.0}, "gamma"),
                                     ({"gamma": 1.5}, "gamma"), ({"classifier": "orakel"}, "classifier"),
                                     ({"window": 0}, "window"),
                                     ({"refill": "later"}, "refill"),
                                     ({"refill": "pool", "decomposition": "envelope"}, "refill")])
def test_bad_options_are_config_errors(cfg, key):
    with pytest.raises(ConfigError, match=key):
        make_policy({"name": "brh", **cfg}, ctx(2, [1]))


def test_empirical_without_training_says_how_to_fix():
    c = PolicyContext(workers=2, max_running=np.full(2, 8), kv_capacity=np.full(2, 100))
    with pytest.raises(ConfigError, match="train_fraction"):
        make_policy("brh", c)


@pytest.mark.parametrize("classifier", CLASSIFIERS)
def test_end_to_end_with_each_classifier(classifier):
    train = azure_slice(300, start=0, rate_scale=4.0)
    wl = azure_slice(250, start=1000, rate_scale=4.0)
    cfg = {"name": "brh", "horizon": 8, "classifier": classifier}
    if classifier in ("empirical", "survival"):
        cfg["prompt_bins"] = 2  # only these read it; any other classifier rejects it
    out = run_policy(cfg, wl, CLUSTER, seed=2, training=train, check_invariants=True)
    s = out.summary
    assert s["requests_completed"] == len(wl)
    assert s["classifier"] == classifier
    assert s["oracle_used"] is (classifier in ("oracle", "noisy_oracle"))
    if s["oracle_used"]:
        assert s["oracle_components"][0].startswith(f"classifier:{classifier}")


def test_end_to_end_horizon_zero_reproduces_br0():
    wl = azure_slice(300, start=2000, rate_scale=4.0)
    a = run_policy("br0", wl, CLUSTER, seed=0).result
    b = run_policy({"name": "brh", "horizon": 0, "classifier": "none"}, wl, CLUSTER, seed=0).result
    assert np.array_equal(a.req_worker, b.req_worker)
    assert np.array_equal(a.req_admit_step, b.req_admit_step)
    assert np.array_equal(a.step_load, b.step_load)
