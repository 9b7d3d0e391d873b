"""The BF-IO placement model shared by the ``lp`` and ``bfio`` routers (DESIGN.md section 5).

One decision step, for the N oldest waiting requests (the window) and the G workers:

    minimise  sum_h gamma^h (G*M_h - S_h)  +  rho*u
    s.t.      M_h >= s_g(h) + sum_i a_ih x_ig        for every worker g, h = 0..H   (envelope)
              sum_g x_ig <= 1                         for every request i
              sum_i x_ig <= free_slots_g,  sum_i p_i x_ig <= free_kv_g
              sum_ig x_ig + u = K,  0 <= u <= K - K_lb                              (work conservation)
              x_ig in [0, 1] (lp) or {0, 1} (bfio)

where s_g(h) = sum over running r of q_r(h)(l_r + h) (+ prefill/queued tokens committed to g), a_ih =
q_i(h)(p_i + h) is the load request i adds h steps after admission, S_h = sum_g s_g(h) + sum_ig a_ih x_ig
and q comes from the termination classifier. ``G*M_h - S_h`` is the predicted imbalance at step h.

Work conservation. A pool policy admits K = min(window, total free slots) requests when they fit. With
KV room binding, fewer may fit and the largest number that does is a bin-packing question, so the model
carries a slack u (requests *not* admitted below K) priced at rho, a bound on the whole objective range:
the optimum admits as many requests as can fit, and among those minimises the predicted imbalance. A
greedy packing (smallest prompts first) gives a count K_lb that surely fits and bounds u <= K - K_lb, so
the model is always feasible and, when KV does not bind (K_lb = K, the usual case), u is fixed at 0 and
rho never enters the numerics.

Sparse, vectorised form. Each x_ig column has one entry in its request row and one in each of worker g's
aggregate definitions: P_g = sum_i p_i x_ig, n_g = sum_i x_ig (bounded by free KV and free slots) and,
only when candidates' survival curves differ, z_gk = sum_i W_ik x_ig for a low-rank factor W V of the
part of a_ih not spanned by p_i and 1. The envelope rows then read M_h - alpha_h P_g - beta_h n_g -
sum_k V_kh z_gk >= s_g(h): a few entries each instead of N. With classifier ``none`` (a_ih = p_i + h) or
any classifier whose candidate curve is shared, there is no z at all, so the matrix has 3*N*G + O(G*H)
entries. The CSC arrays are built directly, never element by element.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

try:  # the bare core class: same solver, no banner printed on construction, no interrupt thread
    from highspy._core import _Highs as _HighsClass
except ImportError:  # pragma: no cover - other highspy layouts
    from highspy import Highs as _HighsClass
from highspy import _core as _hcore

from framework.classifier import TerminationClassifier
from framework.view import ClusterView

INF = float("inf")
_COLWISE = int(_hcore.MatrixFormat.kColwise)
_MINIMIZE = int(_hcore.ObjSense.kMinimize)


# --------------------------------------------------------------------------------------------------
# the per-step problem
@dataclass
class PoolProblem:
    """One step's data: candidates (window), their added loads, workers' predicted loads and limits."""

    ids: np.ndarray  # (N,) candidate request ids, oldest first
    prompt: np.ndarray  # (N,) prompt tokens (KV needed at admission)
    add: np.ndarray  # (N, H+1) a_ih, load request i adds h steps after admission
    base: np.ndarray  # (G, H+1) s_g(h), predicted load without new admissions
    free_slots: np.ndarray  # (G,)
    free_kv: np.ndarray  # (G,)
    weights: np.ndarray  # (H+1,) gamma^h
    target: int = field(init=False)  # K = min(N, total free slots)
    floor: int = field(init=False)  # K_lb, a count a greedy packing achieves (<= the best count)

    def __post_init__(self) -> None:
        self.prompt = np.asarray(self.prompt, np.int64)
        self.add = np.asarray(self.add, np.float64)
        self.base = np.asarray(self.base, np.float64)
        self.free_slots = np.maximum(np.asarray(self.free_slots, np.int64), 0)
        self.free_kv = np.maximum(np.asarray(self.free_kv, np.int64), 0)
        self.weights = np.asarray(self.weights, np.float64)
        N, G = len(self.prompt), len(self.free_slots)
        assert self.add.shape == (N, len(self.weights)) and self.base.shape == (G, len(self.weights))
        self.target = int(min(N, self.free_slots.sum()))
        self._greedy: np.ndarray | None = None
        self.floor = self.target if self._kv_never_binds() else int((self.greedy_count() >= 0).sum())

    @property
    def N(self) -> int:
        return len(self.prompt)

    @property
    def G(self) -> int:
        return len(self.free_slots)

    @property
    def H(self) -> int:
        return len(self.weights) - 1

    def _kv_never_binds(self) -> bool:
        """True if any slot-respecting placement of the K smallest prompts also respects free KV."""
        K = self.target
        if K == 0:
            return True
        pmax = np.partition(self.prompt, K - 1)[K - 1] if K < self.N else self.prompt.max()
        return bool(np.all(self.free_kv >= np.minimum(self.free_slots, K) * pmax))

    def greedy_count(self) -> np.ndarray:
        """A count-maximising greedy packing: smallest prompts first, each into the worker with the
        most KV room among those with a free slot. Returns assign (N,), -1 = not admitted."""
        if self._greedy is None:
            assign = np.full(self.N, -1, np.int64)
            slots = self.free_slots.copy()
            kv = self.free_kv.copy()
            kv_masked = np.where(slots > 0, kv, -1)
            done = 0
            for i in np.argsort(self.prompt, kind="stable").tolist():
                if done == self.target:
                    break
                g = int(np.argmax(kv_masked))
                p = int(self.prompt[i])
                if kv_masked[g] < p:  # nothing fits this one, hence none of the larger ones
                    break
                assign[i] = g
                done += 1
                slots[g] -= 1
                kv[g] -= p
                kv_masked[g] = kv[g] if slots[g] > 0 else -1
            self._greedy = assign
        return self._greedy.copy()


def problem_from_view(view: ClusterView, window: int, horizon: int, gamma: float,
                      classifier: TerminationClassifier | None) -> PoolProblem:
    """Build the step's problem from the router's view (classifier None means q = 1)."""
    N = min(int(window), view.num_waiting)
    ids = np.asarray(view.waiting_ids[:N], np.int64)
    prompt = np.asarray(view.waiting_prompt[:N], np.int64)
    H = int(horizon)
    h = np.arange(H + 1, dtype=np.float64)
    G = view.workers
    # work already committed to a worker but not yet decoding: prefill reservations, local queues
    pending_n = (view.prefilling + view.queued).astype(np.float64)
    base = view.committed_tokens.astype(np.float64)[:, None] + pending_n[:, None] * h
    if classifier is None:
        base = base + view.loads.astype(np.float64)[:, None] + view.running.astype(np.float64)[:, None] * h
        add = np.broadcast_to(prompt[:, None] + h, (N, H + 1)).astype(np.float64)
    else:
        surv = classifier.survival(view, H, ids)
        ctx = (view.running_prompt + view.running_decoded).astype(np.float64)
        contrib = np.asarray(surv.running, np.float64) * (ctx[:, None] + h)
        idx = (view.running_worker[:, None] * (H + 1) + np.arange(H + 1)).ravel()
        base = base + np.bincount(idx, weights=contrib.ravel(), minlength=G * (H + 1)).reshape(G, H + 1)
        add = np.asarray(surv.candidates, np.float64) * (prompt[:, None] + h)
    weights = float(gamma) ** h
    return PoolProblem(ids, prompt, add, base, np.asarray(view.free_slots), np.asarray(view.free_kv),
                       weights)


# --------------------------------------------------------------------------------------------------
# evaluation and limits of an integral placement
def predicted_loads(pb: PoolProblem, assign: np.ndarray) -> np.ndarray:
    """(G, H+1) predicted loads with the placement ``assign`` (N,), -1 = not admitted."""
    sel = assign >= 0
    loads = pb.base.copy()
    if sel.any():
        H1 = pb.H + 1
        idx = (assign[sel][:, None] * H1 + np.arange(H1)).ravel()
        loads += np.bincount(idx, weights=pb.add[sel].ravel(), minlength=pb.G * H1).reshape(pb.G, H1)
    return loads


def imbalance_objective(pb: PoolProblem, assign: np.ndarray) -> float:
    """sum_h gamma^h (G*max_g s_g(h) - sum_g s_g(h)) after the placement (no work-conservation term)."""
    loads = predicted_loads(pb, assign)
    return float(pb.weights @ (pb.G * loads.max(axis=0) - loads.sum(axis=0)))


def limit_violations(pb: PoolProblem, assign: np.ndarray) -> list[str]:
    """Every way ``assign`` breaks a limit (empty list = valid placement)."""
    out = []
    assign = np.asarray(assign, np.int64)
    if assign.shape != (pb.N,):
        return [f"assign has shape {assign.shape}, expected ({pb.N},)"]
    if np.any((assign < -1) | (assign >= pb.G)):
        out.append("worker index out of range")
        return out
    sel = assign >= 0
    cnt = np.bincount(assign[sel], minlength=pb.G)
    tok = np.bincount(assign[sel], weights=pb.prompt[sel], minlength=pb.G)
    if np.any(cnt > pb.free_slots):
        out.append(f"slots: placed {cnt.tolist()} > free {pb.free_slots.tolist()}")
    if np.any(tok > pb.free_kv):
        out.append(f"kv: placed {tok.astype(np.int64).tolist()} > free {pb.free_kv.tolist()}")
    return out


# --------------------------------------------------------------------------------------------------
# the LP / MILP
@dataclass
class ModelLayout:
    """Where each variable sits in the solver's column vector, and the constant objective part."""

    x_req: np.ndarray  # (nx,) request index of each x column (columns 0..nx-1)
    x_wkr: np.ndarray  # (nx,) worker of each x column
    workers: np.ndarray  # (Ge,) workers that have x columns
    rank: int  # r, number of z aggregates per worker
    alpha: np.ndarray  # (H+1,)
    beta: np.ndarray  # (H+1,)
    zcoef: np.ndarray  # (N, r) W
    zbasis: np.ndarray  # (r, H+1) V
    offset: float  # constant objective term: -sum_h w_h sum_g s_g(h)
    rho: float  # price of one request left out below K
    num_col: int = 0
    num_row: int = 0

    @property
    def nx(self) -> int:
        return len(self.x_req)

    def col_P(self) -> int:
        return self.nx

    def col_n(self) -> int:
        return self.nx + len(self.workers)

    def col_z(self) -> int:
        return self.nx + 2 * len(self.workers)

    def col_M(self) -> int:
        return self.nx + (2 + self.rank) * len(self.workers)

    def col_u(self) -> int:
        return self.col_M() + len(self.alpha)


