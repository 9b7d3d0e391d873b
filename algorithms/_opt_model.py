"""The BF-IO placement model shared by the ``lp`` and ``bfio`` routers (DESIGN.md section 5).

One decision step, for the N candidates (oldest waiting requests) and the G workers:

    minimise  sum_h gamma^h (G*M_h - S_h)  +  rho*u
    s.t.      M_h >= s_g(h) + sum_i a_ih x_ig        for every worker g, h = 0..H   (envelope)
              sum_g x_ig <= 1                         for every request i
              sum_i x_ig <= free_slots_g,  sum_i p_i x_ig <= free_kv_g
              sum_ig x_ig + u = K,  0 <= u <= K - K_lb                              (work conservation)
              x_ig in [0, 1] (lp) or {0, 1} (bfio)

with s_g(h) = sum over running r on g of q_r(h)(l_r + h) + tokens committed to g (prefill, local
queue; as BR-0/BR-H count them), a_ih = q_i(h)(p_i + h) the load request i adds h steps after
admission, S_h = sum_g s_g(h) + sum_ig a_ih x_ig, q from the termination classifier. G*M_h - S_h is the
predicted imbalance h steps ahead, so with H = 0 the objective is the imbalance right after the step.

Work conservation. A pool policy admits K = min(N, total free slots) requests when they fit. When KV room
binds, fewer may fit, and the largest count that does is a bin-packing question. So the model carries a
slack u (requests left out below K) priced at rho, an upper bound on the imbalance term over all
placements: the optimum admits as many requests as can fit and, among those, minimises the predicted
imbalance. A count-greedy packing (smallest prompts first) gives K_lb that surely fits, which bounds
u <= K - K_lb, so the model is always feasible; when KV does not bind (K_lb = K, the usual case) u is
fixed at 0 and rho never enters the numerics.

Sparse form. Each x_ig column has one entry in its request row and one in each of worker g's aggregate
definitions P_g = sum_i p_i x_ig and n_g = sum_i x_ig (bounded by free KV and free slots) and, only when
the candidates' survival curves differ, z_gk = sum_i W_ik x_ig for a low-rank factor W V of the part of
a_ih that p_i and 1 do not span. The envelope rows read M_h - alpha_h P_g - beta_h n_g - sum_k V_kh z_gk
>= s_g(h): a few entries each instead of N. With a candidate survival curve shared by all candidates
(classifier none, or empirical without prompt bins) z is empty and the matrix has 3*N*G + O(G*H)
entries. Blocks are built as numpy arrays, never element by element.

Solving the LP fast (``HighsSolver.solve_lp``): HiGHS's dual simplex from scratch on the full model
needs 1-2k iterations at 512 x 32 (~100-200 ms). Started instead from the vertex of a greedy placement
(restricted to its own x columns), then given the columns that price out negative against the duals,
HiGHS's primal simplex needs a few hundred: column generation with large batches, exact at termination
(no column prices below -tol), typically 2-4 rounds.

Certificate. sum_h gamma^h max(0, G*max_g s_g(h) - sum_g s_g(h) - T_h), with T_h the sum of the K largest
a_ih, is a lower bound on the LP (hence on the MILP). When the greedy placement attains it, the greedy is
optimal for both and no solver runs (the common case when the cluster has room).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

try:  # the bare core class: same solver, no banner on construction, no interrupt-handling thread
    from highspy._core import _Highs as _HighsClass
except ImportError:  # pragma: no cover - other highspy layouts
    from highspy import Highs as _HighsClass
from highspy import _core as _hcore

from framework.classifier import TerminationClassifier
from framework.view import ClusterView

INF = float("inf")
_COLWISE = int(_hcore.MatrixFormat.kColwise)
_MINIMIZE = int(_hcore.ObjSense.kMinimize)
_OPTIMAL = _hcore.HighsModelStatus.kOptimal
_FEASIBLE = 2  # SolutionStatus.kSolutionStatusFeasible
_DUAL, _PRIMAL = 1, 4  # simplex_strategy values


# --------------------------------------------------------------------------------------------------
# the per-step problem
@dataclass
class PoolProblem:
    """One step's data: candidates, their added loads, the workers' predicted loads and limits."""

    ids: np.ndarray  # (N,) candidate request ids, oldest first
    prompt: np.ndarray  # (N,) prompt tokens (the KV a request takes at admission)
    add: np.ndarray  # (N, H+1) a_ih, load request i adds h steps after admission
    base: np.ndarray  # (G, H+1) s_g(h), predicted load without new admissions
    free_slots: np.ndarray  # (G,)
    free_kv: np.ndarray  # (G,)
    weights: np.ndarray  # (H+1,) gamma^h
    target: int = field(init=False)  # K = min(N, total free slots)
    floor: int = field(init=False)  # K_lb, a count the greedy packing reaches (<= the best count)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, np.int64)
        self.prompt = np.asarray(self.prompt, np.int64)
        self.add = np.ascontiguousarray(self.add, np.float64)
        self.base = np.ascontiguousarray(self.base, np.float64)
        self.free_slots = np.maximum(np.asarray(self.free_slots, np.int64), 0)
        self.free_kv = np.maximum(np.asarray(self.free_kv, np.int64), 0)
        self.weights = np.ascontiguousarray(self.weights, np.float64)
        H1 = len(self.weights)
        if self.add.shape != (self.N, H1) or self.base.shape != (self.G, H1):
            raise ValueError(f"PoolProblem shapes: add {self.add.shape}, base {self.base.shape}, "
                             f"expected ({self.N}, {H1}) and ({self.G}, {H1})")
        self.target = int(min(self.N, self.free_slots.sum()))
        self._greedy: np.ndarray | None = None
        self.floor = self.target if self.kv_never_binds() else int((self.greedy_count() >= 0).sum())

    @property
    def N(self) -> int:
        return len(self.prompt)

    @property
    def G(self) -> int:
        return len(self.free_slots)

    @property
    def H(self) -> int:
        return len(self.weights) - 1

    def kv_never_binds(self) -> bool:
        """True if every slot-respecting placement of the K smallest prompts respects free KV too."""
        K = self.target
        if K == 0:
            return True
        pmax = np.partition(self.prompt, K - 1)[K - 1]
        return bool(np.all(self.free_kv >= np.minimum(self.free_slots, K) * pmax))

    def greedy_count(self) -> np.ndarray:
        """A count-maximising greedy packing: smallest prompts first, each into the worker with the most
        KV room among those with a free slot. Returns assign (N,), -1 = not admitted."""
        if self._greedy is None:
            assign = np.full(self.N, -1, np.int64)
            slots = self.free_slots.copy()
            kv = self.free_kv.copy()
            room = np.where(slots > 0, kv, -1)
            done = 0
            for i in np.argsort(self.prompt, kind="stable").tolist():
                if done == self.target:
                    break
                g = int(np.argmax(room))
                p = int(self.prompt[i])
                if room[g] < p:  # fits nowhere, and neither does any larger request
                    break
                assign[i] = g
                done += 1
                slots[g] -= 1
                kv[g] -= p
                room[g] = kv[g] if slots[g] > 0 else -1
            self._greedy = assign
        return self._greedy.copy()

    def lower_bound(self) -> float:
        """A lower bound on the LP (and MILP) optimum; see "Certificate" in the module docstring."""
        K = self.target
        if K == 0 or self.N == 0:
            top = np.zeros(self.H + 1)
        elif K >= self.N:
            top = self.add.sum(axis=0)
        else:
            top = -np.partition(-self.add, K - 1, axis=0)[:K].sum(axis=0)
        gap = self.G * self.base.max(axis=0) - self.base.sum(axis=0) - top
        return float(self.weights @ np.maximum(gap, 0.0))

    def without(self, assign: np.ndarray) -> "PoolProblem":
        """The problem left after committing ``assign`` (its requests leave, their loads and their
        slots/KV are taken from the workers). Used to pre-place requests forced in by the hold bound."""
        sel = assign >= 0
        rest = ~sel
        return PoolProblem(self.ids[rest], self.prompt[rest], self.add[rest], predicted_loads(self, assign),
                           self.free_slots - np.bincount(assign[sel], minlength=self.G),
                           self.free_kv - np.bincount(assign[sel], weights=self.prompt[sel],
                                                      minlength=self.G).astype(np.int64),
                           self.weights)


def problem_from_view(view: ClusterView, ids: np.ndarray, prompt: np.ndarray, horizon: int,
                      gamma: float, classifier: TerminationClassifier | None) -> PoolProblem:
    """Build the step's problem for candidates ``ids`` (classifier None means q = 1, no call)."""
    H = int(horizon)
    h = np.arange(H + 1, dtype=np.float64)
    G = view.workers
    prompt = np.asarray(prompt, np.int64)
    committed = view.committed_tokens.astype(np.float64)[:, None]
    if classifier is None:
        base = committed + view.loads.astype(np.float64)[:, None] + view.running[:, None] * h
        add = prompt[:, None] + h
    else:
        surv = classifier.survival(view, H, ids)
        ctx = (view.running_prompt + view.running_decoded).astype(np.float64)
        contrib = np.asarray(surv.running, np.float64) * (ctx[:, None] + h)
        idx = (view.running_worker[:, None] * (H + 1) + np.arange(H + 1)).ravel()
        base = committed + np.bincount(idx, weights=contrib.ravel(),
                                       minlength=G * (H + 1)).reshape(G, H + 1)
        add = np.asarray(surv.candidates, np.float64) * (prompt[:, None] + h)
    return PoolProblem(ids, prompt, add, base, view.free_slots, view.free_kv, float(gamma) ** h)


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
    """sum_h gamma^h (G*max_g s_g(h) - sum_g s_g(h)) after the placement (the model without rho*u)."""
    loads = predicted_loads(pb, assign)
    return float(pb.weights @ (pb.G * loads.max(axis=0) - loads.sum(axis=0)))


