"""The segment MILP of the offline optimum (PuLP model, HiGHS solver), refined until exact.

See the package docstring, "Formulation", for why the segment rows are a relaxation and how refinement
makes them exact at the solution.
"""
from __future__ import annotations

import time

import numpy as np

from algorithms.opt.highs import reports_its_columns, retry_inconsistent
from analysis.objective import step_series


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


def nonzeros(a, o, G) -> int:
    bps = _segment_partition(a, o)
    cnt = np.zeros(int(bps[-1]) + 1, np.int64)
    np.add.at(cnt, a, 1)
    np.add.at(cnt, a + o, -1)
    cnt = np.cumsum(cnt)
    return int(cnt[bps[:-1]].sum()) * G


def _highs_solver(start: dict | None, time_limit: float, msg: bool):
    """pulp's HiGHS (highspy) interface, plus a warm start and access to the final dual bound."""
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
                     random_seed=0)


def solve_milp(a, p, o, G: int, w0: np.ndarray, c: np.ndarray, time_limit: float,
               msg: bool = False, elite: list[np.ndarray] = (),
               windows: list[tuple[int, int, float]] = ()) -> tuple[np.ndarray, float, bool, dict]:
    """Segment MILP with refinement. Returns (best assignment, proven lower bound on E, optimal?, info).

    ``windows`` (u, v, bound) from analysis.offline_bounds become rows sum_{segments in [u, v)} L_j W_j
    >= bound: valid for every assignment, they lift the LP bound where stickiness matters.
    """
    import highspy
    import pulp

    N = len(a)
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
        # the optimality proof below reads the returned columns, so they must carry the reported
        # objective; HiGHS 1.16 with a MIP start may not (algorithms.opt.highs): then solve once more
        # without the start
        def attempt(k: int, left: float) -> bool:
            prob.solve(_highs_solver(start if k == 0 else None, left, msg))
            info["milp_rounds"] += 1
            return reports_its_columns(prob.solverModel)

        consistent = retry_inconsistent(attempt, 2, t_end - time.perf_counter(), min_left=0.1)
        h = prob.solverModel
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
