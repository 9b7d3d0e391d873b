"""The paper's output-length predictors as termination classifiers (DESIGN.md section 5).

- ``survival``: the empirical output-length distribution of the training split (``empirical``'s table;
  the two names are the same classifier).
- ``exact_match``: an empirical distribution per prompt key (framework.workloads.keys: Mooncake's
  hash_ids, a CSV hash column), learnt from the training split's keyed requests and from every request
  that completes during the run (on_complete: its key and the tokens it produced; never a request still
  running). A request falls back to ``survival`` when its key is unknown (-1: the trace has no hashes),
  when the key has fewer than ``match_support`` observations, or when the request has outlived every
  observation of its key. On the shared traces (no hashes) it is therefore ``survival`` exactly.
- ``noisy_oracle``: BF-IO's noise model, o_est = o * U[1 - dl, 1 + du] drawn once per request; the
  request is predicted to run max(round(o_est) - d, 1) more steps (flagged as an oracle).
Each returns q_i(h) = P(request i still runs h steps ahead), q[:, 0] = 1, non-increasing in h.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms._keyed import KeyedOutputs
from algorithms.classifiers import (EmpiricalClassifier, EmpiricalConfig, PerRequestDraws, SurvivalConfig,
                                    _horizon, _truth, candidate_column, candidate_prompts)
from framework.classifier import ClassifierConfig, Survival, TerminationClassifier, register_classifier
from framework.policy import PolicyContext
from framework.view import ClusterView


@register_classifier("survival", config=SurvivalConfig)
class SurvivalClassifier(EmpiricalClassifier):
    """The paper's Survival predictor: ``empirical`` under the paper's name."""


@dataclass
class ExactMatchConfig(ClassifierConfig):
    """``match_support``: observations a key needs before its own distribution is used (1: any key seen,
    the paper's "miss" = an unseen prompt); ``min_support``: the survival fallback's (EmpiricalConfig)."""

    match_support: int = 1
    min_support: int = 20

    def validate(self) -> None:
        self.require_number("match_support", 1, integer=True)
        self.require_number("min_support", 1, integer=True)


@register_classifier("exact_match", config=ExactMatchConfig)
class ExactMatchClassifier(TerminationClassifier):
    """Per-prompt-key empirical survival, learnt online, falling back to survival (module docstring)."""

    def __init__(self, context: PolicyContext, config: ExactMatchConfig | None = None) -> None:
        config = config or ExactMatchConfig()
        super().__init__(context, config)
        self.need = int(config.match_support)
        self.pooled = EmpiricalClassifier(context, EmpiricalConfig(prompt_bins=1, min_support=config.min_support))
        self.store = KeyedOutputs()
        tr = context.training
        if tr is not None and tr.prompt_key is not None:
            self.store.add(tr.prompt_key, tr.output_tokens)
        self.key_of = np.full(1024, -1, np.int64)  # key by request id, as seen at the router
        self.hits = 0
        self.asked = 0

    def _note(self, view: ClusterView) -> None:
        """Remember the keys of requests the router has seen (a finished request is reported by id)."""
        for ids, keys in ((view.waiting_ids, view.waiting_key), (view.running_ids, view.running_key)):
            if len(ids):
                top = int(ids.max()) + 1
                if top > len(self.key_of):
                    grow = np.full(max(top, 2 * len(self.key_of)) - len(self.key_of), -1, np.int64)
                    self.key_of = np.concatenate((self.key_of, grow))
                self.key_of[ids] = keys

    def observe(self, request_ids: np.ndarray, workers: np.ndarray, output_tokens: np.ndarray) -> None:
        """on_complete: the finished requests' keys and token counts join their keys' tables."""
        ids = np.asarray(request_ids, np.int64)
        known = ids < len(self.key_of)
        self.store.add(self.key_of[ids[known]], np.asarray(output_tokens, np.int64)[known])

    def expected_lifetime(self, view: ClusterView, horizon: int) -> np.ndarray:
        self._note(view)
        H = _horizon(horizon)
        p, d = np.asarray(view.running_prompt), np.asarray(view.running_decoded)
        c = self.pooled.lifetimes(p, d, H)
        mine, hit = self.store.lifetimes(self.store.row_of(view.running_key), d, H, self.need)
        self.hits += int(hit.sum())
        self.asked += len(hit)
        return np.where(hit, mine, c)

    def q(self, prompt: np.ndarray, decoded: np.ndarray, keys: np.ndarray, horizon: int) -> np.ndarray:
        H = _horizon(horizon)
        decoded = np.asarray(decoded, np.int64)
        base = self.pooled.q(np.asarray(prompt, np.int64), decoded, H)
        mine, hit = self.store.survival(self.store.row_of(keys), decoded, H, self.need)
        base[hit] = mine[hit]
        return base

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        self._note(view)
        run = self.q(view.running_prompt, view.running_decoded, view.running_key, horizon)
        cp = candidate_prompts(view, candidate_ids)
        ck = candidate_column(view, candidate_ids, view.waiting_key)
        return Survival(run, self.q(cp, np.zeros(len(cp), np.int64), ck, horizon))

    def hit_rate(self) -> float | None:
        """Share of running-request predictions answered from the request's own key (None: none asked)."""
        return self.hits / self.asked if self.asked else None


@dataclass
class NoisyOracleConfig(ClassifierConfig):
    """o_est = o * U[1 - noise_low, 1 + noise_high]: noise_low in [0, 1), noise_high >= 0."""

    noise_low: float = 0.2
    noise_high: float = 0.2

    def validate(self) -> None:
        self.require(isinstance(self.noise_low, (int, float)) and 0.0 <= self.noise_low < 1.0, "noise_low",
                     "must be in [0, 1) (o * U[1 - noise_low, 1 + noise_high]).")
        self.require_number("noise_high", 0)


@register_classifier("noisy_oracle", config=NoisyOracleConfig)
class NoisyOracleClassifier(TerminationClassifier):
    """o_est = o * U[1 - dl, 1 + du], drawn once per request from a stream keyed by id (flagged)."""

    is_oracle = True
    oracle_label = "classifier:noisy_oracle"

    def __init__(self, context: PolicyContext, config: NoisyOracleConfig | None = None) -> None:
        config = config or NoisyOracleConfig()
        super().__init__(context, config)
        lo, hi = float(config.noise_low), float(config.noise_high)
        self.lo, self.hi = lo, hi
        self.oracle_label = f"classifier:noisy_oracle(U[{1 - lo:g}, {1 + hi:g}])"
        self.channel = context.request_oracle(self)
        self.factors = PerRequestDraws(context.rng(0x0015E), lambda rng, n: rng.uniform(1 - lo, 1 + hi, n))

    def _q(self, ids: np.ndarray, decoded: np.ndarray, H: int) -> np.ndarray:
        o_est = np.maximum(np.rint(self.channel.output_tokens(ids) * self.factors(ids)), 1)
        return _truth(np.maximum(o_est - decoded, 1), H)

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        H = _horizon(horizon)
        rid = np.asarray(view.running_ids, np.int64)
        cand = np.asarray(candidate_ids, np.int64)
        return Survival(self._q(rid, np.asarray(view.running_decoded, np.int64), H),
                        self._q(cand, np.zeros(len(cand), np.int64), H))
