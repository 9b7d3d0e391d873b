"""``lp``: each step, the LP relaxation of the BF-IO placement model, rounded (DESIGN.md section 5).

The model (algorithms/opt/): x_ig in [0, 1] for the candidates x workers, minimise
sum_h gamma^h (G*M_h - S_h) with M_h above every worker's predicted load h steps ahead (running requests'
survival from the termination classifier, plus what is admitted), each request at most once, free slots
and free KV per worker, and work conservation: K = min(candidates, free slots) admitted whenever they fit
(a priced slack covers the KV-bound case, so the most that fit are admitted). HiGHS solves it by column
generation from a greedy placement's vertex (exact at termination). The fractional x is rounded
largest-first with a greedy repair that never breaks a limit; the greedy placement itself is kept if it
scores better, and when it attains the model's lower bound no solver runs at all.

Candidates: the oldest ``window`` waiting requests, widened (``grow_window``, default) to
min(waiting, free slots) as BR-0 does, so every free slot can be filled.

Bounded hold (as BR-0's): selecting K of N starves requests the objective never picks. A candidate left
out while a younger one was admitted, or while a slot stayed free, counts one deliberate hold; after
``max_hold_steps`` of them it is placed first (greedily, where it raises the envelope least) and the model
is solved for the rest.

The run summary gets ``lp_decisions``, ``lp_certified`` (greedy provably optimal), ``lp_relaxations``,
``lp_relaxation_rounds``, ``lp_relaxation_time_limit``, ``lp_greedy_kept``, ``lp_solver_s`` ...; the
solver runs inside decide(), so its time is part of the decision time the simulator records.
Decision times: docs/lp.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algorithms._hold import HoldCounter
from algorithms.opt.highs import HighsSolver
from algorithms.opt.model import Model, build_model
from algorithms.opt.problem import PoolProblem, imbalance_objective, problem_from_view
from algorithms.opt.rounding import better, fill, greedy_placement, round_placement
from framework.classifier import (ClassifierOptions, attach_learning, check_classifier_options,
                                  classifier_from_options)
from framework.policy import POOL, Policy, PolicyConfig, PolicyContext, register_policy
from framework.view import ClusterView, Placements


@dataclass
class OptRouterConfig(PolicyConfig, ClassifierOptions):
    """Options common to ``lp`` and ``bfio``."""

    window: int = field(default=256, metadata={"help": "candidates: the oldest this-many waiting requests"})
    grow_window: bool = field(default=True, metadata={
        "help": "widen the window to min(waiting, free slots) so every free slot can be filled"})
    horizon: int = field(default=16, metadata={"help": "H, lookahead in decode steps (0 = this step only)"})
    gamma: float = field(default=0.9, metadata={"help": "discount per step of lookahead, in (0, 1]"})
    max_hold_steps: int = field(default=100, metadata={
        "help": "a request deliberately held this many decisions is placed first"})
    threads: int = field(default=1, metadata={"help": "HiGHS threads"})
    column_batch: int = field(default=2048, metadata={
        "help": "LP column generation: most columns added per pricing round"})
    lp_time_limit_s: float = field(default=0.0, metadata={
        "help": "stop the LP after this long with its restricted optimum (0 = solve to optimality)"})

    def validate(self) -> None:
        self.require_number("window", 1, integer=True)
        self.require_number("horizon", 0, integer=True)
        self.require(0.0 < self.gamma <= 1.0, "gamma", "must be in (0, 1].")
        self.require_number("max_hold_steps", 0, integer=True)
        self.require_number("threads", 1, integer=True)
        self.require_number("lp_time_limit_s", 0, ">= 0 (0 = no limit)")
        self.require_number("column_batch", 1, integer=True)
        check_classifier_options(self)


@dataclass
class LpConfig(OptRouterConfig):
    name: str = "lp"


class OptRouterBase(Policy):
    """Window, bounded hold, forced pre-placement and statistics; subclasses implement ``solve``."""

    family = POOL

    def __init__(self, config: OptRouterConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        if config.classifier == "none" and not config.classifier_params:
            self.classifier = None  # q = 1 without building arrays of ones
        else:
            self.classifier = classifier_from_options(config, context)
            attach_learning(self, self.classifier)
        self.solver = HighsSolver(threads=config.threads, batch=config.column_batch,
                                  **self.solver_options())
        self.holds = HoldCounter(config.max_hold_steps)
        self.stats: dict[str, float] = {"decisions": 0, "certified": 0, "solver_s": 0.0}

    def solver_options(self) -> dict[str, Any]:
        return {}

    # --- the per-step problem ------------------------------------------------------------------
    @staticmethod
    def certified(pb: PoolProblem, assign: np.ndarray) -> bool:
        """True if ``assign`` admits K and attains the lower bound, hence is LP- and MILP-optimal."""
        if int((assign >= 0).sum()) != pb.target:
            return False
        lb = pb.lower_bound()
        return imbalance_objective(pb, assign) <= lb + 1e-9 * max(1.0, abs(lb))

    def solve(self, pb: PoolProblem) -> np.ndarray:  # pragma: no cover - abstract
        """Placement (N,) of the problem's candidates, -1 = not admitted; every limit respected."""
        raise NotImplementedError

    def count(self, key: str, by: float = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + by

    # --- one decision ------------------------------------------------------------------------
    def candidates(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        waiting = view.num_waiting
        n = min(waiting, self.config.window)
        if self.config.grow_window:
            n = max(n, min(waiting, int(view.free_slots.sum())))
        return view.waiting_ids[:n], view.waiting_prompt[:n]

    def decide(self, view: ClusterView) -> Placements:
        ids, prompt = self.candidates(view)
        if len(ids) == 0:
            return Placements.empty()
        cfg = self.config
        pb = problem_from_view(view, ids, prompt, cfg.horizon, cfg.gamma, self.classifier)
        self.count("decisions")
        forced = self.holds.overdue(ids)
        if forced.any() and pb.target:
            idx = np.flatnonzero(forced)[:pb.target]  # oldest first
            first = fill(pb, np.full(pb.N, -1, np.int64), idx)
            rest = first < 0
            sub = pb.without(first)
            assign = first.copy()
            assign[rest] = self._solve(sub)
        else:
            assign = self._solve(pb)
        self.holds.record(ids, assign, int(view.free_slots.sum()))
        sel = assign >= 0
        return Placements(ids[sel].astype(np.int64), assign[sel])

    def _solve(self, pb: PoolProblem) -> np.ndarray:
        if pb.target == 0:
            return np.full(pb.N, -1, np.int64)
        t0 = time.perf_counter()
        out = self.solve(pb)
        self.stats["solver_s"] += time.perf_counter() - t0
        return out

    def describe(self) -> dict[str, Any]:
        d = int(self.stats["decisions"])
        out: dict[str, Any] = {"classifier": self.config.classifier}
        out.update({f"{self.name}_{k}": (round(v, 6) if isinstance(v, float) else int(v))
               for k, v in self.stats.items()})
        out[f"{self.name}_solver_ms_mean"] = round(1e3 * self.stats["solver_s"] / d, 4) if d else 0.0
        return out


@register_policy("lp", config=LpConfig)
class LP(OptRouterBase):
    """Rounded LP relaxation of the BF-IO model (see the module docstring)."""

    def solve(self, pb: PoolProblem) -> np.ndarray:
        return solve_rounded_lp(self, pb, self.config.lp_time_limit_s or float("inf"))[0]



def solve_rounded_lp(router: OptRouterBase, pb: PoolProblem,
                     time_limit: float) -> tuple[np.ndarray, Model | None]:
    """(placement, model): the rounded LP, or the greedy placement if it scores better; model is None
    when there is nothing to optimise (the greedy placement is certified optimal, or no candidate fits
    any worker), and then no solver runs."""
    greedy = greedy_placement(pb)
    if router.certified(pb, greedy):
        router.count("certified")
        return greedy, None
    model = build_model(pb)
    if model.nx == 0:  # no candidate fits any worker's KV room
        router.count("nothing_fits")
        return greedy, None
    res = router.solver.solve_lp(model, model.columns_of(greedy), time_limit)
    router.count("relaxations")
    router.count("relaxation_rounds", res.rounds)
    if not res.has_solution:
        router.count("relaxation_failed")
        return greedy, model
    if res.status != "optimal":
        router.count("relaxation_time_limit")
    rounded = round_placement(pb, model.x_req, model.x_wkr, res.x)
    best = better(pb, rounded, greedy)
    if best is not rounded:
        router.count("greedy_kept")
    return best, model
