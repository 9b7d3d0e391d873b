"""Termination classifiers: hand-worked survival values, shape/monotonicity, oracle access rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.classifiers import EmpiricalClassifier
from framework.classifier import available_classifiers, make_classifier
from framework.errors import ConfigError, OracleAccessError
from framework.oracle import OracleChannel
from framework.policy import PolicyContext, make_policy
from framework.state import ClusterState
from framework.view import ClusterView
from framework.workload import Workload


class FakeSim:
    """A hand-set cluster (shared by the BR-0/BR-H/LP tests); ``view()`` wraps it as a ClusterState.

    prompt/arrival are indexed by request id; ``running`` is a list of (id, worker, decoded) and
    ``pool`` the waiting ids, oldest first.
    """

    def __init__(self, G, prompt, running=(), pool=(), *, B=8, C=10**9, free_slots=None,
                 free_kv=None, committed=None, step=50, now_s=1.5, keys=None):
        self.G, self.step, self.now_s = G, step, now_s
        self.keys = keys
        self.prompt = np.asarray(prompt, np.int64)
        self.arrival = np.linspace(0.0, 1.0, len(self.prompt))
        self.running = list(running)
        self.pool = np.asarray(pool, np.int64)
        self.reserved = np.zeros(G, np.int64) if committed is None else np.asarray(committed, np.int64)
        run_w = np.array([r[1] for r in self.running], np.int64)
        loads = self.prompt[[r[0] for r in self.running]] + np.array([r[2] for r in self.running], np.int64)
        s = np.bincount(run_w, weights=loads, minlength=G).astype(np.int64)
        n = np.bincount(run_w, minlength=G).astype(np.int64)
        self.B = np.full(G, B, np.int64) if free_slots is None else n + np.asarray(free_slots)
        self.C = (np.full(G, C, np.int64) if free_kv is None
                  else s + self.reserved + np.asarray(free_kv, np.int64))

    def view(self) -> ClusterView:
        return ClusterView(ClusterState.build(
            step=self.step, now_s=self.now_s, max_running=self.B, kv_capacity=self.C, prompt=self.prompt,
            arrival_s=self.arrival, running=self.running, waiting=self.pool, reserved=self.reserved,
            keys=self.keys))


def context(G=2, training=None, outputs=None, seed=0) -> PolicyContext:
    return PolicyContext(workers=G, max_running=np.full(G, 8), kv_capacity=np.full(G, 10**9), seed=seed,
                         training=training,
                         oracle_channel=None if outputs is None else OracleChannel(np.asarray(outputs)))


def training(outputs, prompts=None, keys=None) -> Workload:
    o = np.asarray(outputs)
    p = np.full(len(o), 100) if prompts is None else np.asarray(prompts)
    return Workload("train", np.arange(len(o), dtype=float), p, o, prompt_key=keys)


# ids 0..2 running, 3..4 waiting
PROMPT = [100, 200, 300, 50, 60]
OUT = [5, 3, 10, 4, 1]
RUNNING = [(0, 0, 2), (1, 1, 0), (2, 1, 9)]  # remaining steps o - d: 3, 3, 1


def test_registered():
    assert {"none", "empirical", "noisy_oracle", "oracle"} <= set(available_classifiers())
    with pytest.raises(ConfigError, match="Did you mean 'oracle'"):
        make_classifier("oracel", context())


def test_none_is_all_ones():
    sv = make_classifier("none", context()).survival(FakeSim(2, PROMPT, RUNNING, [3, 4]).view(), 3,
                                                     np.array([3, 4]))
    assert sv.running.shape == (3, 4) and sv.candidates.shape == (2, 4)
    assert (sv.running == 1).all() and (sv.candidates == 1).all()


def test_oracle_is_ground_truth_and_flags_the_run():
    ctx = context(outputs=OUT)
    c = make_classifier("oracle", ctx)
    assert ctx.oracle_used and ctx.oracle_users == ["classifier:oracle"]
    sv = c.survival(FakeSim(2, PROMPT, RUNNING, [3, 4]).view(), 4, np.array([3, 4]))
    # running remaining 3, 3, 1: q(h) = [3 > h] etc.
    assert sv.running.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]
    # candidates o = 4, 1
    assert sv.candidates.tolist() == [[1, 1, 1, 1, 0], [1, 0, 0, 0, 0]]


def test_empirical_by_hand():
    # outputs 1, 2, 2, 4, 4, 4, 5, 8: #{o > k} for k = 0..8 is 8, 7, 5, 5, 2, 1, 1, 1, 0
    ctx = context(training=training([1, 2, 2, 4, 4, 4, 5, 8]))
    c = make_classifier("empirical", ctx, min_support=1)
    sv = c.survival(FakeSim(2, PROMPT, RUNNING, [3, 4]).view(), 3, np.array([3, 4]))
    # candidate (d = 0): 8/8, 7/8, 5/8, 5/8
    np.testing.assert_allclose(sv.candidates[0], [1, 7 / 8, 5 / 8, 5 / 8])
    # running d = 2: #{o > 2, 3, 4, 5} / #{o > 2} = 5/5, 5/5, 2/5, 1/5
    np.testing.assert_allclose(sv.running[0], [1, 1, 2 / 5, 1 / 5])
    # d = 9 is beyond the data: the oldest supported age (d = 7, one request) is reused: 1, 0, 0, 0
    np.testing.assert_allclose(sv.running[2], [1, 0, 0, 0])
    # min_support = 2 caps the age at d = 4 (#{o > 4} = 2): q = 2/2, 1/2, 1/2, 1/2
    c2 = make_classifier("empirical", ctx, min_support=2)
    q = c2.q(np.array([100]), np.array([9]), 3)
    np.testing.assert_allclose(q[0], [1, 1 / 2, 1 / 2, 1 / 2])


def test_empirical_prompt_bins_and_thin_bin_fallback():
    # short prompts (10) always produce 1 token, long prompts (1000) always 6
    tr = training([1] * 30 + [6] * 30, prompts=[10] * 30 + [1000] * 30)
    c = make_classifier("empirical", context(training=tr), prompt_bins=2)
    q = c.q(np.array([10, 1000]), np.array([0, 0]), 6)
    assert q.tolist() == [[1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 0]]
    pooled = make_classifier("empirical", context(training=tr), prompt_bins=1).q(np.array([10]),
                                                                                   np.array([0]), 2)
    np.testing.assert_allclose(pooled[0], [1, 0.5, 0.5])
    # explicit edge at 500, but min_support 31 > 30 per bin: both bins fall back to the pooled table
    c3 = make_classifier("empirical", context(training=tr), prompt_bins=[500], min_support=31)
    np.testing.assert_allclose(c3.q(np.array([10, 1000]), np.array([0, 0]), 2), [[1, .5, .5]] * 2)


def test_empirical_needs_training():
    with pytest.raises(ConfigError, match="train_fraction"):
        make_classifier("empirical", context())
    with pytest.raises(ConfigError, match="prompt_bins"):
        make_classifier("empirical", context(training=training([1, 2])), prompt_bins=[5, 3])
    with pytest.raises(ConfigError, match="no option"):
        make_classifier("empirical", context(training=training([1, 2])), accuracy=0.5)


def _ref_empirical(train_o, decoded, H, min_support):
    """Plain formula: #{o > d+h} / #{o > d}, d capped at the oldest age with enough support."""
    o = np.asarray(train_o)
    dmax = max(d for d in range(o.max() + 1) if (o > d).sum() >= min(min_support, len(o)))
    out = []
    for d in decoded:
        d = min(d, dmax)
        out.append([(o > d + h).sum() / (o > d).sum() for h in range(H + 1)])
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60), st.lists(st.integers(0, 60), max_size=20),
       st.integers(0, 8), st.integers(1, 10))
