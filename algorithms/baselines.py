"""Load-oblivious and fresh-view baselines: round_robin, random, jsq, least_kv, p2c.

Default ``mode=dispatch`` (family DISPATCH): every arrival is placed at once into a worker's local FCFS
queue. When several requests arrive in one step they are placed one at a time, oldest first, and each
placement updates the policy's own copy of the counts before the next one, as a router that handles
requests one by one would. ``mode=pool`` (family POOL, named e.g. ``jsq[pool]`` in results): requests
wait at the router and are admitted FCFS into free capacity, each to the worker its rule picks among
those with a free slot and KV room; when the oldest fits nowhere, nothing younger passes it (BF-IO's
FCFS and JSQ are of this kind). Comparing BR-0 with a pool form separates *which* request from *where*. The helpers at the top (worker counts from the view, first-minimum scans) are
shared with algorithms/vllm.py and algorithms/sglang.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from framework.policy import DISPATCH, POOL, Policy, PolicyConfig, PolicyContext, register_policy
from framework.view import ClusterView, Placements


# --- shared helpers -------------------------------------------------------------------------------
def worker_waiting(view: ClusterView) -> np.ndarray:
    """Requests placed on a worker and not yet decoding: its local queue plus those in prefill."""
    return view.queued + view.prefilling


def worker_requests(view: ClusterView) -> np.ndarray:
    """Unfinished requests per worker: decoding + prefilling + locally queued (running + waiting)."""
    return view.running + view.prefilling + view.queued


def worker_tokens(view: ClusterView) -> np.ndarray:
    """KV tokens a worker holds or has committed: s_g + prefill reservations + queued prompt tokens."""
    return view.loads + view.committed_tokens


def scan_orders(G: int) -> np.ndarray:
    """Row ``s`` lists the workers in scan order s, s+1, ..., s-1 (mod G)."""
    return (np.arange(G)[:, None] + np.arange(G)[None, :]) % G


def first_min_from(scores: np.ndarray, order: np.ndarray) -> int:
    """The first worker in ``order`` whose score is a strict minimum (later equal scores lose).

    This is the ``if score < min_score`` scan of vLLM's DPLBAsyncMPClient.get_core_engine_for_request:
    a tie goes to whichever tied worker the scan reaches first.
    """
    return int(order[int(np.argmin(scores[order]))])


class _ArgminTieBreak:
    """argmin with ties to the lowest index ("first") or uniformly at random ("random", seeded)."""

    def __init__(self, mode: str, rng: np.random.Generator) -> None:
        self.random = mode == "random"
        self.rng = rng

    def __call__(self, scores: np.ndarray) -> int:
        g = int(np.argmin(scores))
        if self.random:
            ties = np.flatnonzero(scores == scores[g])
            if len(ties) > 1:
                g = int(ties[self.rng.integers(len(ties))])
        return g


@njit(cache=True)
def _shortest_until_tie(c, inc, workers, j0, stop_at_ties):
    """Place requests j0, j0+1, ... on the first worker of least count c, adding inc[j] to it; return
    the first j not placed: len(inc), or (stop_at_ties) a j whose least count is tied, for the caller's
    random tie break. The loop of _Shortest.decide, compiled; the same placements."""
    G = len(c)
    for j in range(j0, len(inc)):
        g = 0
        for h in range(1, G):
            if c[h] < c[g]:
                g = h
        if stop_at_ties:
            for h in range(g + 1, G):
                if c[h] == c[g]:
                    return j
        c[g] += inc[j]
        workers[j] = g
    return len(inc)


MODES = ("dispatch", "pool")


@dataclass
class ModeConfig(PolicyConfig):
    mode: str = field(default="dispatch", metadata={
        "help": "dispatch (place on arrival into local queues) | pool (FCFS from the central pool into "
                "free slots, worker by the rule)"})

    def validate(self) -> None:
        self.require_choice("mode", MODES)


class _Moded(Policy):
    """A baseline with a dispatch form (``decide``) and a pool form (``pool_pick``)."""

    family = DISPATCH

    def __init__(self, config: ModeConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        if config.mode == "pool":
            self.family = POOL
            self.name = f"{type(self).name}[pool]"
            self.decide = self._pool_decide  # type: ignore[method-assign]

    def pool_start(self, view: ClusterView) -> None:
        """Refresh per-decision counts before the pool form's placements (default: none)."""

    def pool_pick(self, view: ClusterView, feasible: np.ndarray, j: int) -> int:  # pragma: no cover
        raise NotImplementedError

    def _pool_decide(self, view: ClusterView) -> Placements:
        ids, prompt = view.waiting_ids, view.waiting_prompt.tolist()
        rs = np.array(view.free_slots, np.int64)
        rk = np.array(view.free_kv, np.int64)
        n = min(len(ids), int(rs.sum()))
        workers: list[int] = []
        if n:
            self.pool_start(view)
        for j in range(n):
            feasible = (rs > 0) & (rk >= prompt[j])
            if not feasible.any():
                break  # FCFS: the oldest waits for room, and so does everyone behind it
            g = self.pool_pick(view, feasible, j)
            rs[g] -= 1
            rk[g] -= prompt[j]
            workers.append(g)
        return Placements.of(ids[:len(workers)], workers)