def limit_violations(pb: PoolProblem, assign: np.ndarray) -> list[str]:
    """Every way ``assign`` breaks a limit (empty list = a placement the simulator accepts)."""
    assign = np.asarray(assign, np.int64)
    if assign.shape != (pb.N,):
        return [f"assign has shape {assign.shape}, expected ({pb.N},)"]
    if np.any((assign < -1) | (assign >= pb.G)):
        return ["worker index out of range"]
    out = []
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
def factor_added_load(pb: PoolProblem, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Write a_ih = alpha_h p_i + beta_h + sum_k W_ik V_kh (exact up to rtol) with r = rank(W) small.

    A candidate curve c shared by all candidates gives a_ih = c_h p_i + c_h h: alpha = c, beta = c*h and
    r = 0. Otherwise the remainder is factored by SVD (r <= H+1).
    """
    A = pb.add
    N, H1 = A.shape
    h = np.arange(H1, dtype=np.float64)
    if N == 0:
        return np.zeros(H1), np.zeros(H1), np.zeros((0, 0)), np.zeros((0, H1))
    q0 = A[0] / (pb.prompt[0] + h)
    alpha, beta = q0, q0 * h
    R = A - (pb.prompt[:, None] * alpha + beta)
    scale = max(float(np.abs(A).max()), 1.0)
    if float(np.abs(R).max()) <= rtol * scale:
        return alpha, beta, np.zeros((N, 0)), np.zeros((0, H1))
    U, s, Vt = np.linalg.svd(R, full_matrices=False)
    r = int((s > rtol * scale).sum())
    return alpha, beta, U[:, :r] * s[:r], Vt[:r]


def _masked_cols(rows: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC pieces (count per column, rows, values) of columns given row-wise, exact zeros dropped."""
    keep = vals != 0.0
    return keep.sum(axis=1), rows[keep], vals[keep]


@dataclass
class Model:
    """The LP/MILP in pieces: x columns as fixed-width (rows, values) blocks, so any subset of them can
    be passed or appended in CSC form without loops; the other columns (P, n, z, M, u) in CSC.
    Rows: requests (N), P defs (Ge), n defs (Ge), z defs (Ge*r), count (1), envelopes (Ge*(H+1))."""

    x_req: np.ndarray  # (nx,) request of each x column (request-major order)
    x_wkr: np.ndarray  # (nx,) worker of each x column
    workers: np.ndarray  # (Ge,) workers with a free slot and some free KV (the others get no x)
    zcoef: np.ndarray  # (N, r) W
    xr: np.ndarray  # (nx, 3 + r) int32 rows of each x column (ascending)
    xv: np.ndarray  # (nx, 3 + r) their values
    rest_count: np.ndarray
    rest_index: np.ndarray
    rest_value: np.ndarray
    rest_cost: np.ndarray
    rest_lower: np.ndarray
    rest_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    offset: float  # constant objective term: -sum_h w_h sum_g s_g(h)
    rho: float  # price of one request left out below K

    @property
    def nx(self) -> int:
        return len(self.xr)

    def x_csc(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, index, value) of the x columns ``cols``."""
        per = self.xr.shape[1]
        return ((np.arange(len(cols) + 1) * per).astype(np.int32), self.xr[cols].ravel(),
                self.xv[cols].ravel())

    def arrays(self, cols: np.ndarray | None = None, integer: bool = False) -> dict:
        """passModel arguments with the x columns ``cols`` (all if None) first, then the rest."""
        cols = np.arange(self.nx) if cols is None else np.asarray(cols, np.int64)
        k = len(cols)
        xs, xi, xval = self.x_csc(cols)
        start = np.concatenate([xs[:-1], xs[-1] + np.concatenate([[0], np.cumsum(self.rest_count)])])
        num_col = k + len(self.rest_count)
        return dict(num_col=num_col, num_row=len(self.row_lower), num_nz=int(start[-1]), offset=self.offset,
                    cost=np.concatenate([np.zeros(k), self.rest_cost]),
                    col_lower=np.concatenate([np.zeros(k), self.rest_lower]),
                    col_upper=np.concatenate([np.ones(k), self.rest_upper]),
                    row_lower=self.row_lower, row_upper=self.row_upper, start=start.astype(np.int32),
                    index=np.concatenate([xi, self.rest_index]).astype(np.int32),
                    value=np.concatenate([xval, self.rest_value]),
                    integrality=np.concatenate([np.full(k, int(integer), np.int32),
                                                np.zeros(num_col - k, np.int32)]))

    def reduced_costs(self, row_dual: np.ndarray) -> np.ndarray:
        """c_j - a_j^T y for every x column (their cost is 0)."""
        return -(self.xv * row_dual[self.xr]).sum(axis=1)

    def columns_of(self, assign: np.ndarray) -> np.ndarray:
        """Indices of the x columns a placement uses."""
        return np.flatnonzero(assign[self.x_req] == self.x_wkr)

    def column_values(self, pb: PoolProblem, assign: np.ndarray) -> np.ndarray:
        """Every column's value for an integral placement (x first, then P, n, z, M, u): a MIP start."""
        pos = np.full(pb.G, -1, np.int64)
        pos[self.workers] = np.arange(len(self.workers))
        Ge, r = len(self.workers), self.zcoef.shape[1]
        sel = assign >= 0
        loc = pos[assign[sel]]
        P = np.bincount(loc, weights=pb.prompt[sel], minlength=Ge)
        n = np.bincount(loc, minlength=Ge).astype(np.float64)
        z = np.zeros((Ge, r))
        for k in range(r):
            z[:, k] = np.bincount(loc, weights=self.zcoef[sel, k], minlength=Ge)
        M = predicted_loads(pb, assign).max(axis=0)
        return np.concatenate([(assign[self.x_req] == self.x_wkr).astype(np.float64), P, n, z.ravel(), M,
                               [float(pb.target - sel.sum())]])


def build_model(pb: PoolProblem) -> Model:
    """The model of this step's problem (see the module docstring)."""
    N, G, H1 = pb.N, pb.G, pb.H + 1
    w = pb.weights
    alpha, beta, W, V = factor_added_load(pb)
    r = W.shape[1]
    workers = np.flatnonzero((pb.free_slots > 0) & (pb.free_kv > 0))
    Ge = len(workers)
    x_req, x_loc = np.nonzero(pb.prompt[:, None] <= pb.free_kv[workers][None, :])  # eligible pairs
    nx = len(x_req)
    R_P, R_n, R_z = N, N + Ge, N + 2 * Ge
    R_cnt = N + (2 + r) * Ge
    R_env = R_cnt + 1
    # x columns: [request row, P row, n row, z rows], ascending rows, 3 + r entries each
    xr = np.empty((nx, 3 + r), np.int32)
    xv = np.empty((nx, 3 + r), np.float64)
    xr[:, 0], xv[:, 0] = x_req, 1.0
    xr[:, 1], xv[:, 1] = R_P + x_loc, -pb.prompt[x_req]
    xr[:, 2], xv[:, 2] = R_n + x_loc, -1.0
    if r:
        xr[:, 3:] = R_z + x_loc[:, None] * r + np.arange(r)
        xv[:, 3:] = -W[x_req]
    # the other columns: P_g, n_g, z_gk, M_h, u
    env = R_env + np.arange(Ge)[:, None] * H1 + np.arange(H1)  # (Ge, H1): envelope row of (g, h)
    ones = np.ones((Ge, 1))
    P_cnt, P_rows, P_vals = _masked_cols(np.column_stack([R_P + np.arange(Ge), env]),
                                         np.column_stack([ones, np.broadcast_to(-alpha, (Ge, H1))]))
    n_cnt, n_rows, n_vals = _masked_cols(np.column_stack([R_n + np.arange(Ge), np.full(Ge, R_cnt), env]),
                                         np.column_stack([ones, ones, np.broadcast_to(-beta, (Ge, H1))]))
    if r:
        z_cnt, z_rows, z_vals = _masked_cols(
            np.concatenate([(R_z + np.arange(Ge * r))[:, None], np.repeat(env, r, axis=0)], axis=1),
            np.concatenate([np.ones((Ge * r, 1)), np.tile(-V, (Ge, 1))], axis=1))
    else:
        z_cnt, z_rows, z_vals = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    M_cnt, M_rows, M_vals = np.full(H1, Ge, np.int64), env.T.ravel(), np.ones(Ge * H1)
    # objective and bounds
    slack_room = pb.target - pb.floor
    rho = 0.0
    if slack_room > 0:  # every admissible placement's imbalance term lies in [0, rho)
        rho = float(G * (w @ (pb.base.max(axis=0) + pb.add.sum(axis=0)))) + 1.0
    rest_cost = np.concatenate([np.full(Ge, -float(w @ alpha)), np.full(Ge, -float(w @ beta)),
                                np.tile(-(V @ w), Ge), G * w, [rho]])
    M_low = pb.base.max(axis=0) if G else np.zeros(H1)  # workers without x columns bound M directly
    rest_lower = np.concatenate([np.zeros(2 * Ge), np.full(Ge * r, -INF), M_low, [0.0]])
    rest_upper = np.concatenate([pb.free_kv[workers].astype(np.float64),
                                 pb.free_slots[workers].astype(np.float64), np.full(Ge * r, INF),
                                 np.full(H1, INF), [float(slack_room)]])
    row_lower = np.concatenate([np.full(N, -INF), np.zeros((2 + r) * Ge), [float(pb.target)],
                                pb.base[workers].ravel()])
    row_upper = np.concatenate([np.ones(N), np.zeros((2 + r) * Ge), [float(pb.target)],
                                np.full(Ge * H1, INF)])
    return Model(x_req=x_req, x_wkr=workers[x_loc], workers=workers, zcoef=W, xr=xr, xv=xv,
                 rest_count=np.concatenate([P_cnt, n_cnt, z_cnt, M_cnt, [1]]),
                 rest_index=np.concatenate([P_rows, n_rows, z_rows, M_rows, [R_cnt]]).astype(np.int32),
                 rest_value=np.concatenate([P_vals, n_vals, z_vals, M_vals, [1.0]]),
                 rest_cost=rest_cost, rest_lower=rest_lower, rest_upper=rest_upper, row_lower=row_lower,
                 row_upper=row_upper, offset=-float(w @ pb.base.sum(axis=0)), rho=rho)


# --------------------------------------------------------------------------------------------------
# solving
@dataclass
class SolveResult:
    status: str  # HiGHS model status, lower case with underscores ("optimal", "time_limit", ...)
    has_solution: bool
    x: np.ndarray  # (nx,) values of every x column (zeros if no solution)
    objective: float  # model objective incl. the constant and rho*u (nan if no solution)
    bound: float  # MILP: HiGHS's dual bound; LP: the objective
    seconds: float
    rounds: int = 1  # LP: column-generation rounds
    columns: int = 0  # LP: x columns in the final restricted model


class HighsSolver:
    """A reusable HiGHS instance with this project's options (quiet, single thread by default)."""

    def __init__(self, threads: int = 1, mip_rel_gap: float = 1e-6, batch: int = 2048) -> None:
        self.h = _HighsClass()
        self.batch = int(batch)
        for k, v in {"output_flag": False, "log_to_console": False, "threads": int(threads),
                     "mip_rel_gap": float(mip_rel_gap), "mip_abs_gap": 1e-6}.items():
            self.h.setOptionValue(k, v)

    def _load(self, m: dict, time_limit: float, presolve: str, strategy: int) -> None:
        h = self.h
        h.clearModel()
        h.setOptionValue("time_limit", float(time_limit) if np.isfinite(time_limit) else INF)
        h.setOptionValue("presolve", presolve)
        h.setOptionValue("simplex_strategy", strategy)
        h.passModel(m["num_col"], m["num_row"], m["num_nz"], _COLWISE, _MINIMIZE, m["offset"], m["cost"],
                    m["col_lower"], m["col_upper"], m["row_lower"], m["row_upper"], m["start"],
                    m["index"], m["value"], m["integrality"])

    def _status(self) -> str:
        return self.h.modelStatusToString(self.h.getModelStatus()).lower().replace(" ", "_")

    def solve_milp(self, model: Model, pb: PoolProblem, time_limit: float = INF,
                   start: np.ndarray | None = None) -> SolveResult:
        """The MILP (x binary) within ``time_limit`` seconds, from the placement ``start`` if given."""
        t0 = time.perf_counter()
        arrays = model.arrays(integer=True)
        found = self._run_milp(arrays, model, pb, time_limit, start, "choose")
        if found is not None and not found[3] and start is not None:
            # HiGHS 1.16 with a MIP start and presolve can report the better objective it found while
            # returning the start's columns (seen on a 5 x 2 pool: 624 reported, the start's 627
            # returned). Without presolve it returns what it reports: solve once more that way.
            left = time_limit - (time.perf_counter() - t0)
            if left > 0:  # (HiGHS rejects a negative limit and would keep the previous one)
                found = self._run_milp(arrays, model, pb, left, start, "off") or found
        info = self.h.getInfo()
        status = self._status()
        has = found is not None
        if has:
            cols, obj, own, consistent = found
            if not consistent:
                obj, status = own, "inconsistent_solution"  # what we return is what we report
        x = cols[:model.nx] if has else np.zeros(model.nx)
        return SolveResult(status, has, x, obj if has else float("nan"), float(info.mip_dual_bound),
                           time.perf_counter() - t0, 1, model.nx)

    def _run_milp(self, arrays: dict, model: Model, pb: PoolProblem, time_limit: float,
                  start: np.ndarray | None, presolve: str) -> tuple[np.ndarray, float, float, bool] | None:
        """One HiGHS run: (columns, reported objective, the columns' own objective, whether the two
        agree), or None without a feasible solution."""
        h = self.h
        self._load(arrays, time_limit, presolve, _DUAL)
        if start is not None:
            vals = model.column_values(pb, start)
            h.setSolution(len(vals), np.arange(len(vals), dtype=np.int32), vals)
        h.run()
        info = h.getInfo()
        if int(info.primal_solution_status) != _FEASIBLE:
            return None
        cols = np.asarray(h.getSolution().col_value, np.float64)
        obj = float(info.objective_function_value)
        own = float(np.dot(arrays["cost"], cols) + arrays["offset"])
        return cols, obj, own, abs(own - obj) <= 1e-6 * max(1.0, abs(obj))

    def solve_lp(self, model: Model, init_cols: np.ndarray, time_limit: float = INF) -> SolveResult:
        """The LP by column generation over the x columns; exact at termination.

        ``init_cols`` are the x columns of a feasible placement, so the first restricted LP is feasible
        (dual simplex). Each round prices every x column against the row duals in one numpy pass and
        appends up to ``batch`` of the most negative; HiGHS then re-optimises from its basis with the
        primal simplex (the basis stays primal feasible). It stops when none prices below -tol, or at
        the time limit with the restricted optimum, which is still a feasible point of the full LP.
        """
        t0 = time.perf_counter()
        deadline = t0 + time_limit if np.isfinite(time_limit) else INF
        h = self.h
        cols = np.unique(np.asarray(init_cols, np.int64))
        self._load(model.arrays(cols), time_limit, "off", _DUAL)
        in_master = np.zeros(model.nx, bool)
        in_master[cols] = True
        order = [cols]
        rounds = 0
        kept: tuple[np.ndarray, int, float] | None = None  # last restricted optimum, if time-limited
        cut = False  # stopped by the deadline with columns still pricing out
        while True:
            h.run()
            if h.getModelStatus() != _OPTIMAL and rounds > 0 and time.perf_counter() < deadline:
                # the primal simplex warm-started from the last basis can end "unknown" on a badly
                # scaled restricted LP: re-solve it from scratch with the dual simplex before giving up
                h.clearSolver()
                h.setOptionValue("simplex_strategy", _DUAL)
                h.run()
            rounds += 1
            if h.getModelStatus() != _OPTIMAL:
                break
            sol = h.getSolution()
            y = np.asarray(sol.row_dual, np.float64)
            d = model.reduced_costs(y)
            d[in_master] = 0.0
            scale = max(1.0, float(np.abs(model.xv).max(initial=1.0) * np.abs(y).max(initial=0.0)))
            neg = np.flatnonzero(d < -1e-9 * scale)
            left = deadline - time.perf_counter()
            cut = len(neg) > 0 and left <= 0
            if len(neg) == 0 or cut:
                break
            if np.isfinite(deadline):  # the next round may be cut short: keep this feasible point
                kept = (np.asarray(sol.col_value, np.float64), len(order),
                        float(h.getInfo().objective_function_value))
                h.setOptionValue("time_limit", max(left, 1e-4))
            if len(neg) > self.batch:
                neg = neg[np.argpartition(d[neg], self.batch)[:self.batch]]
            s_, i_, v_ = model.x_csc(neg)
            k = len(neg)
            h.addCols(k, np.zeros(k), np.zeros(k), np.ones(k), len(i_), s_[:-1], i_, v_)
            in_master[neg] = True
            order.append(neg)
            h.setOptionValue("simplex_strategy", _PRIMAL)
        info = h.getInfo()
        status = "time_limit_reached" if cut else self._status()
        if int(info.primal_solution_status) == _FEASIBLE and h.getModelStatus() == _OPTIMAL:
            cv, n_blocks, obj = np.asarray(h.getSolution().col_value, np.float64), len(order), \
                float(info.objective_function_value)
        elif kept is not None:
            cv, n_blocks, obj = kept
        else:
            return SolveResult(status, False, np.zeros(model.nx), float("nan"), float("nan"),
                               time.perf_counter() - t0, rounds, int(in_master.sum()))
        x = np.zeros(model.nx)
        xcols = np.concatenate(order[:n_blocks])
        n0, nrest = len(cols), len(model.rest_count)
        x[xcols] = np.concatenate([cv[:n0], cv[n0 + nrest:n0 + nrest + len(xcols) - n0]])
        return SolveResult(status, True, x, obj, obj, time.perf_counter() - t0, rounds, len(xcols))

    def solve_lp_full(self, model: Model, time_limit: float = INF) -> SolveResult:
        """The LP over every column at once (reference for tests and benchmarks)."""
        t0 = time.perf_counter()
        self._load(model.arrays(), time_limit, "choose", _DUAL)
        self.h.run()
        info = self.h.getInfo()
        has = int(info.primal_solution_status) == _FEASIBLE
        x = np.asarray(self.h.getSolution().col_value[:model.nx], np.float64) if has else np.zeros(model.nx)
        obj = float(info.objective_function_value) if has else float("nan")
        return SolveResult(self._status(), has, x, obj, obj, time.perf_counter() - t0, 1, model.nx)


# --------------------------------------------------------------------------------------------------
# rounding
@njit(cache=True, nogil=True)
def _fill_kernel(add, w, prompt, slots, kv, loads, order, assign, target):  # pragma: no cover - compiled
    """``fill``'s loop (see there); updates assign, slots, kv and loads in place."""
    G, H1 = loads.shape
    M = np.empty(H1)
    for h in range(H1):
        M[h] = loads[0, h]
        for g in range(1, G):
            if loads[g, h] > M[h]:
                M[h] = loads[g, h]
    wsum = np.zeros(G)
    placed = 0
    for i in range(len(assign)):
        if assign[i] >= 0:
            placed += 1
    for g in range(G):
        for h in range(H1):
            wsum[g] += w[h] * loads[g, h]
    for j in range(len(order)):
        if placed >= target:
            break
        i = order[j]
        if assign[i] >= 0:
            continue
        p = prompt[i]
        best = -1
        best_raise = 0.0
        for g in range(G):
            if slots[g] <= 0 or kv[g] < p:
                continue
            r = 0.0
            for h in range(H1):
                x = loads[g, h] + add[i, h] - M[h]
                if x > 0.0:
                    r += w[h] * x
            if best < 0 or r < best_raise or (r == best_raise and wsum[g] < wsum[best]):
                best = g
                best_raise = r
        if best < 0:
            continue
        assign[i] = best
        placed += 1
        slots[best] -= 1
        kv[best] -= p
        for h in range(H1):
            loads[best, h] += add[i, h]
            wsum[best] += w[h] * add[i, h]
            if loads[best, h] > M[h]:
                M[h] = loads[best, h]


@njit(cache=True, nogil=True)
def _take_kernel(req, wkr, prompt, slots, kv, assign, target):  # pragma: no cover - compiled
    """Rounding's first pass: take (req, wkr) pairs in the given order while they fit, up to target."""
    placed = 0
    for j in range(len(req)):
        i = req[j]
        g = wkr[j]
        if assign[i] >= 0 or slots[g] <= 0 or kv[g] < prompt[i]:
            continue
        assign[i] = g
        slots[g] -= 1
        kv[g] -= prompt[i]
        placed += 1
        if placed >= target:
            break
    return placed


def fill(pb: PoolProblem, assign: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Place unplaced requests, in ``order``, until K are placed: each goes to the worker with a slot and
    KV room where it raises the weighted envelope least (ties: the lower weighted load, then the lower
    index). Limits always hold."""
    assign = np.array(assign, dtype=np.int64)
    sel = assign >= 0
    if int(sel.sum()) >= pb.target:
        return assign
    slots = pb.free_slots - np.bincount(assign[sel], minlength=pb.G)
    kv = pb.free_kv - np.bincount(assign[sel], weights=pb.prompt[sel], minlength=pb.G).astype(np.int64)
    _fill_kernel(pb.add, pb.weights, pb.prompt, slots, kv, predicted_loads(pb, assign),
                 np.ascontiguousarray(order, dtype=np.int64), assign, pb.target)
    return assign


def greedy_placement(pb: PoolProblem) -> np.ndarray:
    """Largest first (discounted added load), each where it raises the envelope least; falls back to
    the count-greedy packing when that admits more (KV binding)."""
    order = np.argsort(-(pb.add @ pb.weights), kind="stable")
    assign = fill(pb, np.full(pb.N, -1, np.int64), order)
    if int((assign >= 0).sum()) < pb.floor:
        assign = fill(pb, pb.greedy_count(), order)
    return assign


def round_placement(pb: PoolProblem, x_req: np.ndarray, x_wkr: np.ndarray, x_val: np.ndarray,
                    tol: float = 1e-6) -> np.ndarray:
    """An integral placement from fractional x that respects every limit.

    Pairs are taken largest x first (older request first on ties) while the request is unplaced and the
    worker has a slot and KV room, up to K; requests still out are then placed by ``fill`` (largest total
    x first, then largest added load); if that admits fewer than K_lb, fill starts from the count-greedy
    packing instead.
    """
    assign = np.full(pb.N, -1, np.int64)
    if pb.target == 0:
        return assign
    keep = x_val > tol
    req, wkr, val = x_req[keep], x_wkr[keep], x_val[keep]
    order = np.lexsort((req, -val))
    placed = _take_kernel(req[order], wkr[order], pb.prompt, pb.free_slots.copy(), pb.free_kv.copy(),
                          assign, pb.target)
    if placed >= pb.target:
        return assign
    xsum = np.bincount(req, weights=val, minlength=pb.N)
    rest = np.lexsort((-(pb.add @ pb.weights), -xsum))
    out = fill(pb, assign, rest)
    if int((out >= 0).sum()) < pb.floor:
        out = fill(pb, pb.greedy_count(), rest)
    return out


def integral_solution(pb: PoolProblem, model: Model, x: np.ndarray) -> np.ndarray | None:
    """The placement a MILP solution encodes, or None if it breaks a limit (then round it instead)."""
    on = x > 0.5
    if np.bincount(model.x_req[on], minlength=pb.N).max(initial=0) > 1:
        return None
    assign = np.full(pb.N, -1, np.int64)
    assign[model.x_req[on]] = model.x_wkr[on]
    return None if limit_violations(pb, assign) else assign


def better(pb: PoolProblem, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The placement that admits more, then has the lower imbalance objective (a on ties)."""
    na, nb = int((a >= 0).sum()), int((b >= 0).sum())
    if na != nb:
        return a if na > nb else b
    return a if imbalance_objective(pb, a) <= imbalance_objective(pb, b) + 1e-9 else b
