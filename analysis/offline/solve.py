"""``solve_offline``: the time budget over the busy parts (search, window bounds, MILP) and the result.

One entry point for the CLI, analysis.regret and the benchmarks, so all get the same certified interval.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analysis.objective import as_requests, check_assignment, step_series, total_load_sum
from analysis.offline import kernels as ks
from analysis.offline.bounds import BoundProfile, WindowBoundJob, ceil_bound, window_lower_bound
from analysis.offline.decompose import split_parts
from analysis.offline.milp import nonzeros, solve_milp
from analysis.offline.search import energy, search_incumbent
from framework.cpus import default_jobs
from framework.errors import ConfigError

# Bumped whenever a change can move results (the search or the bounds), so that stored results made by
# an older solver (regret.json) are recomputed rather than reused. 2: annealing on the clock (it had
# stopped at about 40% of its budget, so older upper bounds are looser). 3: a proof of optimality reads
# only columns that carry HiGHS's reported objective (HiGHS 1.16 could return a MIP start's columns).
SOLVER_REVISION = 3
# MILP only below this many nonzeros (pure-Python model building and the LP both grow with it).
MILP_MAX_NONZEROS = 400_000
# Below this part budget or size a second process costs more (spawn + imports, about a second) than
# it gives: small parts are proven by the search or the MILP before the bounds would return.
PARALLEL_MIN_S = 8.0
PARALLEL_MIN_REQUESTS = 20


@dataclass
class OfflineResult:
    """Best assignment found and a certified interval [lower_bound, objective] for the optimum J*."""

    objective: int
    lower_bound: int
    status: str
    assignment: np.ndarray
    total_compute: int
    workers: int
    wall_s: float
    parts: int = 1
    parts_optimal: int = 1
    details: dict = field(default_factory=dict)
    # where the width sits along the steps (BoundProfile.blocks); not part of to_dict
    bounds: BoundProfile | None = None

    @property
    def gap(self) -> int:
        return int(self.objective - self.lower_bound)

    @property
    def gap_rel(self) -> float:
        """Gap relative to J (0 when both are 0)."""
        return self.gap / self.objective if self.objective else 0.0

    @property
    def gap_compute(self) -> float:
        """Gap relative to the total compute G * sum_k max_g s_g(k) of the best assignment."""
        return self.gap / self.total_compute if self.total_compute else 0.0

    def to_dict(self, assignment: bool = True) -> dict:
        d = {
            "objective": int(self.objective), "lower_bound": int(self.lower_bound), "status": self.status,
            "gap": self.gap, "gap_rel": self.gap_rel, "gap_compute": self.gap_compute,
            "total_compute": int(self.total_compute), "requests": int(len(self.assignment)),
            "workers": int(self.workers), "parts": self.parts, "parts_optimal": self.parts_optimal,
            "wall_s": round(self.wall_s, 3), **self.details,
        }
        if assignment:
            d["assignment"] = [int(g) for g in self.assignment]
        return d


def solve_offline(start, prompt, output, workers: int, *, time_limit: float = 60.0, seed: int = 0,
                  use_milp: bool = True, use_windows: bool = True, search_share: float = 0.25,
                  msg: bool = False,
                  search_iters: int | None = None, initial=None, jobs: int | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> OfflineResult:
    """Best assignment and a certified interval for the hindsight optimum (module docstring).

    ``initial`` (a worker per request, e.g. an online run's) is one more candidate: the result is never
    worse than it. ``jobs`` (default: the CPUs this process may use, at most 2): with 2, the window
    bounds of a part with at least PARALLEL_MIN_REQUESTS requests and PARALLEL_MIN_S seconds run in a
    second process. ``progress(stage, part, parts)``, if given, hears of each stage of each part as it
    starts (a long solve can then show where it is; analysis.offline.cli.SolveProgress draws it).
    """
    t0 = time.perf_counter()
    a, p, o = as_requests(start, prompt, output)
    G = int(workers)
    if G < 1:
        raise ConfigError(f"workers={workers}: the offline optimum needs at least one worker.")
    if time_limit is None or not time_limit > 0:
        raise ConfigError(f"time_limit={time_limit}: give a positive number of seconds.")
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ConfigError(f"jobs={jobs}: give at least 1 (2 runs the window bounds on a second core).")
    N = len(a)
    if initial is not None:
        initial = check_assignment(initial, N, G, where="initial assignment")
    if N == 0:
        return OfflineResult(0, 0, "optimal", np.zeros(0, np.int64), 0, G, time.perf_counter() - t0, 0, 0)
    a = a - a.min()
    parts, const_j = split_parts(a, p, o, G)
    final = np.full(N, -1, np.int64)
    lb_total = const_j
    n_opt = 0
    details = {"milp_parts": 0, "milp_rounds": 0, "windows": 0, "step_bound": const_j, "search_s": 0.0}
    unproven: list[tuple[int, np.ndarray, list]] = []  # (first step, c, windows) of parts left open
    weights = np.array([len(pt.idx) ** 1.5 if len(pt.idx) > G else 0.0 for pt in parts])
    tell = progress or (lambda stage, part, parts: None)
    for q, pt in enumerate(parts):
        tell("search", q, len(parts))
        n = len(pt.idx)
        S_part = total_load_sum(pt.p, pt.o)
        K = int((pt.a + pt.o).max())
        c = ks.step_bounds(pt.a, pt.p, pt.o, G, K)
        e_lb = float(c.sum())
        details["step_bound"] += G * int(c.sum()) - S_part
        if n <= G or G == 1:
            w = np.arange(n, dtype=np.int64) % G
            proven = True
        else:
            t_part = time.perf_counter()
            left = max(time_limit - (t_part - t0), 0.0)
            budget = left * weights[q] / max(weights[q:].sum(), 1e-9)
            nnz = nonzeros(pt.a, pt.o, G)
            milp_ok = use_milp and nnz <= MILP_MAX_NONZEROS
            levels = (4, 8) if milp_ok else (8, 14, 20)
            # Two cores: window bounds run in a second process beside the search (MILP parts: both for
            # 30% of the budget, the MILP the rest; others: both for all of it). One core: search 25%,
            # windows 10%, MILP the rest; others: search 40%, windows 60% (no windows: search 100%).
            job = None
            if jobs >= 2 and use_windows and budget >= PARALLEL_MIN_S and n >= PARALLEL_MIN_REQUESTS:
                w_budget = max(budget * (0.3 if milp_ok else 1.0) - 2.0, 1.0)
                try:
                    job = WindowBoundJob(pt.a, pt.p, pt.o, G, c, w_budget, levels)
                    s_budget = w_budget
                except OSError as err:  # no second process here (limits, sandbox): one process it is
                    details.setdefault("window_errors", []).append(f"second process not started: {err}")
            if job is None:
                s_budget = budget * (search_share if milp_ok else 0.4 if use_windows else 1.0)
            t_search = time.perf_counter()
            w, elite = search_incumbent(pt.a, pt.p, pt.o, G, s_budget, seed=seed, iters=search_iters,
                                        restarts=4 if milp_ok else 1, target=ceil_bound(e_lb),
                                        max_iters=30_000 * n if milp_ok else None)
            details["search_s"] += time.perf_counter() - t_search
            e = energy(pt.a, pt.p, pt.o, w, G)
            if initial is not None:
                w_init = initial[pt.idx]
                e_init = energy(pt.a, pt.p, pt.o, w_init, G)
                elite = [*elite, w_init]
                if e_init < e:
                    w, e = w_init, e_init
            proven = e <= ceil_bound(e_lb)
            got = None  # window bounds: (bound on E, windows, info), from the second process or here
            if job is not None:
                if proven:
                    job.cancel()
                else:
                    tell("window bounds", q, len(parts))
                    got = job.result()
                    if got is None:
                        details.setdefault("window_errors", []).append(job.error)
            elif not proven and use_windows:
                tell("window bounds", q, len(parts))
                w_budget = (0.1 * budget) if milp_ok else (budget - (time.perf_counter() - t_part))
                got = window_lower_bound(pt.a, pt.p, pt.o, G, c, max(w_budget, 0.0), levels=levels)
            wins: list = []
            if got is not None:
                e_win, wins, winfo = got
                details["windows"] += winfo["windows"]
                e_lb = max(e_lb, e_win)
                proven = e <= ceil_bound(e_lb)
            if not proven and milp_ok:
                tell("MILP", q, len(parts))
                rest = budget - (time.perf_counter() - t_part)
                w, e_lb2, proven, info = solve_milp(pt.a, pt.p, pt.o, G, w, c, max(rest, 0.5), msg=msg,
                                                      elite=elite, windows=wins)
                details["milp_parts"] += 1
                details["milp_rounds"] += info["milp_rounds"]
                e_lb = max(e_lb, e_lb2)
        e = energy(pt.a, pt.p, pt.o, w, G)
        if proven:
            e_lb = e
            n_opt += 1
        else:
            unproven.append((pt.u, c, wins))
        e_lb_int = min(e, ceil_bound(e_lb))
        lb_total += G * e_lb_int - S_part
        # relabel so a request shared with an earlier part keeps its worker
        shared = np.flatnonzero(final[pt.idx] >= 0)
        if len(shared):
            r = shared[0]
            want, have = int(final[pt.idx[r]]), int(w[r])
            if want != have:
                w = np.where(w == want, have, np.where(w == have, want, w))
        final[pt.idx] = w
    tell("done", len(parts), len(parts))
    final[final < 0] = 0
    ser = step_series(a, p, o, final, G, validate=False)
    J = ser.objective
    lb_total = min(lb_total, J)
    status = "optimal" if n_opt == len(parts) else "time_limit"
    if status == "optimal":
        lb_total = J
    details["step_bound"] = min(details["step_bound"], J)
    details["search_s"] = round(details["search_s"], 3)
    env = ser.envelope
    lower = env.copy()
    windows = []
    for u, c, wins in unproven:
        lower[u:u + len(c)] = c
        windows += [(u + wu, u + wv, lb) for wu, wv, lb in wins]
    profile = BoundProfile(G, env, lower, ser.counts.sum(axis=1), windows)
    return OfflineResult(int(J), int(lb_total), status, final, ser.total_compute, G,
                         time.perf_counter() - t0, len(parts), n_opt, details, profile)
