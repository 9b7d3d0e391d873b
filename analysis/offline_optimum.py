"""Hindsight optimum of the imbalance objective J (analysis.objective): exact MILP or certified interval.

Every o_i and every start step a_i are known; choose one worker per request to minimise
J = sum_k (G * M_k - S_k), M_k = max_g s_g(k). S_k does not depend on the assignment, so this is
minimising E = sum_k M_k; J = G * E - sum_k S_k.

Formulation (PuLP, solved by HiGHS through pulp's HiGHS interface)
------------------------------------------------------------------
x_ig in {0, 1}, sum_g x_ig = 1. Variables W_j >= 0 per *segment*.

Segments. Cut the step axis at every a_i and a_i + o_i: inside a segment [u, v) the active set A is
constant and each active load is (p_i - a_i) + k, so s_g(k) = c_g + n_g k is affine in k.
  (a) sum_{k=u}^{v-1} s_g(k) = sum_{i in A} x_ig * Lam_i with Lam_i = L (p_i - a_i) + L (u + v - 1) / 2,
      L = v - u: the segment's contribution is linear in x in closed form.
  (b) max_g s_g(k) is a maximum of affine functions, hence convex in k. Its maximum over the segment is
      at an endpoint, but that is not what E needs: E needs its *sum*. Keeping M only at the two
      endpoints and charging the trapezoid L (M_u + M_{v-1}) / 2 charges the chord of a convex function,
      which lies *above* it: an over-estimate whenever the arg-max worker changes inside the segment
      (e.g. G = 2, steps 0..6, worker 0 holds prompts 3 and 4, load 7 + 2k, worker 1 prompt 10, load
      10 + k: the maxima 10, 11, 12, 13, 15, 17, 19 sum to 97, the trapezoid charges 7 (10 + 19) / 2 =
      101.5). So the endpoint form is not exact; we use
        W_j >= sum_i Lam_i x_ig   for every g                                           (1)
      i.e. W_j >= max_g sum_k s_g(k), a *lower* bound on sum_k max_g s_g(k) (the sum of a maximum
      is at least the maximum of the sums; 91 in the example), with equality iff one worker is the
      maximum on every step of the segment.
  (c) Exactness by refinement: solve; for the solution x*, evaluate sum_k max_g s_g(k) per segment;
      if some segment's arg-max changes, split it at the steps where it changes (each piece then has
      one arg-max under x*, so (1) is exact for x* there) and solve again, warm-started. The model
      with finer segments is still a relaxation of E, so every solver bound is a valid bound on E*,
      and when the relaxed optimum x* has relaxed value = E(x*), x* is optimal. Steps only split,
      so this terminates (at worst one segment per step, where (1) is the plain per-step model).
  Rows are scaled by 1/L (W_j is the mean envelope over the segment, objective coefficient L):
  same model, better conditioned; E is integer at integral points, so the solver stops at an
  absolute gap below 1 in E.

Per-step lower bounds (constant, valid for any assignment; analysis.offline_search.step_bounds):
max_g s_g(k) >= ceil(S_k / G), >= the largest active load, >= l_(G) + l_(G+1) (two of the G + 1
largest share a worker) and in general >= the j + 1 smallest of the j*G + 1 largest loads. Summed over a
segment they give W_j >= C_j / L (a variable bound), and summed over all steps a bound on E that needs
no solver (the bound used alone on instances too large for the MILP).

Symmetry breaking. Workers are identical, so any assignment can be relabelled by order of first use
along a fixed request order (largest total load first): request number r in that order may only use
workers 0..r. (The stronger orbitopal rows x_ig <= sum_{r' < r} x_{r', g-1} made HiGHS slower here.)

Decomposition. At a step where at most one request is active, the steps before and after interact only
through that request. Worker labels of each side can be permuted independently, so the two sides are
independent problems: we cut at every such step, solve each busy part alone (its boundary request
truncated to the part's steps), add the cut steps' constant imbalance (G - 1) l_r(k), and relabel the
parts so each shared request keeps one worker. A part with at most G requests is solved exactly by
putting them on distinct workers (then M_k is the largest load, which is the per-step bound).

Window bounds (analysis.offline_bounds). Stickiness is what the LP relaxation (x fractional, every
worker at the mean) cannot see. Short windows of steps with the requests that start or end inside kept
integral and the rest relaxed to a divisible fluid give proven bounds on the envelope summed over the
window; they become rows sum_{segments in window} L_j W_j >= bound of the MILP, and on instances too
large for the MILP they are combined by an LP into the lower bound.

Incumbent. Largest-first greedy, then simulated annealing over moves and swaps (offline_search), then
best-improvement moves; it warm-starts the MILP and is the upper bound when the MILP is too large.

Result: objective = J of the best assignment found; lower_bound = a proven bound on J*; status
"optimal" when they meet, else "time_limit". Tolerances: HiGHS runs with relative gap 0 and absolute gap
0.5 in E (E* is an integer); its dual bound is rounded up to an integer only after a 1e-6 relative
allowance for floating-point error, so the reported bound errs low, never high.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis import offline_search as ks
from analysis.offline_bounds import BoundProfile, WindowBoundJob, ceil_bound, window_lower_bound
from analysis.objective import as_requests, check_assignment, step_series, total_load_sum
from framework.cpus import default_jobs
from framework.errors import ConfigError, TraceFormatError, UserError

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


# ----------------------------------------------------------------------------------------------------
# decomposition

@dataclass
class Part:
    """A busy part: requests (indices into the instance) truncated to the part's steps [u, v)."""

    u: int
    v: int
    idx: np.ndarray
    a: np.ndarray  # relative to u
    p: np.ndarray
    o: np.ndarray


