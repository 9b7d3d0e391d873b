"""Hindsight objective J and the offline optimum: hand-computed values, brute force, per-step bounds, the
CLI on instance files (window bounds, width profile and the CLI's flags: test_offline_bounds.py)."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from analysis.objective import objective, step_series, total_load_sum
from analysis.offline import kernels as ks
from analysis.offline.cli import main, read_instance
from analysis.offline.decompose import split_parts
from analysis.offline.milp import _refine, _relaxed_value
from analysis.offline.solve import solve_offline
from framework.errors import PlacementError, TraceFormatError


def naive_loads(a, p, o, w, G):
    """Per-step loads by a plain loop over steps and requests (the reference for the vectorised code)."""
    a, p, o, w = map(np.asarray, (a, p, o, w))
    k0, k1 = int(a.min()), int((a + o).max())
    s = np.zeros((k1 - k0, G), np.int64)
    for k in range(k0, k1):
        for i in range(len(a)):
            if a[i] <= k < a[i] + o[i]:
                s[k - k0, w[i]] += p[i] + k - a[i]
    return s


def brute_force(a, p, o, G):
    """min J over all G**N assignments, vectorised over assignments."""
    a, p, o = map(np.asarray, (a, p, o))
    N = len(a)
    k0, K = int(a.min()), int((a + o).max() - a.min())
    k = np.arange(k0, k0 + K)
    act = (k[None, :] >= a[:, None]) & (k[None, :] < (a + o)[:, None])
    load = np.where(act, p[:, None] + k[None, :] - a[:, None], 0)  # (N, K)
    W = np.array(list(itertools.product(range(G), repeat=N)))  # (A, N)
    s = np.stack([(W == g).astype(np.int64) @ load for g in range(G)], axis=2)  # (A, K, G)
    J = (G * s.max(axis=2) - s.sum(axis=2)).sum(axis=1)
    return int(J.min())


# ---------------------------------------------------------------------------------------------- J

def test_objective_by_hand():
    # r0: load 10, 11, 12 on w0 (steps 0-2); r1: 4, 5 on w1 (steps 0-1); r2: 5 on w1 at step 2
    a, p, o, w = [0, 0, 2], [10, 4, 5], [3, 2, 1], [0, 1, 1]
    ser = step_series(a, p, o, w, 2)
    np.testing.assert_array_equal(ser.loads, [[10, 4], [11, 5], [12, 5]])
    np.testing.assert_array_equal(ser.counts, [[1, 1], [1, 1], [1, 1]])
    np.testing.assert_array_equal(ser.imbalance, [6, 6, 7])
    assert ser.objective == objective(a, p, o, w, 2) == 19
    assert ser.total_compute == 2 * (10 + 11 + 12) == 66
    assert total_load_sum(p, o) == ser.total_load.sum() == 10 + 11 + 12 + 4 + 5 + 5


def test_objective_idle_steps_and_offset_start():
    # two requests separated by idle steps 102..104; G = 3, both on worker 2
    ser = step_series([100, 105], [7, 3], [2, 1], [2, 2], 3)
    assert ser.k0 == 100
    np.testing.assert_array_equal(ser.envelope, [7, 8, 0, 0, 0, 3])
    assert ser.objective == (3 * 7 - 7) + (3 * 8 - 8) + (3 * 3 - 3) == 36


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4).flatmap(lambda G: st.tuples(
    st.just(G), st.lists(st.tuples(st.integers(0, 12), st.integers(0, 30), st.integers(1, 9),
                                   st.integers(0, G - 1)), min_size=1, max_size=12))))
def test_step_series_matches_naive_loop(case):
    G, rows = case
    a, p, o, w = map(list, zip(*rows))
    ser = step_series(a, p, o, w, G)
    np.testing.assert_array_equal(ser.loads, naive_loads(a, p, o, w, G))
    # the numba load matrix (relative steps) agrees too
    a0 = np.asarray(a) - min(a)
    K = int((a0 + np.asarray(o)).max())
    np.testing.assert_array_equal(ks.load_matrix(a0, np.asarray(p), np.asarray(o), np.asarray(w), G, K),
                                  ser.loads)


def test_objective_rejects_bad_input():
    with pytest.raises(PlacementError, match="request 1 is on worker 2; workers are 0..1"):
        objective([0, 0], [1, 1], [1, 1], [0, 2], 2)
    with pytest.raises(TraceFormatError, match="output_tokens of row 0 is 0"):
        objective([0], [1], [0], [0], 1)
    with pytest.raises(TraceFormatError, match="differ in length"):
        objective([0, 1], [1], [1], [0], 1)


# ------------------------------------------------------------------------------------ bounds, segments

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5).flatmap(lambda G: st.tuples(
    st.just(G), st.lists(st.tuples(st.integers(0, 15), st.integers(0, 40), st.integers(1, 12),
                                   st.integers(0, G - 1)), min_size=1, max_size=14))))
def test_step_bounds_never_exceed_any_envelope(case):
    G, rows = case
    a, p, o, w = (np.asarray(c, np.int64) for c in zip(*rows))
    a = a - a.min()
    K = int((a + o).max())
    c = ks.step_bounds(a, p, o, G, K)
    env = step_series(a, p, o, w, G).envelope
    assert np.all(c <= env)
    # with every request on its own worker the envelope is the largest load, which the bound attains
    if len(a) <= G:
        spread = step_series(a, p, o, np.arange(len(a)), G).envelope
        np.testing.assert_array_equal(c, spread)


def test_step_bound_pigeonhole_by_hand():
    # G = 2, three requests active at step 0 with loads 9, 5, 4: two share a worker -> max >= 5 + 4 = 9,
    # mean bound ceil(18/2) = 9, largest 9; with loads 9, 7, 6: max >= 7 + 6 = 13 > ceil(22/2) = 11
    c = ks.step_bounds(np.zeros(3, np.int64), np.array([9, 7, 6]), np.ones(3, np.int64), 2, 1)
    assert c.tolist() == [13]


def test_segment_relaxation_and_refinement_docstring_example():
    # worker 0: prompts 3 and 4 (load 7 + 2k), worker 1: prompt 10 (10 + k), steps 0..6
    a, p, o = np.zeros(3, np.int64), np.array([3, 4, 10]), np.full(3, 7)
    w = np.array([0, 0, 1])
    ser = step_series(a, p, o, w, 2)
    assert ser.envelope.tolist() == [10, 11, 12, 13, 15, 17, 19]
    assert ser.envelope.sum() == 97
    assert 7 * (10 + 19) / 2 == 101.5  # the endpoint/trapezoid charge over-estimates
    zero = np.zeros(7, np.int64)
    bps = np.array([0, 7])
    assert _relaxed_value(bps, ser.loads, zero) == 91  # max of the per-worker sums: a lower bound
    fine = _refine(bps, ser.loads)
    # split where the arg-max moves from worker 1 to worker 0 (step 3, where both are 13: ties go to
    # the lower index)
    assert fine.tolist() == [0, 3, 7]
    assert _relaxed_value(fine, ser.loads, zero) == 97  # exact after refinement


def test_split_parts_at_single_request_steps():
    # r0 alone on steps 0-1, with r1 on 2-3, alone again at 4; r2 starts at 6 after an idle step
    a, p, o = np.array([0, 2, 6, 6]), np.array([5, 1, 2, 3]), np.array([5, 2, 2, 1])
    parts, const = split_parts(a, p, o, 3)
    assert [(pt.u, pt.v) for pt in parts] == [(2, 4), (6, 7)]
    assert parts[0].idx.tolist() == [0, 1]
    assert parts[0].a.tolist() == [0, 0] and parts[0].p.tolist() == [7, 1] and parts[0].o.tolist() == [2, 2]
    assert parts[1].idx.tolist() == [2, 3]
    # single-request steps 0, 1, 4 (r0 loads 5, 6, 9) and 7 (r2 load 3): (G - 1) * load each
    assert const == 2 * (5 + 6 + 9 + 3)


# ------------------------------------------------------------------------------------- optimum

def random_instance(rng, n, spread):
    a = rng.integers(0, spread, n)
    p = rng.integers(1, 25, n)
    o = rng.integers(1, 8, n)
    return a, p, o


def dense_instance(seed, n, spread, max_output):
    """Trace-like sizes, too many requests to prove optimal in a few seconds: interval paths."""
    rng = np.random.default_rng(seed)
    a = np.sort(rng.integers(0, spread, n))
    p = rng.integers(100, 2000, n)
    o = rng.integers(20, max_output, n)
    return a, p, o


@pytest.mark.parametrize("G", [2, 3])
def test_optimum_equals_brute_force(G):
    rng = np.random.default_rng(100 + G)
    cases = 120 if G == 2 else 80
    for case in range(cases):
        n = int(rng.integers(4, 8 if G == 2 else 7))
        a, p, o = random_instance(rng, n, spread=int(rng.integers(1, 10)))
        res = solve_offline(a, p, o, G, time_limit=20, seed=case, search_iters=300)
        best = brute_force(a, p, o, G)
        assert res.status == "optimal", (a, p, o)
        assert res.objective == best, (a, p, o, res.objective, best)
        assert res.lower_bound == best
        assert objective(a, p, o, res.assignment, G) == res.objective


def test_milp_alone_reaches_brute_force_optimum():
    """The MILP (not the search) must prove the optimum from a poor start (everything on worker 0).
    Long outputs make the arg-max switch inside segments, so some cases need a refinement round."""
    from analysis.offline.milp import solve_milp

    rng = np.random.default_rng(5)
    rounds = []
    for _ in range(150):
        G, n = int(rng.integers(2, 4)), int(rng.integers(4, 7))
        a, p, o = rng.integers(0, 4, n), rng.integers(1, 25, n), rng.integers(1, 15, n)
        a = a - a.min()
        c = ks.step_bounds(a, p, o, G, int((a + o).max()))
        w, lb, opt, info = solve_milp(a, p, o, G, np.zeros(n, np.int64), c, time_limit=20)
        best = brute_force(a, p, o, G)
        assert opt and objective(a, p, o, w, G) == best, (G, a, p, o)
        assert G * lb - total_load_sum(p, o) == pytest.approx(best, abs=G * 0.5)
        rounds.append(info["milp_rounds"])
    assert max(rounds) >= 2  # the refinement path ran (and still ended at the brute-force optimum)


def test_known_optimum_identical_triples():
    """Triples of identical requests split over 3 workers balance every step: J* = 0 by construction,
    with too many requests (15) for brute force."""
    rng = np.random.default_rng(3)
    base = [(int(rng.integers(0, 20)), int(rng.integers(50, 500)), int(rng.integers(5, 40))) for _ in range(5)]
    a, p, o = (np.array([b[j] for b in base for _ in range(3)]) for j in range(3))
    perm = rng.permutation(len(a))
    res = solve_offline(a[perm], p[perm], o[perm], 3, time_limit=30)
    assert res.status == "optimal" and res.objective == 0 and res.lower_bound == 0


def test_at_most_g_requests_go_to_distinct_workers():
    a, p, o = np.array([0, 1, 2]), np.array([10, 20, 30]), np.array([5, 5, 5])
    res = solve_offline(a, p, o, 4, time_limit=5)
    assert len(set(res.assignment.tolist())) == 3
    assert res.status == "optimal"
    assert res.objective == objective(a, p, o, [0, 1, 2], 4)


def test_single_worker_is_always_balanced():
    res = solve_offline([0, 1, 1], [5, 6, 7], [3, 2, 2], 1, time_limit=5)
    assert res.objective == 0 and res.lower_bound == 0 and res.status == "optimal"


def test_time_limited_interval_is_certified():
    """A dense instance too large to prove in the time given: LB <= J*, and J is the assignment's J."""
    n = 70
    a, p, o = dense_instance(11, n, 25, 300)
    res = solve_offline(a, p, o, 4, time_limit=3, seed=1)
    assert res.lower_bound <= res.objective
    assert res.objective == objective(a, p, o, res.assignment, 4)
    K = int((a - a.min() + o).max())
    c = ks.step_bounds(a - a.min(), p, o, 4, K)
    assert res.lower_bound >= 4 * int(c.sum()) - total_load_sum(p, o)  # at least the step bound
    d = res.to_dict()
    assert d["gap"] == res.objective - res.lower_bound >= 0
    assert d["gap_compute"] == pytest.approx(d["gap"] / d["total_compute"])
    # an initial assignment is never beaten by the result
    w0 = np.arange(n) % 4
    res2 = solve_offline(a, p, o, 4, time_limit=1, initial=w0, use_milp=False)
    assert res2.objective <= objective(a, p, o, w0, 4)
    assert res2.lower_bound <= res2.objective


