"""SGLang's data-parallel controller: load_balance_method total_requests and total_tokens.

Source: python/sglang/srt/managers/data_parallel_controller.py.
  * DataParallelController.refresh_load_budget: before dispatching (once per batch of requests), read the
    schedulers' load snapshots, throttled to at most once per 20 ms since the last read.
  * DPBudget.update_budget: total_requests[r] = num_running_reqs + num_waiting_reqs,
    total_tokens[r] = num_total_tokens; a read overwrites the speculative increments.
  * DPBudget.dispatch: total_requests -> total_requests.index(min(...)) (first minimum from rank 0);
    total_tokens -> min over ranks of (total_tokens, total_requests) (requests break token ties, then
    the lowest rank); then total_requests[target] += 1 and total_tokens[target] += estimated_tokens,
    with estimated_tokens = len(input_ids) for total_tokens (total_tokens_scheduler) and 0 otherwise.
  * The scheduler's load snapshot: num_total_tokens = KV tokens in use + sum of seqlen over its waiting
    queue. In our model: requests = decoding + prefilling + queued, tokens = s_g + committed tokens.
The older names shortest_queue / minimum_tokens were the same two rules.

The reads and the speculative increments are the framework's stale view (policy.stale_s,
framework.view.StaleView with schedule "read": refreshed once stale_s has passed since the last read;
between reads it adds each placement's request and prompt tokens to the counts, which is
DPBudget's increment for total_tokens, and for total_requests the +1 it decides on).

Approximations: a read returns the state at the decision instant; SGLang's scheduler writes its
snapshot once per scheduler iteration (update_budget skips an unchanged timestamp), so the real numbers
can be up to one step older. With stale_s = 0.02 and steps of ~30 ms every decision reads afresh.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from algorithms.baselines import worker_requests, worker_tokens
from framework.policy import DISPATCH, Policy, PolicyConfig, PolicyContext, register_policy
from framework.view import ClusterView, Placements


@dataclass
class SglangConfig(PolicyConfig):
    stale_s: float = field(default=0.02, metadata={
        "help": "minimum time between two reads of the schedulers' load (s), the framework's stale view "
                "read this long after the last read; 0 = read at every decision"})


class _SglangBudget(Policy):
    """DPBudget: counts read at most every stale_s, plus a local increment per dispatched request.

    The view's counts are the last read plus every placement since (framework.view.StaleView), so
    decide starts from them and adds this decision's own placements as it goes.
    """

    family = DISPATCH
    by_tokens = False
    stale_schedule = "read"

    def __init__(self, config: SglangConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.total_requests = np.zeros(self.G, np.int64)
        self.total_tokens = np.zeros(self.G, np.int64)
        self.refreshes = 0

    def decide(self, view: ClusterView) -> Placements:
        self.refreshes += view.refreshed
        self.total_requests = worker_requests(view).astype(np.int64)
        self.total_tokens = worker_tokens(view).astype(np.int64)
        ids = view.new_ids
        req, tok = self.total_requests, self.total_tokens
        est = view.waiting_prompt.tolist() if self.by_tokens else [0] * len(ids)
        workers = np.empty(len(ids), np.int64)
        for j in range(len(ids)):
            if self.by_tokens:
                tied = np.flatnonzero(tok == tok.min())
                g = int(tied[int(np.argmin(req[tied]))])
            else:
                g = int(np.argmin(req))
            req[g] += 1
            tok[g] += est[j]
            workers[j] = g
        return Placements.of(ids, workers)

    def describe(self) -> dict:
        return {"snapshot_refreshes": self.refreshes}


@register_policy("sglang_total_requests", config=SglangConfig)
class SglangTotalRequests(_SglangBudget):
    """argmin of running + waiting requests (first minimum from rank 0), +1 locally per dispatch."""

    by_tokens = False


@register_policy("sglang_total_tokens", config=SglangConfig)
class SglangTotalTokens(_SglangBudget):
    """argmin of (total tokens, total requests); a dispatch adds its prompt tokens and one request."""

    by_tokens = True
