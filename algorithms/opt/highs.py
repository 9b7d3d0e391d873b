"""The HiGHS driver: one reusable solver instance, LP by column generation, MILP with a warm start.

Also the project's one workaround for a HiGHS 1.16 defect, used by this driver and by the offline
optimum (analysis.offline.milp): with a MIP start (and presolve) HiGHS can report the better objective it
found while returning the start's columns (seen on a 5 x 2 pool: 624 reported, the start's 627
returned). ``reports_its_columns`` detects it; ``retry_inconsistent`` solves again, changing what the
caller says caused it (presolve off here, no start in the offline MILP), while time is left.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:  # the bare core class: same solver, no banner on construction, no interrupt-handling thread
    from highspy._core import _Highs as _HighsClass
except ImportError:  # pragma: no cover - other highspy layouts
    from highspy import Highs as _HighsClass
from highspy import _core as _hcore

from algorithms.opt.model import Model
from algorithms.opt.problem import PoolProblem

INF = float("inf")
_COLWISE = int(_hcore.MatrixFormat.kColwise)
_MINIMIZE = int(_hcore.ObjSense.kMinimize)
_OPTIMAL = _hcore.HighsModelStatus.kOptimal
_FEASIBLE = 2  # SolutionStatus.kSolutionStatusFeasible
_DUAL, _PRIMAL = 1, 4  # simplex_strategy values


def reports_its_columns(h, cost: np.ndarray | None = None, offset: float | None = None) -> bool:
    """Whether the columns HiGHS returned have the objective it reports (True when it has no solution).

    ``cost``/``offset`` are the model's objective (read from HiGHS's copy of the model when not given).
    Anything that reads the returned columns as the optimum (a placement, a proof) must check this.
    """
    info = h.getInfo()
    if int(info.primal_solution_status) != _FEASIBLE:
        return True
    if cost is None or offset is None:
        lp = h.getLp()
        cost, offset = np.asarray(lp.col_cost_, np.float64), float(lp.offset_)
    cols = np.asarray(h.getSolution().col_value, np.float64)
    own = float(np.dot(cost, cols) + offset)
    obj = float(info.objective_function_value)
    return abs(own - obj) <= 1e-6 * max(1.0, abs(obj))


def retry_inconsistent(attempt: Callable[[int, float], bool], tries: int, time_limit: float,
                       min_left: float = 0.0, started: float | None = None) -> bool:
    """Run ``attempt(k, seconds_left)`` for k = 0, 1, ... until it returns True (its result is
    consistent, see ``reports_its_columns``), ``tries`` are used, or no more than ``min_left`` seconds
    remain (HiGHS rejects a negative limit and would keep the previous one). The clock runs from
    ``started`` (a perf_counter reading; default now); the first attempt gets all of ``time_limit``.
    Returns whether the last attempt run was consistent."""
    deadline = (time.perf_counter() if started is None else started) + time_limit
    left = time_limit
    for k in range(tries):
        if k and left <= min_left:
            break
        if attempt(k, left):
            return True
        left = deadline - time.perf_counter()
    return False


@dataclass
class SolveResult:
    status: str  # HiGHS model status, lower case with underscores ("optimal", "time_limit", ...)
    has_solution: bool
    x: np.ndarray  # (nx,) values of every x column (zeros if no solution)
    objective: float  # model objective incl. the constant and rho*u (nan if no solution)
    bound: float  # MILP: HiGHS's dual bound; LP: the objective
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
        found = None
        # the defect needs a MIP start and presolve: without presolve HiGHS returns what it reports
        presolves = ("choose", "off") if start is not None else ("choose",)

        def attempt(k: int, left: float) -> bool:
            nonlocal found
            found = self._run_milp(arrays, model, pb, left, start, presolves[k]) or found
            return found is None or found[3]

        retry_inconsistent(attempt, len(presolves), time_limit, started=t0)
        info = self.h.getInfo()
        status = self._status()
        has = found is not None
        if has:
            cols, obj, own, consistent = found
            if not consistent:
                obj, status = own, "inconsistent_solution"  # what we return is what we report
        x = cols[:model.nx] if has else np.zeros(model.nx)
        return SolveResult(status, has, x, obj if has else float("nan"), float(info.mip_dual_bound),
                           1, model.nx)

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
        own = float(np.dot(arrays["cost"], cols) + arrays["offset"])
        return (cols, float(info.objective_function_value), own,
                reports_its_columns(h, arrays["cost"], arrays["offset"]))

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
                               rounds, int(in_master.sum()))
        x = np.zeros(model.nx)
        xcols = np.concatenate(order[:n_blocks])
        n0, nrest = len(cols), len(model.rest_count)
        x[xcols] = np.concatenate([cv[:n0], cv[n0 + nrest:n0 + nrest + len(xcols) - n0]])
        return SolveResult(status, True, x, obj, obj, rounds, len(xcols))

    def solve_lp_full(self, model: Model, time_limit: float = INF) -> SolveResult:
        """The LP over every column at once (reference for tests and benchmarks)."""
        self._load(model.arrays(), time_limit, "choose", _DUAL)
        self.h.run()
        info = self.h.getInfo()
        has = int(info.primal_solution_status) == _FEASIBLE
        x = np.asarray(self.h.getSolution().col_value[:model.nx], np.float64) if has else np.zeros(model.nx)
        obj = float(info.objective_function_value) if has else float("nan")
        return SolveResult(self._status(), has, x, obj, obj, 1, model.nx)
