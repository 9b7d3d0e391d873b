"""bfio: the MILP equals exhaustive search on tiny states, the LP bounds it from below, the time limit
holds and its fallback paths give valid placements, the router end to end."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from algorithms.opt.highs import HighsSolver
from algorithms.opt.model import build_model
from algorithms.opt.problem import PoolProblem, limit_violations
from algorithms.opt.rounding import greedy_placement, integral_solution, round_placement
from algorithms.lp import solve_rounded_lp
from framework.errors import ConfigError
from framework.policy import make_policy
from framework.runner import run_policy
from tests.test_br0 import CLUSTER, azure_slice
from tests.test_lp import KV_BIND, brute_force, ctx, plain_objective, random_problem


def milp(pb: PoolProblem, start=None, time_limit=float("inf")):
    model = build_model(pb)
    return model, HighsSolver(mip_rel_gap=0.0).solve_milp(model, pb, time_limit, start)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
@example(43114, True, True)  # HiGHS 1.16 returned the MIP start's columns with a better objective
def test_milp_equals_exhaustive_search_h0(seed, kv_tight, warm):
    """H = 0, classifier none: the MILP admits the most requests that fit and, among those, reaches the
    least imbalance G*max_g s_g - sum_g s_g that any placement reaches."""
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(1, 6)), int(rng.integers(1, 4)), 0, "none", kv_tight)
    best_n, best_f = brute_force(pb)
    model, res = milp(pb, greedy_placement(pb) if warm else None)
    assert res.status == "optimal"
    a = integral_solution(pb, model, res.x)
    assert a is not None and limit_violations(pb, a) == []
    assert int((a >= 0).sum()) == best_n
    assert plain_objective(pb, a) == pytest.approx(best_f, rel=1e-9, abs=1e-6)
    assert res.objective == pytest.approx(best_f + model.rho * (pb.target - best_n), rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["none", "shared", "varied"]), st.booleans())
def test_milp_equals_exhaustive_search_with_lookahead(seed, q_mode, kv_tight):
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4)),
                        q_mode, kv_tight)
    best_n, best_f = brute_force(pb)
    model, res = milp(pb)
    a = integral_solution(pb, model, res.x)
    assert int((a >= 0).sum()) == best_n
    assert plain_objective(pb, a) == pytest.approx(best_f, rel=1e-8, abs=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["none", "shared", "varied"]), st.booleans(),
       st.integers(0, 3))
def test_lp_is_at_most_milp(seed, q_mode, kv_tight, H):
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(1, 14)), int(rng.integers(1, 5)), H, q_mode, kv_tight)
    if pb.target == 0:
        return
    model, res = milp(pb)
    lp = HighsSolver().solve_lp(model, model.columns_of(greedy_placement(pb)))
    assert res.status == lp.status == "optimal"
    assert lp.objective <= res.objective + 1e-7 * (1 + abs(res.objective))
    # and the rounded LP, a feasible integral placement, is no better than the MILP
    r = round_placement(pb, model.x_req, model.x_wkr, lp.x)
    rounded = plain_objective(pb, r) + model.rho * (pb.target - int((r >= 0).sum()))
    assert rounded >= res.objective - 1e-7 * (1 + abs(res.objective))


def test_kv_binding_picks_the_most_balanced_triple():
    """Only 3 of (90, 80, 30, 20) fit in 2 x 100 KV tokens; the most balanced triple is {90} | {80, 20}:
    imbalance 2*100 - 190 = 10 ({80} | {30, 20} gives 30, {90} | {30, 20} 40, {80, 20} | {30} 70)."""
    pol = make_policy({"name": "bfio", "classifier": "none", "horizon": 0}, ctx(2))
    pl = pol.decide(KV_BIND.view())
    got = sorted(sorted(int(r) for r, w in zip(pl.requests, pl.workers) if w == g) for g in (0, 1))
    assert got == [[0], [1, 3]]


def hard_instance(seed: int = 3, N: int = 60, G: int = 8) -> PoolProblem:
    """Admit-all number partitioning over 8 workers with uneven loads: the MILP cannot close its gap
    in a fraction of a second, and the greedy placement does not attain the bound."""
    rng = np.random.default_rng(seed)
    p = rng.integers(100, 3000, N)
    return PoolProblem(np.arange(N), p, p[:, None].astype(float), rng.integers(0, 2000, G)[:, None],
                       np.full(G, 8), np.full(G, 10**6), np.ones(1))


def test_time_limit_is_respected():
    pb = hard_instance()
    model = build_model(pb)
    t0 = time.perf_counter()
    res = HighsSolver(mip_rel_gap=0.0).solve_milp(model, pb, 0.1, greedy_placement(pb))
    wall = time.perf_counter() - t0
    assert res.status == "time_limit_reached" and res.has_solution
    assert res.bound < res.objective  # not proven optimal: the limit, not the search, ended it
    assert wall < 0.1 + 0.4  # HiGHS checks its clock often; generous slack for a shared CI machine
    a = integral_solution(pb, model, res.x)
    assert a is not None and limit_violations(pb, a) == [] and (a >= 0).sum() == pb.target


def test_router_paths_incumbent_and_fallback():
    """With a workable limit the router keeps the MILP's incumbent; with a limit too short to find one
    (and no warm start) it falls back to the rounded LP, which is exactly what lp would place."""
    pb = hard_instance()
    pol = make_policy({"name": "bfio", "classifier": "none", "horizon": 0, "window": 60,
                       "time_limit_s": 0.05}, ctx(8))
    a = pol._solve(pb)
    assert limit_violations(pb, a) == [] and (a >= 0).sum() == pb.target
    assert pol.stats["milp_time_limit"] == 1 and pol.stats.get("fallback", 0) == 0
    pol = make_policy({"name": "bfio", "classifier": "none", "horizon": 0, "window": 60,
                       "time_limit_s": 1e-6, "warm_start": False}, ctx(8))
    b = pol._solve(pb)
    assert pol.stats["fallback"] == 1 and pol.last_milp.has_solution is False
    lp_pol = make_policy({"name": "lp", "classifier": "none", "horizon": 0}, ctx(8))
    expect, _ = solve_rounded_lp(lp_pol, pb, float("inf"))
    assert np.array_equal(b, expect)
    assert limit_violations(pb, b) == [] and (b >= 0).sum() == pb.target


@pytest.mark.parametrize("key,val", [("time_limit_s", 0.0), ("mip_rel_gap", 1.0), ("window", 0)])
def test_bad_options_are_config_errors(key, val):
    with pytest.raises(ConfigError, match=key):
        make_policy({"name": "bfio", "classifier": "none", key: val}, ctx(2))


@pytest.mark.parametrize("cfg", [{"name": "bfio", "classifier": "none", "horizon": 0},
                                 {"name": "bfio", "horizon": 4, "time_limit_s": 0.02}])
def test_end_to_end_with_invariants(cfg):
    train = azure_slice(300, start=0, rate_scale=4.0)
    wl = azure_slice(200, start=1000, rate_scale=4.0)
    out = run_policy(cfg, wl, CLUSTER, seed=1, training=train, check_invariants=True)
    s = out.summary
    assert s["requests_completed"] == len(wl)
    assert (out.result.req_worker >= 0).all()
    assert s["bfio_decisions"] == s["decisions"]
    assert s["bfio_milp_solves"] > 0
    assert s["bfio_milp_solves"] == (s.get("bfio_milp_optimal", 0) + s.get("bfio_milp_time_limit", 0)
                                     + s.get("bfio_fallback", 0))
