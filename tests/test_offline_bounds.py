"""Offline optimum, second half: window lower bounds (in this process and a second one), the width
profile, the MILP proof's columns, retries, and the CLI's flags and output."""
from __future__ import annotations

import itertools
import json
import numpy as np
import pytest
from analysis.objective import objective, step_series, total_load_sum
from analysis.offline import kernels as ks
from analysis.offline.cli import main
from analysis.offline.solve import solve_offline
from framework.errors import ConfigError
from tests.test_offline_optimum import dense_instance


# ------------------------------------------------------------------------------------ window bounds

def brute_envelopes(a, p, o, G):
    """Envelope per step (rows) of every assignment (G**N rows), relative steps."""
    a, p, o = map(np.asarray, (a, p, o))
    K = int((a + o).max())
    k = np.arange(K)
    act = (k[None, :] >= a[:, None]) & (k[None, :] < (a + o)[:, None])
    load = np.where(act, p[:, None] + k[None, :] - a[:, None], 0)
    W = np.array(list(itertools.product(range(G), repeat=len(a))))
    s = np.stack([(W == g).astype(np.int64) @ load for g in range(G)], axis=2)
    return s.max(axis=2)  # (A, K)


def test_window_bounds_are_valid_and_bite():
    from analysis.offline.bounds import combine, event_windows, window_bound, window_lower_bound

    rng = np.random.default_rng(21)
    gained = 0
    for _ in range(40):
        G, n = int(rng.integers(2, 4)), int(rng.integers(4, 7))
        a, p, o = rng.integers(0, 6, n), rng.integers(1, 30, n), rng.integers(1, 9, n)
        a = a - a.min()
        K = int((a + o).max())
        c = ks.step_bounds(a, p, o, G, K)
        env = brute_envelopes(a, p, o, G)
        for bmax in (1, 2, 4):
            wins = event_windows(a, o, bmax, 50)
            assert wins[0][0] == 0 and wins[-1][1] == K
            assert all(v1 == u2 for (_, v1), (u2, _) in zip(wins, wins[1:]))  # a tiling
            done = []
            for u, v in wins:
                lb, solved = window_bound(a, p, o, G, c, u, v, 10)
                assert solved
                # no assignment has a smaller envelope over the window
                assert lb <= env[:, u:v].sum(axis=1).min() + 1e-6
                assert lb >= c[u:v].sum() - 1e-9
                gained += lb > c[u:v].sum() + 0.5
                done.append((u, v, lb))
            assert c.sum() - 1e-6 <= combine(c, done) <= env.sum(axis=1).min() + 1e-6
        e_lb, _, _ = window_lower_bound(a, p, o, G, c, 10.0, levels=(2, 4))
        assert e_lb <= env.sum(axis=1).min() + 1e-6
    assert gained > 0  # stickiness shows: some windows beat the per-step bound


def test_window_bounds_in_a_second_process():
    """jobs=2 runs the window bounds beside the search: same validity (LB <= J, at least the step
    bound), and the bounds come back (windows counted)."""
    a, p, o = dense_instance(12, 60, 40, 200)
    res = solve_offline(a, p, o, 4, time_limit=10, seed=0, use_milp=False, jobs=2)
    assert res.objective == objective(a, p, o, res.assignment, 4)
    K = int((a - a.min() + o).max())
    c = ks.step_bounds(a - a.min(), p, o, 4, K)
    assert 4 * int(c.sum()) - total_load_sum(p, o) <= res.lower_bound <= res.objective
    assert res.details["windows"] > 0 and "window_errors" not in res.details
    with pytest.raises(ConfigError, match="jobs=0"):
        solve_offline(a, p, o, 4, time_limit=1, jobs=0)


def test_window_job_failure_is_reported_not_fatal():
    from analysis.offline.bounds import WindowBoundJob

    a, p, o = np.array([0, 1, 2]), np.array([5, 6, 7]), np.array([3, 3, 3])
    job = WindowBoundJob(a, p, o, 2, np.zeros(1, np.int64), 2.0, (2,))  # c too short: fails in the child
    assert job.result() is None
    assert "IndexError" in job.error


