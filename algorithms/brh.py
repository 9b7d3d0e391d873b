"""BR-H: BR-0 with a discounted lookahead of H steps (DESIGN.md section 5), family POOL.

Paper form (``decomposition=paper``, default). Per running request the router predicts how much of the
next H+1 steps (h = 0..H) it will still run, c_i = E[min(r_i, H+1)] = sum_h q_i(h), from the termination
classifier's survival curve q_i(h) = P(runs h steps ahead) (algorithms.classifiers; for the empirical
Survival and ExactMatch predictors this equals the paper's (1 - P(finish within H)) * H + P(finish within
H) * E[remaining | finish within H]). A request is then taken to run c_i more steps: its load at h is
(l_i + h) * clip(c_i - h, 0, 1) (the oracle's exact lifetime when c_i is exact). Predicted loads
L_g(h) (+ tokens committed to prefill, as in BR-0), envelope M_h, margins m_g(h) = M_h - L_g(h),
discounts d = (1, gamma, ..., gamma^H) and the paper's score

    F_g(Q) = alpha * (1'd) * Ds - beta * sum_h d_h * (Ds - m_g(h))^+,   beta = G unless set,

maximised by BR-0's two stages (algorithms._twostage), the worker queue keyed by the discounted mean
predicted load. With H = 0 this is BR-0 exactly (tested). Defaults: H = 80 (the paper's); gamma = 0.9
(our choice; the paper's value is not public): the score holds an admitted request's Ds constant over h
while the running loads it is compared with finish and grow, so far columns mislead, and 0.9 keeps
about ten effective steps (measured in docs/brh.md). ``refill=pool`` keeps the load of the finishes a
backlogged pool will refill (docs/brh.md says where that helps and where it hurts).

Envelope form (``decomposition=envelope``): the earlier reading, BR-0's envelope-raise stages lifted to
H+1 columns on the survival-weighted loads (algorithms.br0.plan); see docs/brh.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from algorithms.br0 import Br0Config, PoolRouterBase, plan
from algorithms.fscore import admitted_loads, discount_weights, lifetime_loads, margins, predicted_loads
from framework.classifier import (ClassifierOptions, attach_learning, check_classifier_options,
                                  classifier_from_options)
from framework.policy import PolicyContext, register_policy
from framework.view import ClusterView, Placements


@dataclass
class BrhConfig(Br0Config, ClassifierOptions):
    """BR-0's options plus the lookahead, the score's weights and the termination classifier."""

    name: str = "brh"
    horizon: int = field(default=80, metadata={"help": "H, lookahead in decode steps (0 = BR-0)"})
    gamma: float = field(default=0.9, metadata={"help": "discount per step of lookahead, in (0, 1]"})
    alpha: float = field(default=1.0, metadata={"help": "paper score: weight of the admitted load"})
    beta: Optional[float] = field(default=None, metadata={
        "help": "paper score: weight of the envelope overflow; null = G (BR-0's slope at H = 0)"})
    refill: str = field(default="none", metadata={
        "help": "none: a predicted finish lowers its worker's load; pool: the first finishes the waiting "
                "pool can refill keep their load (the refill is chosen to fit), docs/brh.md"})

    def validate(self) -> None:
        super().validate()
        self.require_number("horizon", 0, integer=True)
        self.require(0.0 < self.gamma <= 1.0, "gamma", "must be in (0, 1].")
        self.require_number("alpha", 0, "> 0", strict=True)
        self.require(self.beta is None or self.beta >= 0, "beta", "must be >= 0, or null for G.")
        self.require_choice("refill", ("none", "pool"))
        self.require(self.refill == "none" or self.decomposition == "paper", "refill",
                     "refill=pool models the paper form's lifetimes; use decomposition=paper or refill=none.")
        check_classifier_options(self)


def refilled_lifetimes(c: np.ndarray, horizon: int, backlog: int) -> np.ndarray:
    """The `backlog` earliest predicted finishes within the horizon are refilled from the pool by a
    request chosen to fit, so their worker's load is taken not to drop: lifetime lifted to H+1."""
    if backlog <= 0:
        return c
    soon = np.flatnonzero(c < horizon + 1)
    if len(soon) == 0:
        return c
    out = np.array(c, np.float64, copy=True)
    out[soon[np.argsort(c[soon], kind="stable")[:backlog]]] = horizon + 1
    return out


@register_policy("brh", config=BrhConfig)
class BRH(PoolRouterBase):
    """BalanceRoute BR-H (see the module docstring)."""

    def __init__(self, config: BrhConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.classifier = classifier_from_options(config, context)
        attach_learning(self, self.classifier)  # exact_match learns from completed requests
        self.weights = discount_weights(config.horizon, config.gamma)
        self.beta = float(self.G if config.beta is None else config.beta)

    def decide(self, view: ClusterView) -> Placements:
        ids, prompt = self.window_ids(view)
        if len(ids) == 0:
            return Placements.empty()
        forced = self.forced_mask(view, ids)
        H = self.config.horizon
        l_run = view.running_prompt + view.running_decoded
        if self.config.decomposition == "paper":
            c = self.classifier.expected_lifetime(view, H)
            if self.config.refill == "pool":
                c = refilled_lifetimes(c, H, view.num_waiting - int(view.free_slots.sum()))
            L = lifetime_loads(c, l_run, view.running_worker, self.G, base=view.committed_tokens, horizon=H)
            return self.paper_step(view, ids, prompt, L, self.weights, self.config.alpha, self.beta, forced)
        q = self.classifier.survival(view, H, ids)
        s = predicted_loads(q.running, l_run, view.running_worker, self.G, base=view.committed_tokens)
        A = admitted_loads(q.candidates, prompt)
        pl = plan(A, self.weights, margins(s), prompt, view.free_slots, view.free_kv,
                  self.worker_order(view), work_conserving=self.config.work_conserving, forced=forced,
                  force_smallest=self.config.force_order == "smallest",
                  max_u=self.config.max_u_candidates)
        return self.to_placements(view, ids, pl)

    def describe(self) -> dict[str, Any]:
        out = {"classifier": self.config.classifier, "decomposition": self.config.decomposition}
        hit_rate = getattr(self.classifier, "hit_rate", None)
        if callable(hit_rate):  # exact_match: share of predictions from the request's own prompt key
            out["classifier_key_hit_rate"] = hit_rate()
        return out
