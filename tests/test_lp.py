"""lp: the BF-IO model (built vectorised, checked against a plain evaluation), its LP by column
generation (= the full LP), rounding that never breaks a limit, the router end to end."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algorithms.opt.highs import HighsSolver
from algorithms.opt.model import build_model
from algorithms.opt.problem import PoolProblem, imbalance_objective, limit_violations, problem_from_view
from algorithms.opt.rounding import greedy_placement, round_placement
from framework.classifier import make_classifier
from framework.placement import validate_placements
from framework.errors import ConfigError
from framework.oracle import OracleChannel
from framework.policy import POOL, PolicyContext, make_policy
from framework.runner import run_policy
from tests.test_br0 import CLUSTER, azure_slice
from tests.test_classifiers import FakeSim, training

# --------------------------------------------------------------------------------------------------
# helpers shared with tests/test_bfio.py


def random_problem(rng: np.random.Generator, N: int, G: int, H: int, q_mode: str = "none",
                   kv_tight: bool = False) -> PoolProblem:
    """A random step: prompts, survival curves (none / shared / per-request), loads, limits."""
    p = rng.integers(1, 60, N)
    h = np.arange(H + 1)
    if q_mode == "none":
        q = np.ones((N, H + 1))
    elif q_mode == "shared":
        q = np.tile(np.cumprod(np.r_[1.0, rng.uniform(0.5, 1.0, H)]), (N, 1))
    else:  # per request, as an oracle's 0/1 answers or an estimate's fractions
        q = np.cumprod(np.c_[np.ones(N), rng.uniform(0.0, 1.0, (N, H)) ** 0.3], axis=1)
        q[rng.random(N) < 0.3] = (np.arange(H + 1) < rng.integers(1, H + 2)).astype(float)
    base = rng.integers(0, 150, G)[:, None] + rng.integers(0, 4, G)[:, None] * h
    slots = rng.integers(0, 4, G)
    kv = rng.integers(0, 120, G) if kv_tight else np.full(G, 10**6)
    return PoolProblem(np.arange(N), p, q * (p[:, None] + h), base, slots, kv,
                       rng.uniform(0.5, 1.0) ** h)


def plain_objective(pb: PoolProblem, assign) -> float:
    """sum_h w_h (G*max_g load_g(h) - sum_g load_g(h)), written out with loops."""
    total = 0.0
    for h in range(pb.H + 1):
        loads = [float(pb.base[g, h]) for g in range(pb.G)]
        for i, g in enumerate(assign):
            if g >= 0:
                loads[g] += float(pb.add[i, h])
        total += pb.weights[h] * (pb.G * max(loads) - sum(loads))
    return total


def brute_force(pb: PoolProblem) -> tuple[int, float]:
    """(most requests that fit, least objective among placements admitting that many)."""
    best = (-1, np.inf)
    for assign in itertools.product(range(-1, pb.G), repeat=pb.N):
        cnt = [0] * pb.G
        tok = [0] * pb.G
        for i, g in enumerate(assign):
            if g >= 0:
                cnt[g] += 1
                tok[g] += int(pb.prompt[i])
        if any(cnt[g] > pb.free_slots[g] or tok[g] > pb.free_kv[g] for g in range(pb.G)):
            continue
        n = sum(c for c in cnt)
        if n < best[0]:
            continue
        f = plain_objective(pb, assign)
        if n > best[0] or f < best[1]:
            best = (n, f)
    return best


def model_matrix(m: dict) -> sp.csc_matrix:
    return sp.csc_matrix((m["value"], m["index"], m["start"]), shape=(m["num_row"], m["num_col"]))


def ctx(G: int, outputs=None, train: bool = False) -> PolicyContext:
    rng = np.random.default_rng(7)
    return PolicyContext(workers=G, max_running=np.full(G, 8), kv_capacity=np.full(G, 10**9),
                         training=training(rng.integers(1, 40, 200), rng.integers(1, 400, 200)) if train
                         else None,
                         oracle_channel=None if outputs is None else OracleChannel(np.asarray(outputs)))


# --------------------------------------------------------------------------------------------------
# the step's problem from the view

PROMPT = [100, 200, 300, 50, 60]
OUT = [5, 3, 10, 4, 1]
RUNNING = [(0, 0, 2), (1, 1, 0), (2, 1, 9)]  # contexts 102 | 200, 309; remaining 3 | 3, 1


def test_problem_from_view_by_hand():
    view = FakeSim(2, PROMPT, RUNNING, [3, 4], committed=[10, 0]).view()
    ids, pr = view.waiting_ids, view.waiting_prompt
    pb = problem_from_view(view, ids, pr, 1, 0.5, None)
    # q = 1: s_g(h) = committed + s_g + n_g*h ; a_i(h) = p_i + h
    assert pb.base.tolist() == [[112, 113], [509, 511]]
    assert pb.add.tolist() == [[50, 51], [60, 61]]
    assert pb.weights.tolist() == [1.0, 0.5]
    assert pb.free_slots.tolist() == [7, 6] and pb.target == 2 and pb.floor == 2
    same = problem_from_view(view, ids, pr, 1, 0.5, make_classifier("none", ctx(2)))
    assert np.array_equal(same.base, pb.base) and np.array_equal(same.add, pb.add)
    # oracle: request 2 (1 step left) is gone at h = 1, candidate 4 (o = 1) too
    orc = problem_from_view(view, ids, pr, 1, 0.5, make_classifier("oracle", ctx(2, OUT)))
    assert orc.base.tolist() == [[112, 113], [509, 201]]
    assert orc.add.tolist() == [[50, 51], [60, 0]]


# --------------------------------------------------------------------------------------------------
# the model


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["none", "shared", "varied"]), st.booleans())
def test_model_encodes_the_objective_and_limits(seed, q_mode, kv_tight):
    """Any valid integral placement, written as columns, satisfies every row and bound of the model and
    its model objective is the imbalance (+ rho per request left out below K); invalid ones do not."""
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(1, 7)), int(rng.integers(1, 4)), int(rng.integers(0, 4)),
                        q_mode, kv_tight)
    model = build_model(pb)
    m = model.arrays()
    A = model_matrix(m)
    samples = [greedy_placement(pb), pb.greedy_count()]
    samples += [np.where(rng.random(pb.N) < 0.5, -1, rng.integers(0, pb.G, pb.N)) for _ in range(30)]
    n_valid = 0
    for assign in samples:
        valid = not limit_violations(pb, assign) and (assign >= 0).sum() >= pb.floor
        elig = np.isin(assign, model.workers) | (assign < 0)
        if not elig.all():  # a worker without a slot or KV room: no columns, and never valid
            assert not valid
            continue
        v = model.column_values(pb, assign)
        rows = A @ v
        tol = 1e-6 * (1 + np.abs(rows))
        ok = (np.all(rows >= m["row_lower"] - tol) and np.all(rows <= m["row_upper"] + tol)
              and np.all(v >= m["col_lower"] - 1e-9) and np.all(v <= m["col_upper"] + 1e-9))
        assert ok == valid
        if valid:
            n_valid += 1
            assert imbalance_objective(pb, assign) == pytest.approx(plain_objective(pb, assign))
            u = pb.target - (assign >= 0).sum()
            obj = m["cost"] @ v + m["offset"]
            assert obj == pytest.approx(plain_objective(pb, assign) + model.rho * u, rel=1e-9, abs=1e-6)
    assert n_valid >= 2  # the two greedy placements always are


def test_factored_envelope_is_small_for_a_shared_curve():
    """Classifier none (a_ih = p_i + h): x columns carry 3 entries, the matrix 3*N*G + O(G*H)."""
    rng = np.random.default_rng(0)
    pb = random_problem(rng, 50, 6, 8, "none")
    pb.free_slots[:] = 3
    model = build_model(pb)
    assert model.xr.shape == (50 * 6, 3)
    assert model.arrays()["num_nz"] < 3 * 50 * 6 + 6 * 9 * 4 + 20
    varied = build_model(random_problem(rng, 50, 6, 8, "varied"))
    assert varied.xr.shape[1] > 3  # the per-request part needs z aggregates


# --------------------------------------------------------------------------------------------------
# the LP


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["none", "shared", "varied"]), st.booleans(),
       st.integers(0, 4))
def test_column_generation_reaches_the_full_lp_optimum(seed, q_mode, kv_tight, H):
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(5, 60)), int(rng.integers(2, 8)), H, q_mode, kv_tight)
    if pb.target == 0:
        return
    model = build_model(pb)
    solver = HighsSolver(batch=int(rng.integers(1, 50)))
    full = solver.solve_lp_full(model)
    cg = solver.solve_lp(model, model.columns_of(greedy_placement(pb)))
    assert full.status == cg.status == "optimal"
    assert cg.objective == pytest.approx(full.objective, rel=1e-7, abs=1e-5)
    # the lower bound behind the greedy certificate is valid
    assert pb.lower_bound() <= full.objective + 1e-6 * (1 + abs(full.objective))


def test_lp_picks_the_fractional_optimum_by_hand():
    """G = 2 empty workers, one slot each... and a third request to leave out: H = 0, sizes 10, 10, 4.
    Admitting the two 10s balances perfectly (imbalance 0), so that is the LP optimum; the rounding
    keeps it."""
    pb = PoolProblem(np.arange(3), [10, 10, 4], [[10.0], [10.0], [4.0]], [[0.0], [0.0]], [1, 1],
                     [100, 100], [1.0])
    model = build_model(pb)
    res = HighsSolver().solve_lp(model, model.columns_of(greedy_placement(pb)))
    assert res.objective == pytest.approx(0.0, abs=1e-9)
    a = round_placement(pb, model.x_req, model.x_wkr, res.x)
    assert sorted(a.tolist()) == [-1, 0, 1] and a[2] == -1


# --------------------------------------------------------------------------------------------------
# rounding


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from(["uniform", "sparse", "huge"]))
def test_rounding_never_breaks_a_limit(seed, kv_tight, x_mode):
    """Whatever fractional x it gets (even one no LP would return), the rounded placement respects free
    slots and free KV, admits no more than K and at least K_lb."""
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(1, 40)), int(rng.integers(1, 7)), 0, "none", kv_tight)
    model = build_model(pb)
    x = rng.random(model.nx)
    if x_mode == "sparse":
        x[rng.random(model.nx) < 0.8] = 0.0
    elif x_mode == "huge":
        x = np.ones(model.nx)  # every pair at 1: hugely infeasible
    # also pairs the model would never create (ineligible workers) must be refused
    req = np.concatenate([model.x_req, rng.integers(0, pb.N, 10)])
    wkr = np.concatenate([model.x_wkr, rng.integers(0, pb.G, 10)])
    x = np.concatenate([x, rng.random(10)])
    a = round_placement(pb, req, wkr, x)
    assert limit_violations(pb, a) == []
    n = int((a >= 0).sum())
    assert pb.floor <= n <= pb.target
    if not kv_tight:
        assert n == pb.target


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_rounding_keeps_an_integral_solution(seed):
    rng = np.random.default_rng(seed)
    pb = random_problem(rng, int(rng.integers(1, 30)), int(rng.integers(1, 6)), 0, "none", False)
    model = build_model(pb)
    target = greedy_placement(pb)
    x = (target[model.x_req] == model.x_wkr).astype(float)
    assert np.array_equal(round_placement(pb, model.x_req, model.x_wkr, x), target)


def test_rounding_by_hand():
    """Largest x first: request 0 takes worker 1 (x = .9), so request 1's best pair (worker 1, .6) finds
    no slot; request 2's pair (worker 0, .5) comes before request 1's second one (.3) and takes the last
    slot: K = 2 placed, request 1 stays out."""
    pb = PoolProblem(np.arange(3), [5, 5, 5], [[5.0]] * 3, [[0.0], [0.0]], [1, 1], [100, 100], [1.0])
    req = np.array([0, 0, 1, 1, 2])
    wkr = np.array([1, 0, 1, 0, 0])
    x = np.array([0.9, 0.1, 0.6, 0.3, 0.5])
    assert round_placement(pb, req, wkr, x).tolist() == [1, -1, 0]


# --------------------------------------------------------------------------------------------------
# the router


KV_BIND = FakeSim(2, [90, 80, 30, 20], [], [0, 1, 2, 3], free_slots=[2, 2], free_kv=[100, 100])


def test_kv_binding_admits_the_most_that_fit():
    """Slots for 4, but only 3 of (90, 80, 30, 20) fit in 2 x 100 KV tokens: lp admits 3 (bfio's test
    checks that the MILP also picks the most balanced triple)."""
    pol = make_policy({"name": "lp", "classifier": "none", "horizon": 0}, ctx(2))
    view = KV_BIND.view()
    pl = pol.decide(view)
    assert len(pl.requests) == 3
    assert (np.bincount(pl.workers, weights=KV_BIND.prompt[pl.requests], minlength=2) <= 100).all()


def test_certified_greedy_skips_the_solver():
    """Worker 0 at 100, worker 1 at 0 and one request of 50: it goes under the envelope on worker 1, the
    imbalance 2*100 - 150 = 50 equals the lower bound, so no LP is solved."""
    sim = FakeSim(2, [100, 50], [(0, 0, 0)], [1], free_slots=[1, 1])
    pol = make_policy({"name": "lp", "classifier": "none", "horizon": 0}, ctx(2))
    pl = pol.decide(sim.view())
    assert pl.requests.tolist() == [1] and pl.workers.tolist() == [1]
    assert pol.stats["certified"] == 1 and pol.stats.get("relaxations", 0) == 0


@pytest.mark.parametrize("name", ["lp", "bfio"])
def test_nothing_fits_admits_nothing_without_a_solver(name):
    """Free slots but no KV room for any candidate (worker 1 has none, worker 0 only 400 tokens)."""
    sim = FakeSim(3, [100, 500, 600], [(0, 0, 0)], [1, 2], free_slots=[1, 2, 0], free_kv=[400, 0, 1000])
    pol = make_policy({"name": name, "classifier": "none", "horizon": 2}, ctx(3))
    assert len(pol.decide(sim.view()).requests) == 0
    assert pol.stats["nothing_fits"] == 1 and "relaxations" not in pol.stats


def test_held_request_is_forced_in_after_max_hold_steps():
    """Worker 0 runs 1000 tokens, worker 1 has the one free slot. Old request 1 (5000 tokens) would lift
    the envelope, each new small request fits under it, so the LP bypasses request 1, until it has been
    held max_hold_steps = 2 times."""
    prompt = [1000, 5000, 100, 100, 100]
    pol = make_policy({"name": "lp", "classifier": "none", "horizon": 0, "max_hold_steps": 2}, ctx(2))
    admitted = []
    for young in (2, 3, 4):
        sim = FakeSim(2, prompt, running=[(0, 0, 0)], pool=[1, young], free_slots=[0, 1])
        admitted.append(pol.decide(sim.view()).requests.tolist())
        if admitted[-1] == [1]:
            break
    assert admitted == [[2], [3], [1]]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["none", "empirical", "oracle"]), st.integers(0, 4))
def test_decisions_are_valid_on_random_views(seed, classifier, H):
    rng = np.random.default_rng(seed)
    G = int(rng.integers(1, 6))
    n_run, n_wait = int(rng.integers(0, 15)), int(rng.integers(1, 30))
    prompt = rng.integers(1, 400, n_run + n_wait)
    out = rng.integers(1, 40, n_run + n_wait)
    running = [(i, int(rng.integers(0, G)), int(rng.integers(0, out[i]))) for i in range(n_run)]
    sim = FakeSim(G, prompt, running, np.arange(n_run, n_run + n_wait), free_slots=rng.integers(0, 5, G),
                  free_kv=rng.integers(0, 2000, G), committed=rng.integers(0, 100, G))
    view = sim.view()
    pol = make_policy({"name": "lp", "classifier": classifier, "horizon": H, "window": 8,
                       "max_hold_steps": int(rng.integers(0, 3))}, ctx(G, out, train=True))
    pl = pol.decide(view)
    assert pol.family == POOL
    validate_placements(pl, view.state, family=POOL, policy="lp")  # the simulator's own rules
    if (view.free_kv >= 400 * np.minimum(view.free_slots, n_wait)).all():  # KV cannot bind
        assert len(pl.requests) == min(n_wait, int(view.free_slots.sum()))


def test_lp_time_limit_still_gives_a_valid_placement():
    """A limit too short for the LP: the router still places K requests within the limits (from the
    last restricted optimum if a round finished, else the greedy placement) and counts the event."""
    rng = np.random.default_rng(5)
    r = random_problem(rng, 300, 16, 4, "varied")
    pb = PoolProblem(r.ids, r.prompt, r.add, r.base, np.full(16, 6), r.free_kv, r.weights)
    pol = make_policy({"name": "lp", "classifier": "none", "lp_time_limit_s": 1e-6}, ctx(16))
    a = pol._solve(pb)
    assert pol.stats.get("relaxation_failed", 0) + pol.stats.get("relaxation_time_limit", 0) == 1
    assert limit_violations(pb, a) == [] and (a >= 0).sum() == pb.target == 96


@pytest.mark.parametrize("key,val", [("window", 0), ("horizon", -1), ("gamma", 0.0), ("gamma", 1.5),
                                     ("max_hold_steps", -1), ("threads", 0), ("column_batch", 0),
                                     ("lp_time_limit_s", -1.0)])
def test_bad_options_are_config_errors(key, val):
    with pytest.raises(ConfigError, match=key):
        make_policy({"name": "lp", "classifier": "none", key: val}, ctx(2))


def test_unknown_classifier_is_a_config_error():
    with pytest.raises(ConfigError, match="oracle"):
        make_policy({"name": "lp", "classifier": "oracel"}, ctx(2))


@pytest.mark.parametrize("cfg", [{"name": "lp", "classifier": "none", "horizon": 0},
                                 {"name": "lp", "horizon": 8, "prompt_bins": 2},
                                 {"name": "lp", "horizon": 4, "classifier": "oracle", "window": 64}])
def test_end_to_end_with_invariants(cfg):
    train = azure_slice(300, start=0, rate_scale=4.0)
    wl = azure_slice(250, start=1000, rate_scale=4.0)
    out = run_policy(cfg, wl, CLUSTER, seed=1, training=train, check_invariants=True)
    s = out.summary
    assert s["requests_completed"] == len(wl)
    assert (out.result.req_worker >= 0).all()
    assert s["oracle_used"] is (cfg.get("classifier") == "oracle")
    assert s["lp_decisions"] == s["decisions"]
    assert s["lp_certified"] + s.get("lp_relaxations", 0) <= s["lp_decisions"]
    assert s["lp_relaxations"] > 0  # the run is loaded enough that the solver is needed
