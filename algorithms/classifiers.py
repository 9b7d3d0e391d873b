"""Termination classifiers for BR-H, lp and bfio (DESIGN.md section 5; interface in framework/classifier).

q_i(h) = P(request i still runs h steps ahead). In the simulator a running request that has decoded d
tokens has o_i - d steps left counting the current one, so it still runs h steps ahead iff o_i > d + h;
a candidate admitted now has d = 0. Every classifier here returns arrays with q[:, 0] == 1 that are
non-increasing in h.

- ``none``: q = 1 (loads only grow; BR-H then differs from BR-0 only through the +h growth).
- ``empirical``: the survival function of output lengths seen in the training split (history that
  precedes the simulated part), optionally per prompt-length bin: q(h) = #{o > d+h} / #{o > d}.
- ``flip_oracle``: ground truth corrupted so that each "finishes within h steps" answer is right with
  probability ``accuracy`` (flagged as an oracle).
- ``survival`` (alias of ``empirical``), ``exact_match`` and ``noisy_oracle`` (BF-IO's o * U[1-dl, 1+du])
  are the paper's predictors: algorithms/predictors.py.
- ``oracle``: ground truth, q(h) = 1 if remaining > h else 0 (the upper bound; flagged).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numba import njit

from framework.classifier import ClassifierConfig, Survival, TerminationClassifier, register_classifier
from framework.errors import ConfigError
from framework.policy import PolicyContext
from framework.view import ClusterView


def candidate_prompts(view: ClusterView, candidate_ids: np.ndarray) -> np.ndarray:
    """Prompt lengths of candidate ids, looked up among the view's waiting requests."""
    return candidate_column(view, candidate_ids, view.waiting_prompt)


def candidate_column(view: ClusterView, candidate_ids: np.ndarray, column: np.ndarray) -> np.ndarray:
    """A per-waiting-request column (prompt, key) at the candidate ids."""
    ids = np.asarray(candidate_ids, dtype=np.int64)
    wid = view.waiting_ids
    if len(ids) == 0:
        return np.empty(0, np.int64)
    wp = column
    # the pool is kept in arrival (= id) order, so the first len(ids) entries are usually the candidates
    if len(ids) <= len(wid) and np.array_equal(wid[:len(ids)], ids):
        return np.asarray(wp[:len(ids)], dtype=np.int64)
    order = np.argsort(wid, kind="stable")
    pos = np.searchsorted(wid, ids, sorter=order)
    pos = np.minimum(pos, len(wid) - 1)
    idx = order[pos]
    if not np.array_equal(wid[idx], ids):
        bad = int(ids[wid[idx] != ids][0])
        raise ConfigError(f"Classifier asked about candidate request {bad}, which is not waiting at the "
                          "router; candidates must come from view.waiting_ids.")
    return np.asarray(wp[idx], dtype=np.int64)


def _horizon(horizon: int) -> int:
    h = int(horizon)
    if h < 0:
        raise ConfigError(f"policy.horizon={horizon} must be >= 0.")
    return h


@register_classifier("none")
class NoClassifier(TerminationClassifier):
    """q = 1: every request is assumed to keep running through the horizon."""

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        H = _horizon(horizon)
        return Survival(np.ones((len(view.running_ids), H + 1)), np.ones((len(candidate_ids), H + 1)))


@dataclass
class EmpiricalConfig(ClassifierConfig):
    """``prompt_bins``: an int (that many equal-count bins of training prompt lengths) or a list of
    interior edges in tokens; ``min_support``: a conditional estimate needs at least this many training
    requests still running at age d (older ages reuse the oldest supported age, i.e. the residual life is
    assumed stationary beyond the data; bins with fewer training requests use the pooled table)."""

    prompt_bins: Any = 1
    min_support: int = 20

    def validate(self) -> None:
        self.require_number("min_support", 1, integer=True)
        b = self.prompt_bins
        if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
            self.require(int(b) >= 1, "prompt_bins", "must be >= 1 (or a list of prompt-length edges).")
            return
        try:
            e = np.asarray(list(b), dtype=np.float64)
        except (TypeError, ValueError):
            raise self.invalid("prompt_bins", "must be an int or a list of prompt-length edges.") from None
        self.require(e.ndim == 1 and not np.any(np.diff(e) <= 0), "prompt_bins",
                     "must be an int or a strictly increasing list of prompt-length edges.")


@dataclass
class SurvivalConfig(EmpiricalConfig):
    """The paper's Survival predictor's options (the same as empirical's)."""