# ------------------------------------------------------------------------------------ width profile

def test_profile_without_windows_is_envelope_minus_step_bound():
    """No MILP, no windows, one part left open: one block's width is exactly the interval's width,
    G * (sum of the envelope - sum of c); blocks tile the steps and their widths add up to it."""
    from analysis.offline.bounds import ceil_bound

    a, p, o = dense_instance(31, 70, 25, 300)
    res = solve_offline(a, p, o, 4, time_limit=1, use_milp=False, use_windows=False, jobs=1)
    assert res.status == "time_limit" and res.parts == 1
    K = int((a - a.min() + o).max())
    c = ks.step_bounds(a - a.min(), p, o, 4, K)
    env = step_series(a, p, o, res.assignment, 4).envelope
    np.testing.assert_array_equal(res.bounds.lower, c)
    np.testing.assert_array_equal(res.bounds.envelope, env)
    (one,) = res.bounds.blocks(1)
    # the bound is rounded as the solver rounds it (a 1e-6 relative allowance, then up)
    assert one["steps"] == [0, K] and one["width"] == res.gap == 4 * (int(env.sum()) - ceil_bound(c.sum()))
    assert one["share_of_width"] == 1.0 and one["width_rel_compute"] == pytest.approx(res.gap_compute)
    rows = res.bounds.blocks(5)
    assert [r["steps"][0] for r in rows[1:]] == [r["steps"][1] for r in rows[:-1]]
    assert rows[0]["steps"][0] == 0 and rows[-1]["steps"][1] == K
    # without windows every block's bound is its sum of c: the widths add up (rounding aside)
    assert sum(r["width"] for r in rows) == 4 * sum(int(env[x:y].sum()) - ceil_bound(c[x:y].sum())
                                                   for x, y in (r["steps"] for r in rows))
    assert res.gap - 4 * 5 <= sum(r["width"] for r in rows) <= res.gap + 4 * 5
    assert sum(r["share_of_width"] for r in rows) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="blocks=0"):
        res.bounds.blocks(0)


def test_profile_with_windows_and_proven_parts():
    """Window rows lift block bounds but never above the envelope; a proven instance has no width."""
    a, p, o = dense_instance(12, 60, 40, 200)
    res = solve_offline(a, p, o, 4, time_limit=6, use_milp=False, jobs=1)
    assert res.status == "time_limit" and res.bounds.windows
    assert (res.bounds.lower <= res.bounds.envelope).all()
    rows = res.bounds.blocks(4)
    assert all(r["width"] >= 0 for r in rows)
    assert sum(r["width"] for r in rows) >= res.gap  # block bounds drop windows crossing their edges
    (one,) = res.bounds.blocks(1)
    assert one["width"] == res.gap  # the same LP as the solver's bound, rounded the same way
    small = solve_offline([0, 0, 2], [10, 4, 5], [3, 2, 1], 2, time_limit=10)
    assert small.status == "optimal"
    assert all(r["width"] == 0 for r in small.bounds.blocks(3))
    np.testing.assert_array_equal(small.bounds.lower, small.bounds.envelope)