def test_empirical_fast_matches_reference(outs, decoded, H, min_support):
    c = make_classifier("empirical", context(training=training(outs)), min_support=min_support)
    q = c.q(np.full(len(decoded), 100), np.array(decoded, np.int64), H)
    np.testing.assert_allclose(q, _ref_empirical(outs, decoded, H, min_support).reshape(q.shape))


def test_flip_oracle_accuracy_one_is_the_oracle():
    v = FakeSim(2, PROMPT, RUNNING, [3, 4]).view()
    a = make_classifier("flip_oracle", context(outputs=OUT), accuracy=1.0).survival(v, 4, np.array([3, 4]))
    b = make_classifier("oracle", context(outputs=OUT)).survival(v, 4, np.array([3, 4]))
    assert np.array_equal(a.running, b.running) and np.array_equal(a.candidates, b.candidates)


def test_flip_oracle_each_answer_right_with_the_given_probability():
    rng = np.random.default_rng(1)
    n, H, acc = 20000, 6, 0.7
    prompt = np.full(n, 10)
    out = rng.integers(1, 10, n)
    sim = FakeSim(1, prompt, pool=np.arange(n))
    ctx = context(G=1, outputs=out, seed=3)
    c = make_classifier("flip_oracle", ctx, accuracy=acc)
    assert ctx.oracle_used and "flip_oracle" in ctx.oracle_users[0]
    q = c.survival(sim.view(), H, np.arange(n)).candidates
    truth = (out[:, None] > np.arange(H + 1)).astype(float)
    right = (q == truth).mean(axis=0)
    assert right[0] == 1.0
    np.testing.assert_allclose(right[1:], acc, atol=0.015)
    assert (np.diff(q, axis=1) <= 0).all()
    # the same request gets the same answers on every call (errors persist per request)
    again = c.survival(sim.view(), H, np.arange(n)).candidates
    assert np.array_equal(q, again)
    with pytest.raises(ConfigError, match="accuracy"):
        make_classifier("flip_oracle", ctx, accuracy=0.4)