@register_classifier("empirical", config=EmpiricalConfig)
class EmpiricalClassifier(TerminationClassifier):
    """Conditional survival of output lengths from the training split, optionally per prompt bin
    (options: EmpiricalConfig)."""

    def __init__(self, context: PolicyContext, config: EmpiricalConfig | None = None) -> None:
        config = config or EmpiricalConfig()
        super().__init__(context, config)
        prompt_bins, min_support = config.prompt_bins, config.min_support
        tr = context.training
        if tr is None or len(tr) == 0:
            raise ConfigError(f"Classifier {self.name!r} is fitted on the training split, but this run has "
                              "none: set workload.train_fraction > 0 (e.g. 0.1) so the head of the trace "
                              "is kept as history, or choose policy.classifier=none.")
        self.min_support = int(min_support)
        p = np.asarray(tr.prompt_tokens, np.int64)
        o = np.asarray(tr.output_tokens, np.int64)
        self.edges = self._edges(prompt_bins, p)
        nb = len(self.edges) + 1
        kmax = int(o.max())
        self.kmax = kmax
        # table row b < nb: bin b; row nb: pooled.  cnt[r, k] = #{o > k}, k = 0..kmax (cnt[:, kmax] = 0)
        bins = np.searchsorted(self.edges, p, side="right")
        cnt = np.zeros((nb + 1, kmax + 1), np.float64)
        for r, sel in enumerate([bins == b for b in range(nb)] + [np.ones(len(o), bool)]):
            hist = np.bincount(o[sel], minlength=kmax + 1)[:kmax + 1]
            cnt[r] = hist.sum() - np.cumsum(hist)  # #{o > k}
        row = np.arange(nb + 1)
        row[:nb][cnt[:nb, 0] < self.min_support] = nb  # thin bins fall back to the pooled table
        self.bin_row = row[:nb]
        self.cnt = cnt
        # oldest age with enough support, per row (a pooled row thinner than min_support: any support)
        need = np.minimum(self.min_support, np.maximum(cnt[:, 0], 1))
        supported = cnt >= need[:, None]
        self.dcap = np.array([np.flatnonzero(s).max() for s in supported], np.int64)

    @staticmethod
    def _edges(prompt_bins: int | Sequence[float], prompts: np.ndarray) -> np.ndarray:
        if isinstance(prompt_bins, (int, np.integer)):
            k = int(prompt_bins)
            if k == 1:
                return np.empty(0)
            e = np.quantile(prompts, np.arange(1, k) / k)
            return np.unique(e)
        return np.asarray(list(prompt_bins), dtype=np.float64)  # checked by EmpiricalConfig

    def q(self, prompt: np.ndarray, decoded: np.ndarray, horizon: int) -> np.ndarray:
        """q(h) for requests with these prompts and decoded counts, shape (len, horizon+1)."""
        H = _horizon(horizon)
        row = self.bin_row[np.searchsorted(self.edges, prompt, side="right")] if len(self.edges) else \
            np.full(len(prompt), self.bin_row[0], np.int64)
        return _conditional_survival(self.cnt, np.ascontiguousarray(row, np.int64),
                                     np.ascontiguousarray(decoded, np.int64), self.dcap, H)

    def rows(self, prompt: np.ndarray) -> np.ndarray:
        if len(self.edges):
            return self.bin_row[np.searchsorted(self.edges, prompt, side="right")]
        return np.full(len(prompt), self.bin_row[0], np.int64)

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        run = self.q(view.running_prompt, view.running_decoded, horizon)
        cp = candidate_prompts(view, candidate_ids)
        return Survival(run, self.q(cp, np.zeros(len(cp), np.int64), horizon))

    def expected_lifetime(self, view: ClusterView, horizon: int) -> np.ndarray:
        """sum_h q(h) in O(1) per request from prefix sums of the table (same value as survival's)."""
        return self.lifetimes(np.asarray(view.running_prompt), np.asarray(view.running_decoded), horizon)

    def lifetimes(self, prompt: np.ndarray, decoded: np.ndarray, horizon: int) -> np.ndarray:
        """E[min(o - d, H+1) | o > d] for requests with these prompts and decoded counts d."""
        if not hasattr(self, "_csum"):
            self._csum = np.concatenate((np.zeros((len(self.cnt), 1)), np.cumsum(self.cnt, axis=1)), axis=1)
        row = np.ascontiguousarray(self.rows(prompt), np.int64)
        return _lifetimes(self.cnt, self._csum, row, np.ascontiguousarray(decoded, np.int64),
                          self.dcap, _horizon(horizon))


@njit(cache=True, nogil=True)
def _lifetimes(cnt, csum, row, decoded, dcap, H):  # pragma: no cover - compiled
    """sum_{h=0..H} cnt[r, min(d + h, kmax)] / cnt[r, d] (cnt[r, kmax] = 0), via prefix sums csum."""
    kmax = cnt.shape[1] - 1
    out = np.empty(len(row))
    for i in range(len(row)):
        r = row[i]
        d = min(decoded[i], dcap[r])
        hi = min(d + H + 1, kmax + 1)
        out[i] = (csum[r, hi] - csum[r, d]) / cnt[r, d]
    return out


@njit(cache=True, nogil=True)
def _conditional_survival(cnt, row, decoded, dcap, H):  # pragma: no cover - compiled
    """q[i, h] = cnt[r, min(d + h, kmax)] / cnt[r, d] with r = row[i], d = min(decoded[i], dcap[r])."""
    n = len(row)
    kmax = cnt.shape[1] - 1
    q = np.empty((n, H + 1))
    for i in range(n):
        r = row[i]
        d = min(decoded[i], dcap[r])
        den = cnt[r, d]
        for h in range(H + 1):
            q[i, h] = cnt[r, min(d + h, kmax)] / den
    return q


