"""Simulator: hand-computed steps, invariants on every step of random runs, determinism, bad placements."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import tests._policies as tp
from framework.cluster import ClusterConfig, CostConfig
from framework.errors import ConfigError, PlacementError
from framework.runner import run_policy
from framework.workload import Workload

pytestmark = pytest.mark.usefixtures("test_policies")


def wl(arr, p, o, name="t"):
    return Workload(name, np.asarray(arr, float), np.asarray(p), np.asarray(o))


def run_map(w, mapping, cluster, check=True):
    tp.FixedMap.MAP = mapping
    return run_policy("_test_fixed_map", w, cluster, 0, check_invariants=check)


def test_fixed_cost_steps_by_hand():
    w = wl([0.0, 0.0, 1.5], [10, 4, 5], [3, 2, 1])
    out = run_map(w, {0: 0, 1: 1, 2: 1}, ClusterConfig(workers=2, cost=CostConfig(c0=1.0)))
    r = out.result
    assert r.steps == 3
    np.testing.assert_array_equal(r.step_load, [[10, 4], [11, 5], [12, 5]])
    np.testing.assert_array_equal(r.step_running, [[1, 1], [1, 1], [1, 1]])
    np.testing.assert_allclose(r.step_t_start, [0, 1, 2])
    np.testing.assert_allclose(r.req_first_token_s, [1, 1, 3])
    np.testing.assert_allclose(r.req_finish_s, [3, 2, 3])
    np.testing.assert_array_equal(r.req_admit_step, [0, 0, 2])
    s = out.summary
    assert s["avg_dp_imbalance"] == pytest.approx((3 / 10 + 3 / 11 + 3.5 / 12) / 3)
    assert s["balance_ratio"] == pytest.approx((7 / 10 + 8 / 11 + 8.5 / 12) / 3)
    assert s["imbalance_tokens"] == 19
    assert s["ttft_p50_s"] == pytest.approx(1.0)
    assert s["tpot_p50_s"] == pytest.approx(1.0)
    assert s["throughput_tokens_per_s"] == pytest.approx(6 / 3.0)
    assert s["idle_fraction"] == 0.0
    assert s["request_steps"] == 6


def test_load_dependent_cost_and_chunked_prefill_by_hand():
    cost = CostConfig(c0=1.0, c_seq=0.1, c_kv=0.01, c_pf=0.001, c_sync=0.5)
    cl = ClusterConfig(workers=2, prefill_chunk_tokens=6, cost=cost)
    out = run_map(wl([0, 0], [10, 4], [2, 1]), {0: 0, 1: 1}, cl)
    r = out.result
    np.testing.assert_allclose(r.step_duration, [1.644, 1.704, 1.71])
    np.testing.assert_allclose(r.step_compute, [[1.006, 1.144], [1.204, 1.0], [1.21, 1.0]])
    np.testing.assert_array_equal(r.step_prefill, [[6, 4], [4, 0], [0, 0]])
    np.testing.assert_array_equal(r.req_admit_step, [1, 0])
    np.testing.assert_allclose(r.req_first_token_s, [3.348, 1.644])
    np.testing.assert_allclose(r.req_finish_s, [5.058, 1.644])
    assert out.summary["idle_fraction"] == pytest.approx(3.552 / 10.116)


def test_idle_cluster_jumps_to_next_arrival():
    out = run_map(wl([0, 100.0], [5, 5], [1, 2]), {0: 0, 1: 0}, ClusterConfig(workers=2, cost=CostConfig(c0=1.0)))
    np.testing.assert_allclose(out.result.step_t_start, [0, 100, 101])
    np.testing.assert_allclose(out.result.req_finish_s, [1, 102])


def test_kv_overflow_preempts_newest_and_keeps_it_on_its_worker():
    cl = ClusterConfig(workers=1, max_running=10, kv_capacity_tokens=25, cost=CostConfig(c0=1.0))
    out = run_map(wl([0, 0], [10, 10], [6, 6]), {0: 0, 1: 0}, cl)
    r = out.result
    assert r.step_load[:, 0].tolist() == [20, 22, 24, 13, 14, 15, 13, 14, 15]
    assert r.req_preemptions.tolist() == [0, 1]
    np.testing.assert_allclose(r.req_finish_s, [6.0, 9.0])
    np.testing.assert_allclose(r.req_first_token_s, [1.0, 1.0])
    assert r.request_steps == 12


def test_request_larger_than_kv_capacity_is_a_config_error():
    with pytest.raises(ConfigError, match="kv_capacity_tokens"):
        run_map(wl([0], [30], [5]), {}, ClusterConfig(workers=1, kv_capacity_tokens=20))


def test_pool_policy_overfilling_a_worker_is_rejected():
    w = wl(np.zeros(5), [5] * 5, [3] * 5)
    with pytest.raises(PlacementError, match="free slot"):
        run_policy("_test_bad_overfill", w, ClusterConfig(workers=2, max_running=2), 0)


def test_dispatch_policy_must_place_every_arrival():
    from framework.policy import DISPATCH, Policy, scoped_policy
    from framework.view import Placements

    class Lazy(Policy):
        family = DISPATCH

        def decide(self, view):
            return Placements.of(view.waiting_ids[:1], [0])

    with scoped_policy("_test_lazy_dispatch", Lazy), \
            pytest.raises(PlacementError, match="must place every new request"):
        run_policy("_test_lazy_dispatch", wl([0, 0], [5, 5], [2, 2]), ClusterConfig(workers=2), 0)


def test_unknown_policy_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="_test_fixed_map"):
        run_policy("_test_fixed_mapp", wl([0], [5], [2]), ClusterConfig(workers=2), 0)


workloads = st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0, 3, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.integers(1, 30), min_size=n, max_size=n),
    st.lists(st.integers(1, 25), min_size=n, max_size=n)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads, st.integers(1, 4), st.integers(1, 4), st.integers(0, 40),
       st.sampled_from(["_test_fixed_map", "_test_pool_first_fit"]), st.booleans())
def test_invariants_on_every_step_of_random_runs(data, G, B, chunk, policy, load_cost):
    arr, p, o = data
    arr = np.cumsum(arr)
    p, o = np.asarray(p), np.asarray(o)
    C = int((p + o).max() + 10)  # tight enough to force queueing and preemptions
    cost = CostConfig(c0=0.01, c_seq=0.001 * load_cost, c_kv=1e-4 * load_cost, c_pf=1e-5 * load_cost)
    cl = ClusterConfig(workers=G, max_running=B, kv_capacity_tokens=C, prefill_chunk_tokens=chunk, cost=cost)
    w = wl(arr, p, o)
    tp.FixedMap.MAP = {}
    out = run_policy(policy, w, cl, 0, check_invariants=True)  # checks s_g, n_g, capacity, T each step
    r = out.result
    # every request completes once, on one worker, after it arrived and started
    assert np.isfinite(r.req_finish_s).all()
    assert ((r.req_worker >= 0) & (r.req_worker < G)).all()
    assert (r.req_first_token_s >= w.arrival_s).all() and (r.req_finish_s >= r.req_first_token_s).all()
    # loads add up: each request contributes p + d for d = 0..o-1, preempted or not
    assert r.step_load.sum() == int(np.sum(o * p + o * (o - 1) // 2))
    assert r.step_running.sum() == int(o.sum()) == r.request_steps
    # per-step limits
    assert (r.step_running <= B).all() and (r.step_load <= C).all()
    np.testing.assert_allclose(r.step_duration, r.step_compute.max(axis=1) + cost.c_sync)


def test_same_seed_same_summary_bit_for_bit():
    rng = np.random.default_rng(3)
    w = wl(np.cumsum(rng.exponential(0.02, 400)), rng.integers(1, 500, 400), rng.integers(1, 200, 400))
    cl = ClusterConfig(workers=4, max_running=16, kv_capacity_tokens=20000,
                       cost=CostConfig(c0=0.02, c_seq=1e-4, c_kv=1e-7, c_pf=1e-5))
    a = run_policy("_test_pool_first_fit", w, cl, 7).summary
    b = run_policy("_test_pool_first_fit", w, cl, 7).summary
    volatile = {"decision_ms_p50", "decision_ms_p99", "decision_ms_max", "sim_wall_s", "request_steps_per_s"}
    assert {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}


def test_kv_watermark_holds_back_admission():
    cl = ClusterConfig(workers=1, kv_capacity_tokens=100, kv_watermark=0.2, cost=CostConfig(c0=1.0))
    out = run_map(wl([0, 0], [50, 30], [1, 1]), {0: 0, 1: 0}, cl)
    # 50 + 30 = 80 fits the 80 admissible tokens; a 31-token prompt would not
    assert out.result.req_admit_step.tolist() == [0, 0]
    out = run_map(wl([0, 0], [50, 31], [1, 1]), {0: 0, 1: 0}, cl)
    assert out.result.req_admit_step.tolist() == [0, 1]
    with pytest.raises(ConfigError, match="kv_watermark"):
        run_map(wl([0], [90], [1]), {}, cl)
