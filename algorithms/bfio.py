"""``bfio``: the BF-IO placement model as a MILP with a per-step time limit (DESIGN.md section 5).

The integer version of ``lp``'s model (algorithms/opt/): x_ig in {0, 1}, the same objective
sum_h gamma^h (G*M_h - S_h), limits and work conservation. Each step:
  1. the greedy placement; if it attains the lower bound it is optimal and no solver runs;
  2. the LP relaxation, rounded (as ``lp``; bounded by ``lp_time_limit_s`` if set) -> the fallback;
  3. HiGHS's MILP within ``time_limit_s`` (its own clock), warm-started from the fallback;
  4. the MILP's incumbent if it has one (optimal, or the best found when the limit hit), else the
     fallback (the rounded LP). Every path respects every limit.
The run summary counts how often each path was taken (``bfio_milp_optimal``, ``bfio_milp_time_limit``,
``bfio_fallback`` ...). The window is small by default (32 requests, not widened to the free slots) so
the MILP is solvable within the limit; widen it with window= / grow_window=true.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algorithms.opt.problem import PoolProblem
from algorithms.opt.rounding import better, integral_solution, round_placement
from algorithms.lp import OptRouterBase, OptRouterConfig, solve_rounded_lp
from framework.policy import register_policy


@dataclass
class BfioConfig(OptRouterConfig):
    name: str = "bfio"
    window: int = field(default=32, metadata={"help": "candidates: the oldest this-many waiting requests"})
    grow_window: bool = field(default=False, metadata={
        "help": "widen the window to min(waiting, free slots) (large MILPs: mostly the fallback)"})
    time_limit_s: float = field(default=0.05, metadata={"help": "MILP time limit per step (s)"})
    lp_time_limit_s: float = field(default=0.0, metadata={
        "help": "limit of the LP that gives the fallback (0 = solve to optimality)"})
    warm_start: bool = field(default=True, metadata={"help": "give the MILP the rounded LP as a start"})
    mip_rel_gap: float = field(default=1e-6, metadata={"help": "MILP relative optimality gap"})

    def validate(self) -> None:
        super().validate()
        self.require_number("time_limit_s", 0, "> 0 seconds", strict=True)
        self.require(0.0 <= self.mip_rel_gap < 1.0, "mip_rel_gap", "must be in [0, 1).")


@register_policy("bfio", config=BfioConfig)
class BFIO(OptRouterBase):
    """Time-limited MILP of the BF-IO model (see the module docstring)."""

    def solver_options(self) -> dict[str, Any]:
        return {"mip_rel_gap": self.config.mip_rel_gap}

    def solve(self, pb: PoolProblem) -> np.ndarray:
        cfg = self.config
        fallback, model = solve_rounded_lp(self, pb, cfg.lp_time_limit_s or float("inf"))
        if model is None:  # nothing to optimise: the greedy placement is optimal
            return fallback
        res = self.solver.solve_milp(model, pb, cfg.time_limit_s, fallback if cfg.warm_start else None)
        self.count("milp_solves")
        self.last_milp = res
        if not res.has_solution:
            self.count("fallback")
            return fallback
        self.count("milp_optimal" if res.status == "optimal" else "milp_time_limit")
        assign = integral_solution(pb, model, res.x)
        if assign is None:  # a tolerance-level breach: round the incumbent, which never breaks a limit
            self.count("milp_rounded")
            assign = round_placement(pb, model.x_req, model.x_wkr, res.x)
        return better(pb, assign, fallback)