def _truth(remaining: np.ndarray, H: int) -> np.ndarray:
    """1 where the request still runs h steps ahead (remaining > h), else 0."""
    return (np.asarray(remaining, np.int64)[:, None] > np.arange(H + 1)).astype(np.float64)


class PerRequestDraws:
    """One random draw per request id, from a stream keyed by id: the same request gets the same draw
    whatever the call order, and under every policy of the same seed (a misjudged request stays so)."""

    def __init__(self, rng: np.random.Generator, draw) -> None:
        self.rng, self.draw = rng, draw
        self.u = np.empty(0)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return np.empty(0)
        need = int(ids.max()) + 1
        if need > len(self.u):  # extend the stream; earlier ids keep their draws
            grow = max(need, 2 * len(self.u), 1024) - len(self.u)
            self.u = np.concatenate((self.u, self.draw(self.rng, grow)))
        return self.u[ids]


@register_classifier("oracle")
class OracleClassifier(TerminationClassifier):
    """Ground truth: q(h) = 1 if the request has more than h steps left, else 0. Flags the run."""

    is_oracle = True
    oracle_label = "classifier:oracle"

    def __init__(self, context: PolicyContext, config: ClassifierConfig | None = None) -> None:
        super().__init__(context, config)
        self.channel = context.request_oracle(self)

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        H = _horizon(horizon)
        cand = np.asarray(candidate_ids, np.int64)
        run = self.channel.remaining_steps(view.running_ids, view.running_decoded)
        return Survival(_truth(run, H), _truth(self.channel.output_tokens(cand), H))

    def expected_lifetime(self, view: ClusterView, horizon: int) -> np.ndarray:
        """min(r_i, H+1): the exact number of the next H+1 steps each running request still runs."""
        run = self.channel.remaining_steps(view.running_ids, view.running_decoded)
        return np.minimum(run, _horizon(horizon) + 1).astype(np.float64)


@dataclass
class FlipOracleConfig(ClassifierConfig):
    """``accuracy``: P(each "finishes within h steps" answer is right), in [0.5, 1] (below 0.5 the
    answers are worse than a coin: flip them instead)."""

    accuracy: float = 0.9

    def validate(self) -> None:
        self.require(isinstance(self.accuracy, (int, float)) and 0.5 <= self.accuracy <= 1.0, "accuracy",
                     "must be in [0.5, 1]: below 0.5 the answers are worse than a coin (flip them instead).")


@register_classifier("flip_oracle", config=FlipOracleConfig)
class FlipOracleClassifier(TerminationClassifier):
    """Ground truth corrupted so that every "finishes within h steps" answer is right w.p. ``accuracy``.

    Answers are hard (q in {0, 1}) and monotone in h, i.e. of the form q(h) = [r_hat > h] for a
    predicted remaining length r_hat. The only law of r_hat for which *each* threshold answer (h >= 1)
    is right with probability exactly a is the three-point mixture: r_hat = r (truth) w.p. 2a - 1,
    r_hat = 1 ("ends now") w.p. 1 - a, r_hat = infinity ("outlives the horizon") w.p. 1 - a. So a must
    be in [0.5, 1]. The mode is drawn once per request (a misjudged request stays misjudged, as a real
    classifier's errors would), from a stream keyed by request id, so it does not depend on call order
    and is the same under every policy of the same seed.
    """

    is_oracle = True
    oracle_label = "classifier:flip_oracle"

    def __init__(self, context: PolicyContext, config: FlipOracleConfig | None = None) -> None:
        config = config or FlipOracleConfig()
        super().__init__(context, config)
        a = float(config.accuracy)
        self.accuracy = a
        self.oracle_label = f"classifier:flip_oracle(accuracy={a:g})"
        self.channel = context.request_oracle(self)
        self._draws = PerRequestDraws(context.rng(0x0C1A551F), lambda rng, n: rng.random(n))

    def _modes(self, ids: np.ndarray) -> np.ndarray:
        """Per request: 0 = truth, 1 = 'ends now', 2 = 'outlives the horizon'."""
        if len(ids) == 0:
            return np.empty(0, np.int64)
        u = self._draws(ids)
        a = self.accuracy
        return np.where(u < 2 * a - 1, 0, np.where(u < a, 1, 2))

    def _q(self, ids: np.ndarray, remaining: np.ndarray, H: int) -> np.ndarray:
        mode = self._modes(ids)
        r_hat = np.where(mode == 0, remaining, np.where(mode == 1, 1, np.iinfo(np.int64).max))
        return _truth(r_hat, H)

    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        H = _horizon(horizon)
        rid = np.asarray(view.running_ids, np.int64)
        cand = np.asarray(candidate_ids, np.int64)
        run = self._q(rid, self.channel.remaining_steps(rid, view.running_decoded), H)
        return Survival(run, self._q(cand, self.channel.output_tokens(cand), H))