def factor_added_load(pb: PoolProblem, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Write a_ih = alpha_h p_i + beta_h + sum_k W_ik V_kh exactly (up to rtol), with r = rank(W) small.

    A shared survival curve c (classifier none, or a curve that does not depend on the request) gives
    a_ih = c_h p_i + c_h h, so alpha = c, beta = c*h and r = 0. Otherwise the remainder is factored by SVD.
    """
    A = pb.add
    N, H1 = A.shape
    h = np.arange(H1, dtype=np.float64)
    if N == 0:
        return np.zeros(H1), np.zeros(H1), np.zeros((0, 0)), np.zeros((0, H1))
    p = pb.prompt.astype(np.float64)
    q0 = A[0] / (p[0] + h)
    scale = max(float(np.abs(A).max()), 1.0)
    alpha, beta = q0, q0 * h
    R = A - (p[:, None] * alpha + beta)
    if float(np.abs(R).max()) <= rtol * scale:
        return alpha, beta, np.zeros((N, 0)), np.zeros((0, H1))
    U, s, Vt = np.linalg.svd(R, full_matrices=False)
    r = int((s > rtol * scale).sum())
    return alpha, beta, U[:, :r] * s[:r], Vt[:r]


def _masked_cols(rows0: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC pieces for columns whose entries are (rows0[j, c], vals[j, c]) with zero values dropped."""
    keep = vals != 0.0
    return keep.sum(axis=1), rows0[keep], vals[keep]


@dataclass
class Model:
    """The LP/MILP in pieces: x columns as fixed-width (rows, values) blocks, so any subset of them can
    be passed or appended in CSC form without loops, and the other columns (P, n, z, M, u) in CSC.
    Rows: requests (N), P defs (Ge), n defs (Ge), z defs (Ge*r), count (1), envelopes (Ge*(H+1))."""

    lay: ModelLayout
    xr: np.ndarray  # (nx, per) int32 row indices of each x column (ascending)
    xv: np.ndarray  # (nx, per) values
    rest_count: np.ndarray  # entries per non-x column
    rest_index: np.ndarray
    rest_value: np.ndarray
    rest_cost: np.ndarray
    rest_lower: np.ndarray
    rest_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray

    @property
    def nx(self) -> int:
        return len(self.xr)

    def x_csc(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, index, value) of the x columns ``cols``."""
        per = self.xr.shape[1]
        start = (np.arange(len(cols) + 1) * per).astype(np.int32)
        return start, self.xr[cols].ravel(), self.xv[cols].ravel()

    def arrays(self, cols: np.ndarray | None = None, integer: bool = False) -> dict:
        """passModel arguments with the x columns ``cols`` (all if None) first, then the rest."""
        if cols is None:
            cols = np.arange(self.nx)
        k = len(cols)
        xs, xi, xval = self.x_csc(cols)
        start = np.concatenate([xs[:-1], xs[-1] + np.concatenate([[0], np.cumsum(self.rest_count)])])
        index = np.concatenate([xi, self.rest_index]).astype(np.int32)
        value = np.concatenate([xval, self.rest_value])
        num_col = k + len(self.rest_count)
        return dict(num_col=num_col, num_row=len(self.row_lower), num_nz=int(start[-1]),
                    offset=self.lay.offset, cost=np.concatenate([np.zeros(k), self.rest_cost]),
                    col_lower=np.concatenate([np.zeros(k), self.rest_lower]),
                    col_upper=np.concatenate([np.ones(k), self.rest_upper]),
                    row_lower=self.row_lower, row_upper=self.row_upper, start=start.astype(np.int32),
                    index=index, value=value, integer=integer, nx=k,
                    integrality=np.concatenate([np.full(k, int(integer), np.int32),
                                                np.zeros(num_col - k, np.int32)]))

    def reduced_costs(self, row_dual: np.ndarray) -> np.ndarray:
        """c - A^T y for every x column (their cost is 0)."""
        return -(self.xv * row_dual[self.xr]).sum(axis=1)


def build_model(pb: PoolProblem) -> Model:
    """The model for this step's problem (see the module docstring)."""
    N, G, H1 = pb.N, pb.G, pb.H + 1
    w = pb.weights
    alpha, beta, W, V = factor_added_load(pb)
    r = W.shape[1]
    ok_w = (pb.free_slots > 0) & (pb.free_kv > 0)
    workers = np.flatnonzero(ok_w)
    Ge = len(workers)
    # eligible pairs: the worker has a slot and the prompt fits its KV room
    elig = pb.prompt[:, None] <= pb.free_kv[workers][None, :]
    x_req, x_loc = np.nonzero(elig)  # request-major order
    nx = len(x_req)
    R_P, R_n, R_z = N, N + Ge, N + 2 * Ge
    R_cnt = N + (2 + r) * Ge
    R_env = R_cnt + 1
    # --- x columns: [request row, P row, n row, z rows], ascending rows, 3 + r entries each
    per = 3 + r
    xr = np.empty((nx, per), np.int32)
    xv = np.empty((nx, per), np.float64)
    xr[:, 0] = x_req
    xv[:, 0] = 1.0
    xr[:, 1] = R_P + x_loc
    xv[:, 1] = -pb.prompt[x_req]
    xr[:, 2] = R_n + x_loc
    xv[:, 2] = -1.0
    if r:
        xr[:, 3:] = R_z + x_loc[:, None] * r + np.arange(r)
        xv[:, 3:] = -W[x_req]
    # --- the other columns: P_g, n_g, z_gk, M_h, u
    env = R_env + np.arange(Ge)[:, None] * H1 + np.arange(H1)  # (Ge, H1) envelope row of (g, h)
    P_cnt, P_rows, P_vals = _masked_cols(np.column_stack([R_P + np.arange(Ge), env]),
                                         np.column_stack([np.ones(Ge), np.broadcast_to(-alpha, (Ge, H1))]))
    n_cnt, n_rows, n_vals = _masked_cols(
        np.column_stack([R_n + np.arange(Ge), np.full(Ge, R_cnt), env]),
        np.column_stack([np.ones(Ge), np.ones(Ge), np.broadcast_to(-beta, (Ge, H1))]))
    if r:
        zr = np.concatenate([(R_z + np.arange(Ge * r))[:, None], np.repeat(env, r, axis=0)], axis=1)
        zv = np.concatenate([np.ones((Ge * r, 1)), np.tile(-V, (Ge, 1))], axis=1)
        z_cnt, z_rows, z_vals = _masked_cols(zr, zv)
    else:
        z_cnt, z_rows, z_vals = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    M_cnt = np.full(H1, Ge, np.int64)  # M_h: +1 in every envelope row of h
    M_rows, M_vals = env.T.ravel(), np.ones(Ge * H1)
    # --- objective, bounds
    offset = -float(w @ pb.base.sum(axis=0))
    slack_room = pb.target - pb.floor
    rho = 0.0
    if slack_room > 0:  # bound on the objective's range: every admissible placement scores in [0, rho)
        rho = float(G * (w @ (pb.base.max(axis=0) + pb.add.sum(axis=0)))) + 1.0
    rest_cost = np.concatenate([np.full(Ge, -float(w @ alpha)), np.full(Ge, -float(w @ beta)),
                                np.tile(-(V @ w), Ge) if r else np.zeros(0), G * w, [rho]])
    Mlow = pb.base.max(axis=0) if G else np.zeros(H1)
    rest_lower = np.concatenate([np.zeros(2 * Ge), np.full(Ge * r, -INF), Mlow, [0.0]])
    rest_upper = np.concatenate([pb.free_kv[workers].astype(np.float64),
                                 pb.free_slots[workers].astype(np.float64), np.full(Ge * r, INF),
                                 np.full(H1, INF), [float(slack_room)]])
    row_lower = np.concatenate([np.full(N, -INF), np.zeros((2 + r) * Ge), [float(pb.target)],
                                pb.base[workers].ravel()])
    row_upper = np.concatenate([np.ones(N), np.zeros((2 + r) * Ge), [float(pb.target)],
                                np.full(Ge * H1, INF)])
    lay = ModelLayout(x_req=x_req, x_wkr=workers[x_loc], workers=workers, rank=r, alpha=alpha, beta=beta,
                      zcoef=W, zbasis=V, offset=offset, rho=rho, num_col=nx + len(rest_cost),
                      num_row=len(row_lower))
    return Model(lay, xr, xv, np.concatenate([P_cnt, n_cnt, z_cnt, M_cnt, [1]]),
                 np.concatenate([P_rows, n_rows, z_rows, M_rows, [R_cnt]]).astype(np.int32),
                 np.concatenate([P_vals, n_vals, z_vals, M_vals, [1.0]]), rest_cost, rest_lower,
                 rest_upper, row_lower, row_upper)


def column_values(pb: PoolProblem, lay: ModelLayout, assign: np.ndarray) -> np.ndarray:
    """The full column vector of an integral placement (a MIP start)."""
    x = (assign[lay.x_req] == lay.x_wkr).astype(np.float64)
    pos = np.full(pb.G, -1, np.int64)
    pos[lay.workers] = np.arange(len(lay.workers))
    Ge = len(lay.workers)
    sel = assign >= 0
    loc = pos[assign[sel]]
    P = np.bincount(loc, weights=pb.prompt[sel], minlength=Ge)
    n = np.bincount(loc, minlength=Ge).astype(np.float64)
    r = lay.rank
    z = np.zeros((Ge, r))
    for k in range(r):
        z[:, k] = np.bincount(loc, weights=lay.zcoef[sel, k], minlength=Ge)
    M = predicted_loads(pb, assign).max(axis=0)
    u = float(pb.target - sel.sum())
    return np.concatenate([x, P, n, z.ravel(), M, [u]])


# --------------------------------------------------------------------------------------------------
# solving
@dataclass
class SolveResult:
    status: str  # "optimal" | "time_limit" | "infeasible" | ... (HiGHS model status, lower-case)
    has_solution: bool
    x: np.ndarray  # (nx,) values of the x columns (empty if no solution)
    objective: float  # model objective incl. constant and rho*u (nan if no solution)
    bound: float  # MILP dual bound (LP: = objective)
    seconds: float


class HighsSolver:
    """A reusable HiGHS instance with this project's options (quiet, single thread by default)."""

    def __init__(self, threads: int = 1, presolve: bool = True, lp_solver: str = "simplex",
                 mip_rel_gap: float = 1e-6) -> None:
        self.h = _HighsClass()
        self.options = {"output_flag": False, "log_to_console": False, "threads": int(threads),
                        "presolve": "on" if presolve else "off", "solver": lp_solver,
                        "mip_rel_gap": float(mip_rel_gap)}
        for k, v in self.options.items():
            self.h.setOptionValue(k, v)

    def solve(self, model: dict, time_limit: float = INF, start: np.ndarray | None = None) -> SolveResult:
        t0 = time.perf_counter()
        h = self.h
        h.clearModel()
        h.setOptionValue("time_limit", float(time_limit) if np.isfinite(time_limit) else INF)
        if model["integer"]:
            h.setOptionValue("solver", "choose")
        else:
            h.setOptionValue("solver", self.options["solver"])
        h.passModel(model["num_col"], model["num_row"], model["num_nz"], _COLWISE, _MINIMIZE,
                    model["offset"], model["cost"], model["col_lower"], model["col_upper"],
                    model["row_lower"], model["row_upper"], model["start"], model["index"],
                    model["value"], model["integrality"])
        nx = model["nx"]
        if model["integer"] and nx and start is not None:
            h.setSolution(len(start), np.arange(len(start), dtype=np.int32), start)
        h.run()
        st = h.getModelStatus()
        status = h.modelStatusToString(st).lower().replace(" ", "_")
        info = h.getInfo()
        has = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
        if has:
            sol = h.getSolution()
            x = np.asarray(sol.col_value[:nx], np.float64) if nx else np.zeros(0)
            obj = float(info.objective_function_value)
        else:
            x, obj = np.zeros(0), float("nan")
        bound = float(info.mip_dual_bound) if model["integer"] else obj
        return SolveResult(status, has, x, obj, bound, time.perf_counter() - t0)


    def solve_lp_colgen(self, model: Model, init_cols: np.ndarray, time_limit: float = INF,
                        batch: int = 0) -> SolveResult:
        """The LP by column generation over the x columns, exact at termination.

        Starts from ``init_cols`` (x columns of a feasible placement, so the restricted LP is feasible),
        then repeatedly prices all x columns against the row duals, c_j - a_j^T y (numpy, one pass),
        and appends the most negative ``batch`` of them; HiGHS re-optimises from the previous basis.
        It stops when no column prices below -tol: the restricted optimum is then the LP optimum.
        """
        t0 = time.perf_counter()
        h = self.h
        h.clearModel()
        h.setOptionValue("solver", "simplex")
        deadline = t0 + time_limit if np.isfinite(time_limit) else INF
        h.setOptionValue("time_limit", float(time_limit) if np.isfinite(time_limit) else INF)
        cols = np.unique(np.asarray(init_cols, np.int64))
        m = model.arrays(cols)
        h.passModel(m["num_col"], m["num_row"], m["num_nz"], _COLWISE, _MINIMIZE, m["offset"], m["cost"],
                    m["col_lower"], m["col_upper"], m["row_lower"], m["row_upper"], m["start"],
                    m["index"], m["value"], m["integrality"])
        nrest = len(model.rest_count)
        in_master = np.zeros(model.nx, bool)
        in_master[cols] = True
        order = list(cols)  # x column of each master x position (initial block, then appended)
        batch = batch or max(64, 2 * len(model.lay.workers))
        rounds = 0
        while True:
            h.run()
            rounds += 1
            st = h.getModelStatus()
            if st != _hcore.HighsModelStatus.kOptimal:
                break
            sol = h.getSolution()
            y = np.asarray(sol.row_dual, np.float64)
            d = model.reduced_costs(y)
            d[in_master] = 0.0
            tol = 1e-9 * max(1.0, float(np.abs(model.xv[:, 1]).max(initial=1.0) * np.abs(y).max(initial=0.0)))
            neg = np.flatnonzero(d < -tol)
            if len(neg) == 0 or time.perf_counter() >= deadline:
                break
            if len(neg) > batch:
                neg = neg[np.argpartition(d[neg], batch)[:batch]]
            s_, i_, v_ = model.x_csc(neg)
            k = len(neg)
            h.addCols(k, np.zeros(k), np.zeros(k), np.ones(k), len(i_), s_[:-1], i_, v_)
            in_master[neg] = True
            order.extend(neg.tolist())
            if np.isfinite(deadline):
                h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 1e-3))
        status = h.modelStatusToString(st).lower().replace(" ", "_")
        info = h.getInfo()
        has = int(info.primal_solution_status) == 2
        x = np.zeros(model.nx)
        obj = float("nan")
        if has:
            cv = np.asarray(h.getSolution().col_value, np.float64)
            n0 = len(cols)
            pos = np.concatenate([np.arange(n0), n0 + nrest + np.arange(len(order) - n0)])
            x[np.asarray(order, np.int64)] = cv[pos]
            obj = float(info.objective_function_value)
        self.last_rounds = rounds
        self.last_columns = len(order)
        return SolveResult(status, has, x, obj, obj, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# rounding
def _fill(pb: PoolProblem, assign: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Place unassigned requests (in ``order``) while fewer than K are placed: each goes where it
    raises the weighted envelope least (then: onto the least loaded worker); limits always kept."""
    cnt = np.bincount(assign[assign >= 0], minlength=pb.G)
    slots = pb.free_slots - cnt
    kv = pb.free_kv - np.bincount(assign[assign >= 0], weights=pb.prompt[assign >= 0],
                                  minlength=pb.G).astype(np.int64)
    placed = int(cnt.sum())
    if placed >= pb.target:
        return assign
    loads = predicted_loads(pb, assign)
    M = loads.max(axis=0)
    w, G = pb.weights, pb.G
    wsum = loads @ w
    for i in order.tolist():
        if placed >= pb.target:
            break
        if assign[i] >= 0:
            continue
        p = pb.prompt[i]
        room = np.flatnonzero((slots > 0) & (kv >= p))
        if len(room) == 0:
            continue
        a = pb.add[i]
        over = np.maximum(loads[room] + a - M, 0.0) @ w  # envelope raise each choice causes
        g = int(room[np.lexsort((wsum[room], over))[0]])
        assign[i] = g
        placed += 1
        slots[g] -= 1
        kv[g] -= p
        loads[g] += a
        wsum[g] += a @ w
        np.maximum(M, loads[g], out=M)
    return assign


def round_placement(pb: PoolProblem, x_req: np.ndarray, x_wkr: np.ndarray, x_val: np.ndarray,
                    tol: float = 1e-6) -> np.ndarray:
    """Integral placement from fractional x that respects every limit.

    Pairs are taken largest x first (older request first on ties) while the request is unplaced and
    the worker has a slot and KV room, up to K; then requests still out are placed greedily (largest
    total x, then largest prompt, first) where they raise the envelope least; if that admits fewer
    than K_lb (the greedy packing's count) the greedy packing is used instead.
    """
    assign = np.full(pb.N, -1, np.int64)
    if pb.target == 0:
        return assign
    keep = x_val > tol
    req, wkr, val = x_req[keep], x_wkr[keep], x_val[keep]
    order = np.lexsort((req, -val))
    slots = pb.free_slots.copy()
    kv = pb.free_kv.copy()
    prompt = pb.prompt
    placed, K = 0, pb.target
    for i, g in zip(req[order].tolist(), wkr[order].tolist()):
        if assign[i] >= 0 or slots[g] <= 0 or kv[g] < prompt[i]:
            continue
        assign[i] = g
        slots[g] -= 1
        kv[g] -= prompt[i]
        placed += 1
        if placed == K:
            return assign
    xsum = np.bincount(req, weights=val, minlength=pb.N)
    rest = np.lexsort((-prompt, -xsum))
    assign = _fill(pb, assign, rest)
    if int((assign >= 0).sum()) < pb.floor:
        assign = _fill(pb, pb.greedy_count(), rest)
    return assign


def integral_solution(pb: PoolProblem, lay: ModelLayout, x: np.ndarray) -> np.ndarray | None:
    """The placement a MILP solution encodes, or None if it breaks a limit beyond tolerance."""
    on = x > 0.5
    assign = np.full(pb.N, -1, np.int64)
    if np.bincount(lay.x_req[on], minlength=pb.N).max(initial=0) > 1:
        return None
    assign[lay.x_req[on]] = lay.x_wkr[on]
    return None if limit_violations(pb, assign) else assign