def split_parts(a: np.ndarray, p: np.ndarray, o: np.ndarray, G: int) -> tuple[list[Part], int]:
    """Cut at every step with at most one active request; return the parts and the cut steps' J."""
    K = int((a + o).max())
    cnt = np.zeros(K + 1, np.int64)
    np.add.at(cnt, a, 1)
    np.add.at(cnt, a + o, -1)
    cnt = np.cumsum(cnt)[:K]
    busy = cnt >= 2
    # constant imbalance of steps with exactly one active request: G*l - l
    single = np.flatnonzero(cnt == 1)
    const = 0
    if len(single):
        ser = step_series(a, p, o, np.zeros(len(a), np.int64), 1, validate=False)
        const = (G - 1) * int(ser.loads[single - ser.k0, 0].sum())
    edges = np.flatnonzero(np.diff(np.concatenate(([0], busy.astype(np.int8), [0]))))
    parts = []
    order = np.argsort(a, kind="stable")
    a_sorted = a[order]
    for u, v in zip(edges[0::2], edges[1::2]):
        u, v = int(u), int(v)
        hi = int(np.searchsorted(a_sorted, v, side="left"))
        cand = order[:hi]
        cand = cand[a[cand] + o[cand] > u]
        s = np.maximum(a[cand], u)
        e = np.minimum(a[cand] + o[cand], v)
        srt = np.argsort(cand)
        cand, s, e = cand[srt], s[srt], e[srt]
        parts.append(Part(u, v, cand, s - u, p[cand] + (s - a[cand]), e - s))
    return parts, const


# ----------------------------------------------------------------------------------------------------
# incumbent

def _energy(a, p, o, w, G) -> int:
    """E = sum_k max_g s_g(k) of an assignment of a part."""
    return int(step_series(a, p, o, w, G, validate=False).envelope.sum())


