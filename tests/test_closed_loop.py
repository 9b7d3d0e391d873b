"""Closed-loop arrivals (workload.arrival=closed_loop): a hand-worked case and the waiting invariant."""
from __future__ import annotations

import numpy as np
import pytest

from framework.cluster import ClusterConfig, CostConfig
from framework.workloads.config import workload_config
from framework.errors import ConfigError
from framework.runner import prepare_workload, run_policy
from framework.workload import Workload

ONE_SECOND = CostConfig(c0=1.0)  # step k starts at t = k exactly


def test_two_waiting_on_one_slot_by_hand():
    # G = 1, B = 1, W = 2, outputs 3, 1, 2, 2; prefill is unbounded, so a request decodes from its
    # admission step. Step 0 releases r0, r1; r0 runs steps 0-2. Step 1: only r1 waits -> r2 released.
    # Step 3: r1 runs (one step). Step 4: r3 released, r2 runs 4-5. Step 6: r3 runs 6-7.
    w = Workload("t", np.zeros(4), np.full(4, 10), np.array([3, 1, 2, 2]), closed_loop_waiting=2)
    cl = ClusterConfig(workers=1, max_running=1, kv_capacity_tokens=1000, prefill_chunk_tokens=0,
                       cost=ONE_SECOND)
    for policy in ("least_kv", {"name": "jsq", "mode": "pool"}):  # dispatch and pool forms
        out = run_policy(policy, w, cl, 0, check_invariants=True)
        req = out.requests
        np.testing.assert_array_equal(req["arrival_s"], [0.0, 0.0, 1.0, 4.0])
        np.testing.assert_array_equal(req["admit_step"], [0, 3, 4, 6])
        np.testing.assert_array_equal(req["finish_s"], [3.0, 4.0, 6.0, 8.0])
        assert out.summary["ttft_mean_s"] == pytest.approx((1 + 4 + 4 + 3) / 4)
        assert out.summary["steps"] == 8


def _waiting_per_step(req, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Requests waiting at each step's start after its releases, and requests released by then."""
    rel = req["arrival_s"].to_numpy().astype(np.int64)  # 1 s steps: release time = release step
    adm = req["admit_step"].to_numpy()
    k = np.arange(steps)[:, None]
    return ((rel <= k) & (adm >= k)).sum(axis=1), (rel <= k).sum(axis=1)


@pytest.mark.parametrize("policy", ["least_kv", "br0", "round_robin"])
def test_waiting_stays_at_w_while_requests_remain(policy):
    rng = np.random.default_rng(5)
    n, W = 400, 7
    w = Workload("t", np.zeros(n), rng.integers(1, 300, n), rng.integers(1, 60, n), closed_loop_waiting=W)
    cl = ClusterConfig(workers=4, max_running=3, kv_capacity_tokens=10**6, prefill_chunk_tokens=0,
                       cost=ONE_SECOND)
    out = run_policy(policy, w, cl, 0, check_invariants=True)
    assert out.summary["requests_completed"] == n and out.summary["preemptions"] == 0
    waiting, released = _waiting_per_step(out.requests, out.summary["steps"])
    assert waiting.max() <= W
    assert np.all(waiting[released < n] == W)  # never below W while some request is unreleased
    assert released[-1] == n and waiting.min() == 0  # ... and the pool drains at the end


def test_config_and_loader():
    cfg = workload_config("synthetic", arrival="closed_loop", closed_loop_waiting=16, num_requests=50,
                          train_fraction=0)
    _, w = prepare_workload(cfg, 0)
    assert w.closed_loop_waiting == 16 and len(w) == 50 and w.meta["closed_loop_waiting"] == 16
    _, open_loop = prepare_workload(workload_config("synthetic", arrival="backlog", num_requests=50,
                                                    train_fraction=0), 0)
    assert open_loop.closed_loop_waiting == 0
    np.testing.assert_array_equal(w.output_tokens, open_loop.output_tokens)  # same requests
    with pytest.raises(ConfigError, match="closed_loop_waiting"):
        workload_config("synthetic", arrival="closed_loop", num_requests=5)
