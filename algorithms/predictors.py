"""The paper's output-length predictors as termination classifiers (DESIGN.md section 5).

- ``survival``: the empirical output-length distribution of the training split (``empirical``'s table;
  the two names are the same classifier).
- ``exact_match``: an empirical distribution per prompt key, falling back to ``survival`` when the
  prompt was seen fewer than ``match_support`` times in training, or when the request has outlived every
  matched example. The key is the prompt's token count: the shared traces (Azure, ShareGPT) carry no
  prompt hash, and a router sees the length; a trace with hashes (Mooncake hash_ids) would key on them
  once the workload carries them to the view (not wired yet).
- ``noisy_oracle``: BF-IO's noise model, o_est = o * U[1 - dl, 1 + du] drawn once per request; the
  request is predicted to run max(round(o_est) - d, 1) more steps (flagged as an oracle).
Each returns q_i(h) = P(request i still runs h steps ahead), q[:, 0] = 1, non-increasing in h.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from algorithms.classifiers import (EmpiricalClassifier, PerRequestDraws, _conditional_survival, _horizon,
                                    _truth, candidate_prompts)
from framework.classifier import Survival, TerminationClassifier, register_classifier
from framework.errors import ConfigError
from framework.policy import PolicyContext
from framework.view import ClusterView


@register_classifier("survival")
class SurvivalClassifier(EmpiricalClassifier):
    """The paper's Survival predictor: ``empirical`` under the paper's name."""


@register_classifier("exact_match")
class ExactMatchClassifier(TerminationClassifier):
    """Per-prompt-key empirical survival, falling back to the pooled table (see the module docstring)."""

    def __init__(self, context: PolicyContext, match_support: int = 3, min_support: int = 20,
                 **params: Any) -> None:
        super().__init__(context)
        if params:
            raise ConfigError(f"Classifier 'exact_match' has no option(s) {', '.join(sorted(params))}; "
                              "it takes match_support and min_support.")
        if int(match_support) < 1:
            raise ConfigError(f"exact_match classifier: match_support={match_support} must be >= 1.")
        self.pooled = EmpiricalClassifier(context, prompt_bins=1, min_support=min_support)
        tr = context.training
        p = np.asarray(tr.prompt_tokens, np.int64)
        o = np.asarray(tr.output_tokens, np.int64)
        keys, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
        keep = counts >= int(match_support)
        self.keys = keys[keep]
        kmax = self.pooled.kmax
        rows = np.flatnonzero(keep)
        cnt = np.zeros((len(rows) + 1, kmax + 1))
        cnt[0] = self.pooled.cnt[-1]  # row 0: pooled
        self.max_out = np.zeros(len(rows) + 1, np.int64)
        for r, k in enumerate(rows, start=1):
            hist = np.bincount(o[inv == k], minlength=kmax + 1)[:kmax + 1]
            cnt[r] = hist.sum() - np.cumsum(hist)
            self.max_out[r] = int(o[inv == k].max())
        self.cnt = cnt
        self.dcap = np.concatenate(([self.pooled.dcap[-1]], self.max_out[1:] - 1))

    def q(self, prompt: np.ndarray, decoded: np.ndarray, horizon: int) -> np.ndarray:
        H = _horizon(horizon)
        prompt = np.asarray(prompt, np.int64)
        decoded = np.asarray(decoded, np.int64)
        pos = np.searchsorted(self.keys, prompt)
        hit = (pos < len(self.keys)) & (self.keys[np.minimum(pos, len(self.keys) - 1)] == prompt) \
            if len(self.keys) else np.zeros(len(prompt), bool)
        row = np.where(hit, pos + 1, 0)
        row = np.where(decoded < self.max_out[row], row, 0)  # outlived every match: pooled table
        return _conditional_survival(self.cnt, row.astype(np.int64), decoded, self.dcap, H)

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        run = self.q(view.running_prompt, view.running_decoded, horizon)
        cp = candidate_prompts(view, candidate_ids)
        return Survival(run, self.q(cp, np.zeros(len(cp), np.int64), horizon))


@register_classifier("noisy_oracle")
class NoisyOracleClassifier(TerminationClassifier):
    """o_est = o * U[1 - dl, 1 + du], drawn once per request from a stream keyed by id (flagged)."""

    is_oracle = True
    oracle_label = "classifier:noisy_oracle"

    def __init__(self, context: PolicyContext, noise_low: float = 0.2, noise_high: float = 0.2,
                 **params: Any) -> None:
        super().__init__(context)
        if params:
            raise ConfigError(f"Classifier 'noisy_oracle' has no option(s) {', '.join(sorted(params))}; "
                              "it takes noise_low and noise_high (o * U[1 - noise_low, 1 + noise_high]).")
        lo, hi = float(noise_low), float(noise_high)
        if not (0.0 <= lo < 1.0 and hi >= 0.0 and np.isfinite(hi)):
            raise ConfigError(f"noisy_oracle noise_low={noise_low} must be in [0, 1) and noise_high="
                              f"{noise_high} >= 0.")
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
