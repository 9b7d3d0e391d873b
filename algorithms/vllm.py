"""vLLM's internal data-parallel load balancer, before and after its mid-2026 rework.

Source: vllm/v1/engine/core_client.py, DPLBAsyncMPClient.get_core_engine_for_request (the choice) and
DPAsyncMPClient's stats task (``self.lb_engines = sliced_counts``: each publish from the DP coordinator
replaces the front-end's per-rank [waiting, running(, kv_cache_usage)] list wholesale, wiping the local
increments); vllm/v1/engine/coordinator.py, CoordinatorProc.process_input_socket (publishes the ranks'
counts every stats_update_interval_ms = 100 while they change).

What we model, per front-end (API server) f of K = n_frontends:
  * a stale copy of the per-worker counts, refreshed at the first decision at or after each publish
    instant (multiples of stale_s): the framework's stale view (policy.stale_s, framework.view.StaleView,
    schedule "publish"); every front-end receives the same publish. waiting = queued + prefilling,
    running = decoding, kv_usage = (s_g + reserved) / C_g, read when the view says it refreshed.
  * after each choice, the optimistic ``waiting[chosen] += client_count`` (client_count = K).
  * request j is handled by front-end j mod K (arrivals spread evenly over the API servers).
Approximations forced by the simulator are listed in the class docstrings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from algorithms.baselines import first_min_from, scan_orders, worker_waiting
from framework.policy import DISPATCH, Policy, PolicyConfig, PolicyContext, register_policy
from framework.view import ClusterView, Placements


@dataclass
class VllmConfig(PolicyConfig):
    stale_s: float = field(default=0.1, metadata={
        "help": "publish interval of the DP coordinator's counts (s), the framework's stale view on a "
                "grid of this; 0 = fresh at every decision"})
    n_frontends: int = field(default=1, metadata={
        "help": "API-server processes (vLLM client_count); request j goes to front-end j mod this"})

    def validate(self) -> None:
        self.require_number("n_frontends", 1, integer=True)


class _VllmBase(Policy):
    """Shared front-end state: the counts of the last publish, per-front-end local counts, scan orders.

    The publish itself is the framework's stale view: at a decision where it refreshed, every
    front-end's copy is overwritten; in between, the view's own-placement counts are not read (each
    front-end adds client_count to its own copy instead, as vLLM does).
    """

    family = DISPATCH

    def __init__(self, config: VllmConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.K = K = int(config.n_frontends)
        G = self.G
        self.orders = scan_orders(G)
        # eng_start_index = (len(core_engines) * client_index) // client_count
        self.start = np.array([(G * f) // K for f in range(K)], np.int64)
        self.waiting = np.zeros((K, G))  # each front-end's lb_engines waiting column (with increments)
        self.running = np.zeros(G)
        self.kv_usage = np.zeros(G)
        self.refreshes = 0

    def _refresh(self, view: ClusterView) -> None:
        if view.refreshed:
            self.waiting[:] = worker_waiting(view)  # the publish overwrites every front-end's increments
            self.running = np.array(view.running, np.float64)
            self.kv_usage = np.array(view.kv_usage)
            self.refreshes += 1

    def describe(self) -> dict:
        return {"snapshot_refreshes": self.refreshes}


@register_policy("vllm_legacy", config=VllmConfig)
class VllmLegacy(_VllmBase):
    """vLLM's DPLBAsyncMPClient until mid-2026: score = 4*waiting + running on the stale counts.

    Scan from the front-end's fixed eng_start_index, first strict minimum wins, then the local
    ``waiting[chosen] += client_count`` until the next publish overwrites it.

    Approximation: a publish carries the counts as of the first decision at or after the publish
    instant, not as of the instant itself (the simulator only consults the policy when requests
    arrive); the real snapshot is older by that gap, at most one step when arrivals are continuous.
    """

    def decide(self, view: ClusterView) -> Placements:
        self._refresh(view)
        ids = view.new_ids
        K, running, orders = self.K, self.running, self.orders
        workers = np.empty(len(ids), np.int64)
        for j, rid in enumerate(ids.tolist()):
            f = rid % K
            w = self.waiting[f]
            g = first_min_from(4.0 * w + running, orders[self.start[f]])
            w[g] += K
            workers[j] = g
        return Placements.of(ids, workers)


@register_policy("vllm", config=VllmConfig)
class Vllm(_VllmBase):
    """vLLM's DPLBAsyncMPClient after PRs 47420 (rotating scan start) and 49204 (in-flight floor, KV).

    score_g = max(client_count * inflight_f,g, waiting_g + running_g)
              + [waiting_g > 0] * waiting_g * 6 * max(0, kv_usage_g - 0.5)
    waiting/running/kv_usage from the stale snapshot (waiting with this front-end's increments),
    inflight exact: +1 on dispatch, -1 when the simulator reports the request finished (on_complete,
    mirroring process_engine_outputs). First strict minimum from eng_start_index, then
    ``waiting[chosen] += client_count`` and eng_start_index advances by one (mod G) after every
    decision.

    Approximation: as for vllm_legacy, a publish carries the counts as of the decision that first
    sees it.
    """

    def __init__(self, config: VllmConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.inflight = np.zeros((self.K, self.G), np.int64)

    def decide(self, view: ClusterView) -> Placements:
        self._refresh(view)
        ids = view.new_ids
        K, G, orders = self.K, self.G, self.orders
        kv_pen = np.maximum(0.0, self.kv_usage - 0.5)
        running = self.running
        workers = np.empty(len(ids), np.int64)
        for j, rid in enumerate(ids.tolist()):
            f = rid % K
            w = self.waiting[f]
            inflight = self.inflight[f]
            # the [waiting > 0] guard is implicit: the penalty is 0 when waiting is 0
            score = np.maximum(K * inflight, w + running) + w * 6.0 * kv_pen
            g = first_min_from(score, orders[self.start[f]])
            w[g] += K
            self.start[f] = (self.start[f] + 1) % G
            inflight[g] += 1
            workers[j] = g
        return Placements.of(ids, workers)

    def on_complete(self, request_ids: np.ndarray, workers: np.ndarray,
                    output_tokens: np.ndarray | None = None) -> None:
        """A front-end's in-flight count drops when it sees the request's final output."""
        np.subtract.at(self.inflight, (request_ids % self.K, workers), 1)