def search_incumbent(a, p, o, G: int, time_budget: float, seed: int = 0, iters: int | None = None,
                     restarts: int = 1, target: int | None = None,
                     max_iters: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Largest-first greedy, then ``restarts`` annealing runs from it (each followed by move descent).

    Returns the best assignment and all runs' results (the MILP pre-splits its segments where these
    good assignments change arg-max, see solve_milp). A run stops early when it reaches ``target``
    (a lower bound on E: nothing can do better); ``max_iters`` caps a time-calibrated schedule.
    """
    N = len(a)
    K = int((a + o).max())
    size = o * p + o * (o - 1) // 2
    order = np.argsort(-size, kind="stable")
    w_greedy = ks.greedy(a, p, o, order, G, K)
    if G == 1 or N <= G:
        return w_greedy, [w_greedy]
    ptr, ids = ks.active_lists(a, o, K)
    by_start = np.argsort(a, kind="stable")
    lists = (ptr, ids, by_start, a[by_start])
    t_end = time.perf_counter() + time_budget
    runs = []
    for r in range(restarts):
        budget = (t_end - time.perf_counter()) / (restarts - r)
        runs.append(_anneal_run(a, p, o, G, K, w_greedy.copy(), lists, budget, seed + 7919 * r, iters,
                                target, max_iters))
        if target is not None and _energy(a, p, o, runs[-1], G) <= target:
            break
    energies = [_energy(a, p, o, w, G) for w in runs]
    return runs[int(np.argmin(energies))], runs


# annealing settings, tuned on 1000 Azure conversation requests x 16 workers (5e7 proposals):
# T0 = 0.2 x the median uphill move, 20% moves, swaps half aligned by start (+-3 steps)
T0_FACTOR, P_MOVE, ALIGN = 0.2, 0.2, 3


def _anneal_run(a, p, o, G, K, w, lists, time_budget, seed, iters, target=None, max_iters=None):
    """One annealing schedule + descent. With ``iters`` the schedule is that many proposals
    (deterministic); otherwise it follows the clock, T = T0 * (T1/T0)**f with f the share of the budget
    used (or of ``max_iters``, whichever is further), so the run ends at its deadline.

    Why the clock and not a proposal count calibrated once: proposals get cheaper as the temperature
    falls (fewer accepted moves to apply), so a count measured on the first chunk ran out after 40% of
    the budget (1000 x 16: 45 s of a 118 s budget) and the rest of the time went unused.
    """
    N = len(a)
    s = ks.load_matrix(a, p, o, w, G, K)
    e0 = int(s.max(axis=1).sum())
    if target is not None and e0 <= target:
        return w
    tops = np.empty((5, K), np.int64)
    ks.refresh_tops(s, 0, K, tops)
    T0 = T0_FACTOR * ks.sample_uphill(a, p, o, w, s, tops, 2000, seed)
    T1 = max(T0 * 1e-3, 1e-3)
    best_w, best_e, cur_e = w.copy(), 0, 0
    first = 20_000
    if iters is not None:
        total = iters
    else:
        # the cap only guards absurd budgets (on 1000 x 16 it is about 700 s of proposals here)
        total = max_iters if max_iters is not None else 1_000_000 * N + 1_000_000
        t_start = time.perf_counter()
        rate = 0.0  # proposals per second, measured on the last chunk
    done = 0
    while done < total:
        if iters is not None:
            n, it0, span = min(first, total - done), done, total
        else:
            now = time.perf_counter()
            f = max((now - t_start) / time_budget if time_budget > 0 else 1.0, done / total)
            if f >= 1.0:
                break
            # the schedule in proposals at the current rate: this chunk covers about 2% of it
            span = int(max(min(rate * time_budget, total), first)) if rate else 50 * first
            n = min(max(span // 50, first), total - done)
            it0 = int(f * span)
        t_chunk = time.perf_counter()
        cur_e += ks.anneal(a, p, o, w, s, tops, *lists, it0, n, span, T0, T1, seed + done, P_MOVE, ALIGN)
        done += n
        if iters is None:
            rate = n / max(time.perf_counter() - t_chunk, 1e-6)
        if cur_e < best_e:
            best_e, best_w = cur_e, w.copy()
            if target is not None and e0 + best_e <= target:
                break
    w = best_w
    s = ks.load_matrix(a, p, o, w, G, K)
    ks.refresh_tops(s, 0, K, tops)
    ks.move_descent(a, p, o, w, s, tops, 50)
    return w


# ----------------------------------------------------------------------------------------------------
# MILP

def _segment_partition(a, o) -> np.ndarray:
    return np.unique(np.concatenate((a, a + o)))


def _refine(bps: np.ndarray, loads: np.ndarray) -> np.ndarray:
    """Split segments where the arg-max worker of ``loads`` changes (see docstring, (c))."""
    M = loads.max(axis=1)
    new = [bps]
    for u, v in zip(bps[:-1], bps[1:]):
        if v - u <= 1:
            continue
        seg = loads[u:v]
        if (seg == M[u:v, None]).all(axis=0).any():
            continue
        am = seg.argmax(axis=1)
        new.append(np.flatnonzero(np.diff(am) != 0) + 1 + u)
    return np.unique(np.concatenate(new))


def _relaxed_value(bps, loads, c) -> int:
    """Relaxed E of an assignment: sum over segments of max(max_g sum_k s_g, sum_k c_k)."""
    cs = np.vstack((np.zeros((1, loads.shape[1]), np.int64), np.cumsum(loads, axis=0)))
    cc = np.concatenate(([0], np.cumsum(c)))
    tot = 0
    for u, v in zip(bps[:-1], bps[1:]):
        tot += max(int((cs[v] - cs[u]).max()), int(cc[v] - cc[u]))
    return tot


def _nonzeros(a, o, G) -> int:
    bps = _segment_partition(a, o)
    cnt = np.zeros(int(bps[-1]) + 1, np.int64)
    np.add.at(cnt, a, 1)
    np.add.at(cnt, a + o, -1)
    cnt = np.cumsum(cnt)
    return int(cnt[bps[:-1]].sum()) * G


def _highs_solver(start: dict | None, time_limit: float, msg: bool):
    """pulp's HiGHS (highspy) interface, plus a warm start and access to the final dual bound."""
    import highspy
    import pulp

    class HiGHSWarm(pulp.HiGHS):
        def callSolver(self, lp):
            if start:
                cols = [(v.index, start[v.name]) for v in lp.variables() if v.name in start]
                idx = np.array([c for c, _ in cols], np.int32)
                val = np.array([x for _, x in cols], np.float64)
                lp.solverModel.setSolution(len(idx), idx, val)
            lp.solverModel.run()

    return HiGHSWarm(msg=msg, timeLimit=max(time_limit, 0.1), gapRel=0.0, gapAbs=0.5, threads=1,
                     random_seed=0), highspy