def _masked(scores: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Scores with infeasible workers pushed past every feasible one."""
    return np.where(feasible, scores.astype(np.float64), np.inf)


# --- round robin and random -----------------------------------------------------------------------
@dataclass
class RoundRobinConfig(ModeConfig):
    start: int = field(default=0, metadata={"help": "worker that receives the first request"})

    def validate(self) -> None:
        super().validate()
        self.require_number("start", 0, integer=True)


@register_policy("round_robin", config=RoundRobinConfig)
class RoundRobin(_Moded):
    """Request j (in arrival order) goes to worker (start + j) mod G.

    Mirrors SGLang's DataParallelController.round_robin_scheduler (python/sglang/srt/managers/
    data_parallel_controller.py): a counter advanced by one per request, blind to load.
    """

    def __init__(self, config: RoundRobinConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.counter = int(config.start) % self.G

    def pool_pick(self, view: ClusterView, feasible: np.ndarray, j: int) -> int:
        """The next worker in cyclic order, from the counter, that has room."""
        order = (self.counter + np.arange(self.G)) % self.G
        g = int(order[int(np.argmax(feasible[order]))])
        self.counter = (g + 1) % self.G
        return g

    def decide(self, view: ClusterView) -> Placements:
        ids = view.new_ids
        workers = (self.counter + np.arange(len(ids))) % self.G
        self.counter = (self.counter + len(ids)) % self.G
        return Placements.of(ids, workers)


@register_policy("random", config=ModeConfig)
class RandomDispatch(_Moded):
    """Each request goes to a worker drawn uniformly at random (seeded by the run's seed)."""

    def __init__(self, config: ModeConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.rng = context.rng(0)

    def pool_pick(self, view: ClusterView, feasible: np.ndarray, j: int) -> int:
        """Uniform among the workers with room."""
        cand = np.flatnonzero(feasible)
        return int(cand[self.rng.integers(len(cand))])

    def decide(self, view: ClusterView) -> Placements:
        ids = view.new_ids
        return Placements.of(ids, self.rng.integers(0, self.G, size=len(ids)))


# --- join the shortest queue / least KV ------------------------------------------------------------
@dataclass
class ShortestConfig(ModeConfig):
    tie_break: str = field(default="random", metadata={
        "help": "first (lowest worker index) | random (uniform among the tied workers, seeded)"})

    def validate(self) -> None:
        super().validate()
        self.require_choice("tie_break", ("first", "random"))


class _Shortest(_Moded):
    """Place each request on the worker with the smallest fresh count, then add it to that count."""

    def __init__(self, config: ShortestConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.pick = _ArgminTieBreak(config.tie_break, context.rng(0))

    def counts(self, view: ClusterView) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def increment(self, view: ClusterView) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def pool_start(self, view: ClusterView) -> None:
        self._c = self.counts(view).astype(np.int64)
        self._inc = self.increment(view).tolist()

    def pool_pick(self, view: ClusterView, feasible: np.ndarray, j: int) -> int:
        """The smallest count among the workers with room; the count then grows by the request."""
        g = self.pick(_masked(self._c, feasible))
        self._c[g] += self._inc[j]
        return g

    def decide(self, view: ClusterView) -> Placements:
        ids = view.new_ids
        c = self.counts(view).astype(np.int64)  # our own copy: this step's placements add to it
        inc = np.asarray(self.increment(view), np.int64)
        workers = np.empty(len(ids), np.int64)
        j = _shortest_until_tie(c, inc, workers, 0, self.pick.random)
        while j < len(ids):  # a tie under tie_break=random: the seeded draw, in Python
            g = self.pick(c)
            c[g] += inc[j]
            workers[j] = g
            j = _shortest_until_tie(c, inc, workers, j + 1, self.pick.random)
        return Placements.of(ids, workers)


@register_policy("jsq", config=ShortestConfig)
class JoinShortestQueue(_Shortest):
    """Join the shortest queue: fewest running + waiting requests (n_g + prefilling + queued)."""

    def counts(self, view: ClusterView) -> np.ndarray:
        return worker_requests(view)

    def increment(self, view: ClusterView) -> np.ndarray:
        return np.ones(len(view.new_ids), np.int64)


@register_policy("least_kv", config=ShortestConfig)
class LeastKV(_Shortest):
    """JSQ on load ("JSQ-load"): smallest s_g + committed KV tokens; a placement adds its prompt."""

    def counts(self, view: ClusterView) -> np.ndarray:
        return worker_tokens(view)

    def increment(self, view: ClusterView) -> np.ndarray:
        return view.waiting_prompt


# --- power of two choices --------------------------------------------------------------------------
@dataclass
class P2CConfig(ModeConfig):
    signal: str = field(default="requests", metadata={
        "help": "requests (running + prefilling + queued) | kv (s_g + committed KV tokens)"})

    def validate(self) -> None:
        super().validate()
        self.require_choice("signal", ("requests", "kv"))


@register_policy("p2c", config=P2CConfig)
class PowerOfTwo(_Moded):
    """Power of two choices: sample two distinct workers uniformly, place on the less loaded one.

    Load is the fresh count of the chosen signal plus this step's earlier placements; a tie keeps the
    first of the two samples (itself uniform), so no worker index is favoured.
    """

    def __init__(self, config: P2CConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.rng = context.rng(0)

    def _signal(self, view: ClusterView) -> tuple[np.ndarray, list]:
        if self.config.signal == "kv":
            return worker_tokens(view).astype(np.int64), view.waiting_prompt.tolist()
        return worker_requests(view).astype(np.int64), [1] * len(view.waiting_prompt)

    def pool_start(self, view: ClusterView) -> None:
        self._load, self._inc = self._signal(view)

    def pool_pick(self, view: ClusterView, feasible: np.ndarray, j: int) -> int:
        """Two distinct workers drawn among those with room; the less loaded (the first on a tie)."""
        cand = np.flatnonzero(feasible)
        if len(cand) == 1:
            g = int(cand[0])
        else:
            a = int(self.rng.integers(len(cand)))
            b = int(self.rng.integers(len(cand) - 1))
            b += b >= a
            x, y = int(cand[a]), int(cand[b])
            g = y if self._load[y] < self._load[x] else x
        self._load[g] += self._inc[j]
        return g

    def decide(self, view: ClusterView) -> Placements:
        ids = view.new_ids
        n, G = len(ids), self.G
        if G == 1:
            return Placements.of(ids, np.zeros(n, np.int64))
        load, inc = self._signal(view)
        a = self.rng.integers(0, G, size=n)
        b = self.rng.integers(0, G - 1, size=n)
        b = b + (b >= a)  # a second worker, distinct from the first, uniform over the other G-1
        workers = np.empty(n, np.int64)
        for j, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
            g = y if load[y] < load[x] else x
            load[g] += inc[j]
            workers[j] = g
        return Placements.of(ids, workers)
