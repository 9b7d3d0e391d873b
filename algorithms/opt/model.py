"""The sparse LP/MILP of a PoolProblem (see the package docstring, "Sparse form").

Columns are fixed-width numpy blocks so column generation can pass any subset to HiGHS without loops.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.opt.problem import PoolProblem, predicted_loads

INF = float("inf")


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