def _returns_what_it_reports(prob, h) -> bool:
    """Whether the columns HiGHS returned have the objective it reports (true when it has none): the
    optimality proof below reads the columns, so it must be their optimum."""
    import pulp

    if h.getInfo().primal_solution_status != 2:
        return True
    mine = pulp.value(prob.objective)
    if mine is None:
        return False
    obj = h.getObjectiveValue()
    tol = 1e-6 * max(1.0, abs(obj))
    # pulp may or may not hand the objective's constant to HiGHS as its offset: accept either
    return abs(mine - obj) <= tol or abs(mine - prob.objective.constant - obj) <= tol


def solve_milp(a, p, o, G: int, w0: np.ndarray, c: np.ndarray, time_limit: float,
               msg: bool = False, elite: list[np.ndarray] = (),
               windows: list[tuple[int, int, float]] = ()) -> tuple[np.ndarray, float, bool, dict]:
    """Segment MILP with refinement. Returns (best assignment, proven lower bound on E, optimal?, info).

    ``windows`` (u, v, bound) from analysis.offline_bounds become rows sum_{segments in [u, v)} L_j W_j
    >= bound: valid for every assignment, they lift the LP bound where stickiness matters.
    """
    import pulp

    N = len(a)
    K = int((a + o).max())
    t_end = time.perf_counter() + time_limit
    size = o * p + o * (o - 1) // 2
    rank = np.argsort(-size, kind="stable")
    pos = np.empty(N, np.int64)
    pos[rank] = np.arange(N)
    cc = np.concatenate(([0], np.cumsum(c)))
    best_w = w0.copy()
    ser0 = step_series(a, p, o, best_w, G, validate=False)
    best_e = int(ser0.envelope.sum())
    # split where good assignments' arg-max changes: the optimum tends to share their crossings, and
    # every refinement round re-proves from scratch
    bps = _refine(_segment_partition(a, o), ser0.loads)
    for w in elite:
        bps = _refine(bps, step_series(a, p, o, w, G, validate=False).loads)
    lb = float(c.sum())
    info = {"milp_rounds": 0, "segments": int(len(bps) - 1)}
    while True:
        remaining = t_end - time.perf_counter()
        if remaining <= 0.05:
            return best_w, lb, False, info
        prob = pulp.LpProblem("offline_optimum", pulp.LpMinimize)
        x = {(i, g): prob.add_variable(f"x_{i}_{g}", cat="Binary")
             for i in range(N) for g in range(min(G, int(pos[i]) + 1))}
        for i in range(N):
            prob += pulp.lpSum(x[i, g] for g in range(min(G, int(pos[i]) + 1))) == 1, f"one_{i}"
        obj = []
        seg_var: dict[int, tuple] = {}
        act_start = np.argsort(a, kind="stable")
        for j, (u, v) in enumerate(zip(bps[:-1], bps[1:])):
            u, v = int(u), int(v)
            act = act_start[(a[act_start] <= u)]
            act = act[a[act] + o[act] > u]
            if len(act) == 0:
                seg_var[u] = (None, 0.0, v)
                continue
            L = v - u
            mean = (p[act] - a[act]) + (u + v - 1) / 2.0  # mean load over the segment
            Wj = prob.add_variable(f"W_{j}", lowBound=float(cc[v] - cc[u]) / L)
            obj.append((Wj, float(L)))
            seg_var[u] = (Wj, float(L), v)
            for g in range(G):
                terms = [(x[i, g], float(m)) for i, m in zip(act.tolist(), mean.tolist()) if (i, g) in x]
                if terms:
                    prob += pulp.LpAffineExpression([(Wj, 1.0)] + [(v_, -m) for v_, m in terms]) >= 0
        for wu, wv, wlb in windows:
            terms, k = [], wu
            while k < wv and k in seg_var:
                Wj, L, k = seg_var[k]
                if Wj is not None:
                    terms.append((Wj, L))
            if k == wv and terms:
                prob += pulp.LpAffineExpression(terms) >= float(wlb)
        prob += pulp.LpAffineExpression(obj)
        # warm start: incumbent relabelled by first use along the rank order
        lab: dict[int, int] = {}
        for r in rank:
            lab.setdefault(int(best_w[r]), len(lab))
        w_rel = np.array([lab[int(g)] for g in best_w])
        start = {f"x_{i}_{g}": float(w_rel[i] == g) for (i, g) in x}
        # HiGHS 1.16 with a MIP start can report a better objective than the columns it returns
        # (algorithms._opt_model.HighsSolver.solve_milp): then solve once more without the start
        for warm in (start, None):
            solver, highspy = _highs_solver(warm, t_end - time.perf_counter(), msg)
            prob.solve(solver)
            info["milp_rounds"] += 1
            h = prob.solverModel
            consistent = _returns_what_it_reports(prob, h)
            if consistent or t_end - time.perf_counter() <= 0.1:
                break
        status = h.getModelStatus()
        bound = h.getInfo().mip_dual_bound
        if np.isfinite(bound):
            lb = max(lb, bound)
        have = h.getInfo().primal_solution_status == 2  # feasible solution available
        if have:
            w = np.zeros(N, np.int64)
            for (i, g), var in x.items():
                if var.varValue is not None and var.varValue > 0.5:
                    w[i] = g
            ser = step_series(a, p, o, w, G, validate=False)
            e = int(ser.envelope.sum())
            if e < best_e:
                best_w, best_e = w, e
            relaxed = _relaxed_value(bps, ser.loads, c)
        info["segments"] = int(len(bps) - 1)
        if status != highspy.HighsModelStatus.kOptimal or not have or not consistent:
            return best_w, lb, best_e <= lb + 0.5, info
        # proven when x*'s true E equals its value in the relaxation: without the window rows (exact
        # integers) or with them (the solver's objective, which they may lift to E(x*))
        if e <= relaxed or e <= h.getObjectiveValue() + 0.25:
            return best_w, float(max(lb, e)), True, info
        bps = _refine(bps, ser.loads)


