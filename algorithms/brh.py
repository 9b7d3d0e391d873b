"""BR-H: BR-0 with a discounted lookahead of H steps (DESIGN.md section 5), family POOL.

A termination classifier (algorithms.classifiers) gives q_i(h) = P(request i still runs h steps ahead).
Predicted loads s_g(h) = sum over R_g of q_i(h)*(l_i + h) (+ tokens committed to prefill, as in BR-0),
margins m_g(h) = max_k s_k(h) - s_g(h), and admitting candidate i adds a_i(h) = q_i(h)*(p_i + h). The
value of a step's placement is the discounted joint F-score

    V^H = sum_{h=0..H} gamma^h [ sum_g D_g(h) - G * max_g (D_g(h) - m_g(h))^+ ]

(algorithms.fscore.horizon_value; per worker this is F^H_g = sum_h gamma^h [D_h - G*(D_h - m_g(h))^+]).
It is maximised by BR-0's two stages lifted to H+1 columns (algorithms.br0.plan): an envelope raise u
gives capacities c_g(h) = m_g(h) + u; a request fits a worker when a_i(h) <= c_g(h) - D_g(h) for every
h; "largest" and "most remaining capacity" are measured as gamma-discounted sums over h; u candidates are
the smallest raises that would let each left-out request in. With H = 0 every one of these reduces to
BR-0's quantity, so BR-H(H=0) makes BR-0's decisions exactly (tested).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from algorithms.br0 import Br0Config, PoolRouterBase, plan
from algorithms.fscore import admitted_loads, discount_weights, margins, predicted_loads
from framework.classifier import ClassifierOptions, classifier_from_options
from framework.errors import ConfigError
from framework.policy import PolicyContext, register_policy
from framework.view import ClusterView, Placements


@dataclass
class BrhConfig(Br0Config, ClassifierOptions):
    """BR-0's options plus the lookahead and the termination classifier."""

    name: str = "brh"
    horizon: int = field(default=16, metadata={"help": "H, lookahead in decode steps (0 = BR-0)"})
    gamma: float = field(default=0.9, metadata={"help": "discount per step of lookahead, in (0, 1]"})


@register_policy("brh", config=BrhConfig)
class BRH(PoolRouterBase):
    """BalanceRoute BR-H (see the module docstring)."""

    def __init__(self, config: BrhConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        if config.horizon < 0:
            raise ConfigError(f"policy.horizon={config.horizon} (brh) must be >= 0.")
        if not 0.0 < config.gamma <= 1.0:
            raise ConfigError(f"policy.gamma={config.gamma} (brh) must be in (0, 1].")
        self.classifier = classifier_from_options(config, context)
        self.weights = discount_weights(config.horizon, config.gamma)

    def decide(self, view: ClusterView) -> Placements:
        ids, prompt = self.window_ids(view)
        if len(ids) == 0:
            return Placements.empty()
        forced = self.forced_mask(view, ids)
        H = self.config.horizon
        q = self.classifier.survival(view, H, ids)
        l_run = view.running_prompt + view.running_decoded
        s = predicted_loads(q.running, l_run, view.running_worker, self.G, base=view.committed_tokens)
        A = admitted_loads(q.candidates, prompt)
        pl = plan(A, self.weights, margins(s), prompt, view.free_slots, view.free_kv,
                  self.worker_order(view), work_conserving=self.config.work_conserving, forced=forced,
                  force_smallest=self.config.force_order == "smallest",
                  max_u=self.config.max_u_candidates)
        return self.to_placements(view, ids, pl)

    def describe(self) -> dict[str, Any]:
        return {"classifier": self.config.classifier}