def test_non_oracle_components_cannot_read_ground_truth():
    ctx = context(training=training([1, 2, 3]), outputs=OUT)
    emp = make_classifier("empirical", ctx)
    with pytest.raises(OracleAccessError, match="EmpiricalClassifier"):
        ctx.request_oracle(emp)
    for name in ("br0", "brh"):
        pol = make_policy({"name": name} if name == "br0" else {"name": name, "classifier": "none"}, ctx)
        with pytest.raises(OracleAccessError):
            ctx.request_oracle(pol)
        with pytest.raises(OracleAccessError):
            ctx.request_oracle(pol.classifier if name == "brh" else pol)
    assert not ctx.oracle_used
    # an oracle component in a run without a channel (a live backend) is refused too
    with pytest.raises(OracleAccessError, match="channel"):
        make_classifier("oracle", context())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10), st.sampled_from(["none", "empirical", "noisy_oracle",
                                                                   "oracle", "survival", "exact_match",
                                                                   "flip_oracle"]))
def test_every_classifier_returns_valid_survival(seed, H, name):
    rng = np.random.default_rng(seed)
    n_run, n_wait = int(rng.integers(0, 12)), int(rng.integers(0, 6))
    N = n_run + n_wait
    prompt = rng.integers(1, 500, N)
    out = rng.integers(1, 30, N)
    running = [(i, int(rng.integers(0, 3)), int(rng.integers(0, out[i]))) for i in range(n_run)]
    sim = FakeSim(3, prompt, running, np.arange(n_run, N), keys=rng.integers(-1, 3, N))
    ctx = context(G=3, training=training(rng.integers(1, 30, 50), rng.integers(1, 500, 50),
                                         rng.integers(0, 3, 50)), outputs=out)
    params = {"empirical": {"prompt_bins": 3, "min_support": 3}, "flip_oracle": {"accuracy": 0.8},
              "noisy_oracle": {"noise_low": 0.5, "noise_high": 1.0}, "exact_match": {"match_support": 2}}
    c = make_classifier(name, ctx, **params.get(name, {}))
    cand = np.arange(n_run, N)[: int(rng.integers(0, n_wait + 1))]
    sv = c.survival(sim.view(), H, cand)
    assert sv.running.shape == (n_run, H + 1) and sv.candidates.shape == (len(cand), H + 1)
    for q in sv:
        assert (q[:, 0] == 1).all() and ((q >= 0) & (q <= 1)).all()
        assert (np.diff(q, axis=1) <= 1e-12).all()


def test_empirical_is_a_termination_classifier_not_an_oracle():
    assert not EmpiricalClassifier.is_oracle


# --- the paper's predictors (algorithms/predictors.py) -------------------------------------------------
def test_survival_is_empirical_under_the_paper_name():
    ctx = context(training=training([1, 3, 3, 8, 9], [10, 20, 30, 40, 50]))
    v = FakeSim(2, PROMPT, RUNNING, [3, 4]).view()
    a = make_classifier("survival", ctx, min_support=1).survival(v, 5, np.array([3, 4]))
    b = make_classifier("empirical", ctx, min_support=1).survival(v, 5, np.array([3, 4]))
    assert np.array_equal(a.running, b.running) and np.array_equal(a.candidates, b.candidates)