def test_cli_profile(tmp_path, capsys):
    f = tmp_path / "inst.csv"
    f.write_text("arrival_step,prompt_tokens,output_tokens\n0,10,3\n0,4,2\n2,5,1\n")
    assert main(["--instance", str(f), "--workers", "2", "--profile", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["steps"] for r in out["profile"]] == [[0, 2], [2, 3]]
    assert all(r["width"] == 0 for r in out["profile"])
    assert main(["--instance", str(f), "--workers", "2", "--profile", "-1"]) == 2
    assert "--profile -1" in capsys.readouterr().err


def test_milp_proof_reads_only_columns_that_carry_the_reported_objective():
    """The optimality proof reads the returned columns; HiGHS 1.16 can return a MIP start's columns
    while reporting a better objective, and then the proof must not use them."""
    import types

    import pulp

    from algorithms.opt.highs import reports_its_columns

    prob = pulp.LpProblem("t", pulp.LpMinimize)
    x = prob.add_variable("x", 0, 1, cat="Binary")
    prob += 3 * x + 2
    prob += x >= 1
    prob.solve(pulp.HiGHS(msg=False))
    assert reports_its_columns(prob.solverModel)  # 5 = 5, whether pulp passed the constant or not

    def fake(status, reported, cols=(1.0,)):
        ns = types.SimpleNamespace
        return ns(getInfo=lambda: ns(primal_solution_status=status, objective_function_value=reported),
                  getLp=lambda: ns(col_cost_=[3.0], offset_=2.0), getSolution=lambda: ns(col_value=list(cols)))

    assert not reports_its_columns(fake(2, 4.0))  # columns worth 5, 4 reported
    assert reports_its_columns(fake(2, 5.0 + 1e-9))
    assert not reports_its_columns(fake(2, 5.0, cols=(0.0,)))  # columns worth 2, 5 reported
    assert reports_its_columns(fake(0, 4.0))  # no solution: nothing to mislead
    assert not reports_its_columns(fake(2, 5.0), cost=np.array([3.0]), offset=0.0)  # the caller's cost


def test_retry_inconsistent_stops_when_consistent_or_out_of_time():
    from algorithms.opt.highs import retry_inconsistent

    calls = []

    def attempt(answers):
        def run(k, left):
            calls.append((k, left))
            return answers[k]
        return run

    assert retry_inconsistent(attempt([True, True]), 2, 10.0)
    assert [k for k, _ in calls] == [0] and calls[0][1] == 10.0  # the first try gets the whole limit
    calls.clear()
    assert not retry_inconsistent(attempt([False, False]), 2, 10.0)
    assert [k for k, _ in calls] == [0, 1] and 9.0 < calls[1][1] <= 10.0
    calls.clear()
    assert retry_inconsistent(attempt([False, True]), 2, 10.0)
    calls.clear()
    assert not retry_inconsistent(attempt([False, True]), 2, 0.05, min_left=0.1)  # no time for a second
    assert [k for k, _ in calls] == [0]


def test_cli_names_the_flag_and_stdout_is_one_json_line(tmp_path):
    """A missing --instance names --instance (not workload.path); stdout is exactly one JSON document
    ending in a newline, with HiGHS's banner on stderr."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "analysis.offline_optimum", "--instance", str(tmp_path / "no.csv"),
                        "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "check --instance" in r.stderr and "workload.path" not in r.stderr
    f = tmp_path / "inst.csv"
    f.write_text("arrival_step,prompt_tokens,output_tokens\n0,10,3\n0,4,2\n2,5,1\n1,6,4\n")
    r = subprocess.run([sys.executable, "-m", "analysis.offline", "--instance", str(f), "--workers", "2",
                        "--time-limit", "5"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("}\n") and r.stdout.count("\n") == 1
    assert json.loads(r.stdout)["status"] == "optimal"
    assert "HiGHS" not in r.stdout


def test_progress_hears_every_part(capsys):
    from analysis.offline.cli import SolveProgress

    seen = []
    a = np.array([0, 0, 10, 10, 10]); p = np.array([5, 6, 7, 3, 4]); o = np.array([3, 3, 4, 4, 4])
    solve_offline(a, p, o, 2, time_limit=5, progress=lambda st, q, n: seen.append((st, q, n)))
    assert seen[-1] == ("done", 2, 2) and {q for st, q, n in seen if st == "search"} == {0, 1}
    bar = SolveProgress(5.0, enabled=True)
    with bar:
        bar("MILP", 0, 3)
        bar._draw()
    assert "part 1/3: MILP" in capsys.readouterr().err