# ------------------------------------------------------------------------------------------- CLI

def test_cli_prints_json(tmp_path, capsys):
    f = tmp_path / "inst.csv"
    f.write_text("arrival_step,prompt_tokens,output_tokens\n0,10,3\n0,4,2\n2,5,1\n")
    assert main(["--instance", str(f), "--workers", "2", "--time-limit", "10"]) == 0
    out = json.loads(capsys.readouterr().out)
    # best: r0 alone (10, 11, 12) vs r1 then r2 (4, 5, 5) is 19; r0 with r2 at step 2 is worse
    assert out["objective"] == brute_force([0, 0, 2], [10, 4, 5], [3, 2, 1], 2) == 19
    assert out["status"] == "optimal" and out["lower_bound"] == 19 and out["gap"] == 0
    assert len(out["assignment"]) == 3
    assert out["assignment"][0] != out["assignment"][1]


@pytest.mark.parametrize("text, match", [
    ("arrival_step,prompt_tokens\n0,1\n", "lacks column\\(s\\) output_tokens"),
    ("arrival_step,prompt_tokens,output_tokens\n", "has a header but no requests"),
    ("arrival_step,prompt_tokens,output_tokens\n0,5,2\n1,x,2\n", "line 3: prompt_tokens is 'x'"),
    ("arrival_step,prompt_tokens,output_tokens\n0,5,2\n1,5,0\n", "line 3: output_tokens is '0'"),
    ("arrival_step,prompt_tokens,output_tokens\n-1,5,2\n", "line 2: arrival_step is '-1'"),
    ("arrival_step,prompt_tokens,output_tokens\n1.5,5,2\n", "line 2: arrival_step is '1.5'"),
])
def test_bad_instance_files(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(TraceFormatError, match=match):
        read_instance(f)


def test_cli_reports_user_errors(tmp_path, capsys):
    assert main(["--instance", str(tmp_path / "missing.csv"), "--workers", "2"]) == 2
    assert "does not exist" in capsys.readouterr().err
    f = tmp_path / "empty.csv"
    f.write_text("")
    assert main(["--instance", str(f), "--workers", "2"]) == 2
    assert "is empty" in capsys.readouterr().err
    f.write_text("arrival_step,prompt_tokens,output_tokens\n0,1,1\n")
    assert main(["--instance", str(f), "--workers", "0"]) == 2
    assert "at least one worker" in capsys.readouterr().err
