"""The framework's stale view (policy.stale_s, framework.view.StaleView) for any policy.

Hand case: least_kv with a 100 ms view picks another worker than with a fresh one, exactly as the
rule (smallest reported s_g + committed tokens, plus what this router sent since) predicts.
"""
from __future__ import annotations

import numpy as np
import pytest

from framework.errors import ConfigError
from framework.runner import run_policy
from tests.test_baselines import make, random_workload, routed, small_cluster, sv


def test_least_kv_with_a_stale_view_chooses_as_predicted():
    fresh, stale = make("least_kv", 2, tie_break="first"), make("least_kv", 2, tie_break="first", stale_s=0.1)
    # t = 0: worker 0 holds 300 tokens, worker 1 none; both read the same counts -> worker 1 for request 0
    t0 = sv(2, ids=[0], prompts=[100], t=0.0, loads=[300, 0])
    assert routed(fresh, t0) == routed(stale, t0) == [1]
    # t = 50 ms: worker 0's request has finished and request 0 is decoding on worker 1 (100 + 20
    # tokens). Fresh: tokens [0, 120] -> worker 0. Stale (no refresh until 100 ms): reported [300, 0]
    # plus the 100 tokens it sent to worker 1 -> [300, 100] -> worker 1.
    t1 = sv(2, ids=[1], prompts=[50], t=0.05, loads=[0, 120], running=[0, 1])
    assert routed(fresh, t1) == [0]
    assert routed(stale, t1) == [1]
    seen = stale.stale_view.view(t1)  # what it decided on (no refresh: same snapshot, same sends)
    assert seen.loads.tolist() == [300, 0] and seen.running.tolist() == [0, 0]
    assert seen.queued.tolist() == [0, 2] and seen.committed_tokens.tolist() == [0, 150]
    assert seen.counters_s == 0.0 and not seen.refreshed and seen.now_s == 0.05
    assert seen.waiting_ids.tolist() == [1] and seen.free_slots.tolist() == t1.free_slots.tolist()
    # t = 100 ms: the publish; both read [0, 190] and agree on worker 0 again
    t2 = sv(2, ids=[2], prompts=[10], t=0.1, loads=[0, 190], running=[0, 2])
    assert routed(fresh, t2) == routed(stale, t2) == [0]
    assert stale.stale_view.refreshes == 2


@pytest.mark.parametrize("policy", ["least_kv", "jsq", "br0", "p2c", {"name": "brh", "classifier": "none"}])
def test_a_view_refreshed_at_every_decision_is_the_fresh_view(policy):
    """stale_s smaller than any step refreshes at every decision: the run is the fresh run exactly."""
    cfg = {"name": policy} if isinstance(policy, str) else policy
    w = random_workload(400, seed=2)
    a = run_policy(cfg, w, small_cluster(), check_invariants=True).result
    b = run_policy({**cfg, "stale_s": 1e-9}, w, small_cluster(), check_invariants=True).result
    np.testing.assert_array_equal(a.req_worker, b.req_worker)
    np.testing.assert_array_equal(a.req_admit_step, b.req_admit_step)


@pytest.mark.parametrize("policy", ["least_kv", "br0"])
def test_a_stale_view_changes_the_run_and_every_request_still_finishes(policy):
    w = random_workload(400, seed=2)
    a = run_policy({"name": policy}, w, small_cluster(), check_invariants=True).result
    b = run_policy({"name": policy, "stale_s": 0.5}, w, small_cluster(), check_invariants=True).result
    assert np.isfinite(b.req_finish_s).all()
    assert (a.req_worker != b.req_worker).any()


@pytest.mark.parametrize("value", [-0.1, float("nan"), "often"])
def test_a_bad_stale_s_names_the_option(value):
    with pytest.raises(ConfigError, match=r"policy\.stale_s=.*\(least_kv\) must be >= 0 seconds"):
        make("least_kv", 2, stale_s=value)