# ----------------------------------------------------------------------------------------------------
# driver

def solve_offline(start, prompt, output, workers: int, *, time_limit: float = 60.0, seed: int = 0,
                  use_milp: bool = True, use_windows: bool = True, search_share: float = 0.25,
                  msg: bool = False,
                  search_iters: int | None = None, initial=None, jobs: int | None = None) -> OfflineResult:
    """Best assignment and a certified interval for the hindsight optimum (module docstring).

    ``initial`` (a worker per request, e.g. an online run's) is one more candidate: the result is never
    worse than it. ``jobs`` (default: the CPUs this process may use, at most 2): with 2, the window
    bounds of a part with at least PARALLEL_MIN_REQUESTS requests and PARALLEL_MIN_S seconds run in a
    second process.
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
    for q, pt in enumerate(parts):
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
            nnz = _nonzeros(pt.a, pt.o, G)
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
            e = _energy(pt.a, pt.p, pt.o, w, G)
            if initial is not None:
                w_init = initial[pt.idx]
                e_init = _energy(pt.a, pt.p, pt.o, w_init, G)
                elite = [*elite, w_init]
                if e_init < e:
                    w, e = w_init, e_init
            proven = e <= ceil_bound(e_lb)
            got = None  # window bounds: (bound on E, windows, info), from the second process or here
            if job is not None:
                if proven:
                    job.cancel()
                else:
                    got = job.result()
                    if got is None:
                        details.setdefault("window_errors", []).append(job.error)
            elif not proven and use_windows:
                w_budget = (0.1 * budget) if milp_ok else (budget - (time.perf_counter() - t_part))
                got = window_lower_bound(pt.a, pt.p, pt.o, G, c, max(w_budget, 0.0), levels=levels)
            wins: list = []
            if got is not None:
                e_win, wins, winfo = got
                details["windows"] += winfo["windows"]
                e_lb = max(e_lb, e_win)
                proven = e <= ceil_bound(e_lb)
            if not proven and milp_ok:
                rest = budget - (time.perf_counter() - t_part)
                w, e_lb2, proven, info = solve_milp(pt.a, pt.p, pt.o, G, w, c, max(rest, 0.5), msg=msg,
                                                      elite=elite, windows=wins)
                details["milp_parts"] += 1
                details["milp_rounds"] += info["milp_rounds"]
                e_lb = max(e_lb, e_lb2)
        e = _energy(pt.a, pt.p, pt.o, w, G)
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


# ----------------------------------------------------------------------------------------------------
# CLI

COLUMNS = ("arrival_step", "prompt_tokens", "output_tokens")


def read_instance(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an instance CSV (arrival_step, prompt_tokens, output_tokens), naming bad rows by line."""
    import pandas as pd

    from framework.workloads.csvio import require_file

    f = require_file(path, "instance")
    try:
        df = pd.read_csv(f, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise TraceFormatError(f"instance file {str(f)!r} is not a readable CSV ({e}). Expected a header "
                               f"line {','.join(COLUMNS)} and one request per line.") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TraceFormatError(f"instance file {str(f)!r} lacks column(s) {', '.join(missing)}; its columns "
                               f"are {', '.join(map(repr, df.columns))}. The header must name "
                               f"{', '.join(COLUMNS)}.")
    if len(df) == 0:
        raise TraceFormatError(f"instance file {str(f)!r} has a header but no requests; add one line per "
                               "request.")
    cols = []
    for name, lo in zip(COLUMNS, (0, 0, 1)):
        raw = df[name].str.strip()
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() | (num != num.round()) | (num < lo)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TraceFormatError(f"instance file {str(f)!r}, line {i + 2}: {name} is {raw.iloc[i]!r}; it "
                                   f"must be a whole number >= {lo}. Fix or drop that line.")
        cols.append(num.to_numpy().astype(np.int64))
    return cols[0], cols[1], cols[2]


@contextlib.contextmanager
def stdout_to_stderr():
    """Send fd 1 to stderr while solving: HiGHS prints its banner on stdout, which must stay JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.offline_optimum",
                                 description="Hindsight optimum of the DP imbalance objective J.")
    ap.add_argument("--instance", required=True, help="CSV with arrival_step,prompt_tokens,output_tokens")
    ap.add_argument("--workers", type=int, required=True, help="number of DP workers G")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds for search + MILP (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-milp", action="store_true", help="heuristic + per-step bound only")
    ap.add_argument("--jobs", type=int, default=None,
                    help="processes (default: the CPUs available, at most 2; 2 runs the window bounds "
                         "beside the search)")
    ap.add_argument("--profile", type=int, default=0, metavar="BLOCKS",
                    help="also print where the interval's width sits: split over BLOCKS equal step ranges")
    args = ap.parse_args(argv)
    try:
        if args.workers < 1:
            raise ConfigError(f"--workers {args.workers}: need at least one worker.")
        if args.profile < 0:
            raise ConfigError(f"--profile {args.profile}: give a number of blocks >= 1 (or 0 for none).")
        a, p, o = read_instance(args.instance)
        with stdout_to_stderr():
            res = solve_offline(a, p, o, args.workers, time_limit=args.time_limit, seed=args.seed,
                                use_milp=not args.no_milp, jobs=args.jobs)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    out = res.to_dict()
    if args.profile:
        out["profile"] = res.bounds.blocks(args.profile)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