def test_exact_match_uses_the_prompts_own_outputs_and_falls_back():
    # key 7 seen 3 times with outputs 2, 2, 4; key 8 once (below match_support 2): pooled
    tr = training([2, 2, 4, 10, 10, 10], keys=[7, 7, 7, 8, 9, 9])
    ctx = context(training=tr)
    c = make_classifier("exact_match", ctx, match_support=2, min_support=1)
    keys = [-1, -1, -1, 7, 8]
    v = FakeSim(2, PROMPT, RUNNING, [3, 4], keys=keys).view()  # candidates 3 (key 7) and 4 (key 8)
    q = c.survival(v, 3, np.array([3, 4])).candidates
    # key 7: P(o > h) for h = 0..3 = 1, 1, 1/3, 1/3
    np.testing.assert_allclose(q[0], [1, 1, 1 / 3, 1 / 3])
    # key 8: pooled over all 6: #{o > h}/6 = 6/6, 6/6, 4/6, 4/6
    np.testing.assert_allclose(q[1], [1, 1, 4 / 6, 4 / 6])
    # without keys (the shared traces) it is survival exactly, whatever the prompt lengths
    v0 = FakeSim(2, PROMPT, RUNNING, [3, 4]).view()
    surv = make_classifier("survival", ctx, min_support=1)
    for a, b in zip(c.survival(v0, 3, np.array([3, 4])), surv.survival(v0, 3, np.array([3, 4]))):
        np.testing.assert_array_equal(a, b)


def test_noisy_oracle_is_o_times_a_uniform_factor():
    rng = np.random.default_rng(0)
    n = 20000
    out = rng.integers(50, 100, n)
    sim = FakeSim(1, np.full(n, 10), pool=np.arange(n))
    ctx = context(G=1, outputs=out, seed=1)
    c = make_classifier("noisy_oracle", ctx, noise_low=0.2, noise_high=0.5)
    assert ctx.oracle_used and "noisy_oracle" in ctx.oracle_users[0]
    q = c.survival(sim.view(), 200, np.arange(n)).candidates
    o_est = q.sum(axis=1)  # q(h) = [o_est > h]: o_est = number of ones
    ratio = o_est / out
    assert ratio.min() >= 0.8 - 0.01 and ratio.max() <= 1.5 + 0.01
    assert abs(ratio.mean() - 1.15) < 0.01
    zero = make_classifier("noisy_oracle", context(G=1, outputs=out), noise_low=0, noise_high=0)
    truth = make_classifier("oracle", context(G=1, outputs=out))
    assert np.array_equal(zero.survival(sim.view(), 200, np.arange(n)).candidates,
                          truth.survival(sim.view(), 200, np.arange(n)).candidates)
    with pytest.raises(ConfigError, match="noise_low"):
        make_classifier("noisy_oracle", ctx, noise_low=1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 12), st.sampled_from(["empirical", "survival", "exact_match",
                                                                   "oracle", "none"]))
def test_expected_lifetime_is_the_sum_of_the_survival_curve(seed, H, name):
    rng = np.random.default_rng(seed)
    n = 15
    prompt = rng.integers(1, 5, n)
    out = rng.integers(1, 30, n)
    running = [(i, int(rng.integers(0, 2)), int(rng.integers(0, out[i]))) for i in range(n)]
    keys = rng.integers(-1, 4, n)  # some unknown (-1), the rest from 4 prompts the training split has
    sim = FakeSim(2, prompt, running, keys=keys)
    ctx = context(training=training(rng.integers(1, 30, 60), rng.integers(1, 5, 60), rng.integers(0, 4, 60)),
                  outputs=out)
    params = {"empirical": {"prompt_bins": 2, "min_support": 3}, "exact_match": {"match_support": 2}}
    c = make_classifier(name, ctx, **params.get(name, {}))
    v = sim.view()
    np.testing.assert_allclose(c.expected_lifetime(v, H), c.survival(v, H, np.empty(0, np.int64)).running.sum(1))


def test_an_option_the_chosen_classifier_never_reads_is_an_error():
    """accuracy belongs to flip_oracle; with noisy_oracle it would silently change nothing."""
    from framework.classifier import ClassifierOptions, classifier_from_options
    from framework.errors import ConfigError
    from framework.oracle import OracleChannel
    from framework.policy import PolicyContext

    ctx = PolicyContext(workers=2, max_running=[4, 4], kv_capacity=[100, 100],
                        oracle_channel=OracleChannel(np.array([5, 6])))
    with pytest.raises(ConfigError, match=r"policy.accuracy=0.8 has no effect with policy.classifier=noisy_oracle"):
        classifier_from_options(ClassifierOptions(classifier="noisy_oracle", accuracy=0.8), ctx)
    clf = classifier_from_options(ClassifierOptions(classifier="noisy_oracle", noise_low=0.3, noise_high=0.3), ctx)
    assert clf is not None
