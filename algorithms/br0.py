"""BR-0: the two-stage decomposition of the joint F-score (DESIGN.md sections 3 and 5), family POOL.

Each step the router looks at a window of the oldest waiting requests and maximises the joint value
V = sum_g D_g - G * max_g (D_g - m_g)^+ (algorithms.fscore):

Stage 1 picks an envelope raise u >= 0. Candidates (our reading of "the overflow each candidate request
would cause"): u = 0, and for every request that does not fit in the u = 0 packing, the overflow it would
cause on the best worker at the moment it was rejected (the smallest raise that lets it in). At most
``max_u_candidates`` of them are tried, spread evenly over the sorted distinct values.
Stage 2, for each u: capacities c_g = m_g + u; the window is packed largest-first (ties: older first)
into the feasible worker (free slot and KV room, view.free_slots / view.free_kv) with the most remaining
capacity c_g - D_g; a request that fits nowhere is left out. The realised value V is computed exactly and
the best u is kept (ties: the smaller u).

Work conservation (default): the router admits K = min(waiting, free slots) requests.
- If every waiting request has a slot (waiting <= free slots), there is nothing to select: all are placed
  largest-first into the worker with the most remaining capacity, i.e. LPT list scheduling on the loads
  s_g + D_g, and u plays no role (it shifts every capacity alike), so stage 1 is skipped.
- Otherwise the packing chooses which K to admit; if fewer than K fit within c_g, the rest are forced:
  ``force_order`` picks which of the left-out requests (oldest first by default), and each goes, largest
  first, to the feasible worker with the most remaining capacity (which overflows least). Forced
  placements count in V, so stage 1 sees their cost.
Without work conservation only what fits within c_g is admitted.

Overdue requests (held ``max_hold_steps`` decisions) are placed first; one that finds no slot or KV room
anywhere blocks every younger request that step, as the head of a FCFS queue does, so room accumulates
until it fits. The candidate window holds at least the K requests a step can admit, where K counts free
slots and, when KV binds, how many of the oldest requests the free KV can hold. Measured on
azure_conv_2023 x32 with a 120k-token KV pool (h200_dsv3, seed 0 window): without these two rules the
KV-bound pool packed largest-first over the whole queue, TTFT p99 41.5 s against 30-35 s for the
dispatch baselines; with them 30.6 s, throughput 15.7k tok/s against 14.5-15.2k.
Bounded hold (both modes): a candidate left out while a younger one was admitted, or while a slot stayed
free, counts one deliberate hold; after ``max_hold_steps`` of them it is forced in first (oldest first
if there are more such requests than slots). Without this bound, selecting from a window starves large
requests (TTFT p99 100+ s in the runs below).

Choices measured in the simulator (Azure conv 2023, 3000 requests at 4x rate from rows 2000, 6000,
10000, 14000; 8 workers x 16 slots; avg DP imbalance, then TTFT p99 in s):
- window 256 vs 1 (= FCFS set, LPT placement): 0.113/0.170/0.149/0.114 vs 0.177/0.245/0.209/0.205
  imbalance; TTFT p99 33/17/9/17 vs 26/13/4/9. Selecting from a window is what buys the balance.
- max_hold_steps 50 / 100 / 200 / unbounded: imbalance 0.138/0.113/0.105/0.110 (rows 2000),
  0.211/0.170/0.158/0.195 (6000), 0.160/0.149/0.145/0.144 (10000), 0.143/0.114/0.113/0.182 (14000);
  TTFT p99 29/33/40/123, 15/17/24/101, 7/9/13/16, 12/17/24/116. Default 100: most of the balance of
  200 at a smaller tail-latency cost.
- force_order oldest vs smallest (hold 50): 0.138/0.211/0.160/0.143 vs 0.141/0.205/0.161/0.157;
  smallest is the better choice for one step's value (exhaustive search below: exact in 86% vs 80% of
  small random states) but not over a run, so oldest is the default.
- stage 1 (max_u_candidates 8 vs 0; hold unbounded at rows 2000, 50 elsewhere): 0.110/0.211/0.160/
  0.143 vs 0.106/0.210/0.160/0.146, i.e. neutral over a run; it does fix single-step mistakes (see
  tests; on another 300 random states it raised the exact rate from 55% to 73%), so it stays on.
- work_conserving false: at 2.5x rate (no saturation) imbalance 0.118 vs 0.189, TTFT p99 2.9 s vs
  0.06 s: deliberate holding buys balance with latency, hence off by default.
Against exhaustive search over placements (tests/test_br0.py, the 300 seeded random states of
test_br0_gap_to_exhaustive_optimum_is_small, G <= 3, N <= 6, slots 0-3 per worker): exact in 80%
(work-conserving) and 90% (not) of states; mean gap 2.3% and 0.3% of the candidates' prompt tokens; a
miss costs 12% and 3.5% on average, 69% and 30% at worst. Misses come from LPT's list-scheduling error
and from forcing the oldest rather than the smallest (force_order=smallest: exact in 86%, mean 1.0%).

Load seen by the router: s_g + committed_g (tokens of requests admitted but still in prefill or queued
locally after a preemption): they will be in the envelope before any new request, so margins use them.

Cost per decision: one sort of the window, then per u one pass of N requests over G workers, i.e.
O(#u * (N log N + N*G)) with a linear scan for the best worker. A binary heap (O(N log G)) was built and
measured: one sift costs about 140 ns against about 160 ns for a 144-wide scan, so at G = 32 a plan took
0.55 ms with the heap vs 0.29 ms with the scan and at G = 144 both took 0.8 ms; the scan stays (it also
serves BR-H's multi-column fit test, which a one-key heap cannot).
The pass is a numba kernel shared with BR-H (algorithms.brh), which calls it with H+1 columns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from algorithms._hold import HoldCounter
from framework.errors import ConfigError
from framework.policy import POOL, Policy, PolicyConfig, PolicyContext, register_policy
from framework.view import ClusterView, Placements

TIE_BREAKS = ("index", "fewest_running", "random")
FORCE_ORDERS = ("oldest", "smallest")

# kernel modes
ALL = 0  # place every candidate (LPT), u irrelevant
PACK = 1  # place what fits within c_g; then force up to K


@dataclass
class Br0Config(PolicyConfig):
    """Options of BR-0 (also inherited by BR-H)."""

    name: str = "br0"
    window: int = field(default=256, metadata={
        "help": "candidate window: the oldest this-many waiting requests (at least the K admitted)"})
    work_conserving: bool = field(default=True, metadata={
        "help": "admit min(waiting, free slots) every step; false = admit only what fits in c_g"})
    max_hold_steps: int = field(default=100, metadata={
        "help": "a request deliberately held (bypassed by a younger one, or left out while a slot "
                "stayed free) this many decisions is forced in"})
    max_u_candidates: int = field(default=8, metadata={"help": "stage-1 envelope raises tried (besides 0)"})
    force_order: str = field(default="oldest", metadata={
        "help": "which left-out requests fill the remaining slots: oldest | smallest"})
    tie_break: str = field(default="index", metadata={
        "help": "among workers with equal remaining capacity: index | fewest_running | random"})


def validate_br0(cfg: Br0Config) -> None:
    """Raise ConfigError naming the bad key."""
    n = cfg.name or "br0"
    if cfg.window < 1:
        raise ConfigError(f"policy.window={cfg.window} ({n}) must be >= 1.")
    if cfg.max_hold_steps < 0:
        raise ConfigError(f"policy.max_hold_steps={cfg.max_hold_steps} ({n}) must be >= 0.")
    if cfg.max_u_candidates < 0:
        raise ConfigError(f"policy.max_u_candidates={cfg.max_u_candidates} ({n}) must be >= 0.")
    if cfg.force_order not in FORCE_ORDERS:
        raise ConfigError(f"policy.force_order={cfg.force_order!r} ({n}) must be one of {FORCE_ORDERS}.")
    if cfg.tie_break not in TIE_BREAKS:
        raise ConfigError(f"policy.tie_break={cfg.tie_break!r} ({n}) must be one of {TIE_BREAKS}.")


# ---------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _roomiest(i, p, rs, rk, score, worder):  # pragma: no cover
    """The feasible worker (free slot and KV room for request i) with the most remaining capacity."""
    best = -1
    for gg in range(worder.shape[0]):
        g = worder[gg]
        if rs[g] > 0 and rk[g] >= p[i] and (best < 0 or score[g] > score[best]):
            best = g
    return best


@njit(cache=True, nogil=True, inline="always")
def _put(i, g, A, p, size, assign, rs, rk, score, D):  # pragma: no cover
    """Place request i on worker g and update the worker's room, capacity score and added loads."""
    assign[i] = g
    rs[g] -= 1
    rk[g] -= p[i]
    score[g] -= size[i]
    for h in range(A.shape[1]):
        D[g, h] += A[i, h]


@njit(cache=True, nogil=True)
def pack_kernel(A, w, m, p, slots, kv, order, worder, u, mode, K, forced, force_smallest):  # pragma: no cover
    """One stage-2 pass. A: (N, H1) loads each candidate adds h steps ahead; w: (H1,) discounts;
    m: (G, H1) margins; p: (N,) prompt tokens (KV); slots, kv: (G,) room; order: candidates largest
    first; worder: worker scan order (tie-break); forced: (N,) must be placed first.
    Returns (assign (N,), value, overflow (N,): raise that would let a left-out request in, inf if none).
    """
    N, H1 = A.shape
    G = m.shape[0]
    D = np.zeros((G, H1))
    rs = slots.copy()
    rk = kv.copy()
    assign = np.full(N, -1, np.int64)
    over = np.full(N, np.inf)
    wsum = 0.0
    for h in range(H1):
        wsum += w[h]
    score = np.empty(G)  # sum_h w_h * (c_g(h) - D_g(h)): discounted remaining capacity
    for g in range(G):
        acc = 0.0
        for h in range(H1):
            acc += w[h] * m[g, h]
        score[g] = acc + u * wsum
    size = np.empty(N)
    for i in range(N):
        acc = 0.0
        for h in range(H1):
            acc += w[h] * A[i, h]
        size[i] = acc
    total_slots = 0
    for g in range(G):
        total_slots += rs[g]
    placed = 0
    blocked = False  # an overdue (forced) request found no room: admit nothing younger (FCFS blocking)

    # pass 0: forced (overdue) requests first, then in ALL mode every other candidate; each to the
    # feasible worker with the most remaining capacity, fit or not. An overdue request that finds no
    # slot/KV room blocks every younger one this step, as the head of a FCFS queue would.
    for jj in range(2 * N):
        j = jj % N
        i = order[j]
        if (jj < N) != forced[i]:
            continue
        if jj >= N and (mode == PACK or blocked):
            break
        best = _roomiest(i, p, rs, rk, score, worder)
        if best >= 0:
            _put(i, best, A, p, size, assign, rs, rk, score, D)
            placed += 1
        elif forced[i]:
            blocked = True

    if mode == PACK and not blocked:
        # pass 1: largest first into the fitting feasible worker with the most remaining capacity
        for j in range(N):
            if placed >= total_slots:
                break
            i = order[j]
            if forced[i]:
                continue
            best = -1
            least = np.inf
            for gg in range(G):
                g = worder[gg]
                if rs[g] <= 0 or rk[g] < p[i]:
                    continue
                ov = -np.inf
                for h in range(H1):
                    x = A[i, h] - (m[g, h] + u - D[g, h])
                    if x > ov:
                        ov = x
                if ov <= 0.0:
                    if best < 0 or score[g] > score[best]:
                        best = g
                elif ov < least:
                    least = ov
            if best >= 0:
                _put(i, best, A, p, size, assign, rs, rk, score, D)
                placed += 1
            else:
                over[i] = least
        # pass 2 (work-conserving): force left-out requests until K are placed
        need = K - placed
        if need > 0:
            pick = np.zeros(N, np.bool_)
            if force_smallest:
                cand = np.argsort(size, kind="mergesort")
            else:
                cand = np.arange(N)  # candidates are in age order, oldest first
            got = 0
            for j in range(N):
                i = cand[j]
                if assign[i] < 0 and not forced[i] and over[i] < np.inf:
                    pick[i] = True
                    got += 1
                    if got >= need:
                        break
            for j in range(N):
                i = order[j]
                if not pick[i]:
                    continue
                best = _roomiest(i, p, rs, rk, score, worder)
                if best >= 0:
                    _put(i, best, A, p, size, assign, rs, rk, score, D)
                    placed += 1

    value = 0.0
    for h in range(H1):
        tot = 0.0
        worst = 0.0
        for g in range(G):
            tot += D[g, h]
            x = D[g, h] - m[g, h]
            if x > worst:
                worst = x
        value += w[h] * (tot - G * worst)
    return assign, value, over


@dataclass
class Plan:
    """What stage 1 chose: per-candidate worker (-1 = not admitted), its value and envelope raise."""

    assign: np.ndarray
    value: float
    u: float
    tried: int


def choose_u_candidates(over: np.ndarray, max_u: int) -> np.ndarray:
    """Distinct positive overflows, ascending, thinned evenly to at most max_u (smallest kept)."""
    ov = over[np.isfinite(over) & (over > 0)]
    if len(ov) == 0 or max_u <= 0:
        return np.empty(0)
    ov = np.unique(ov)
    if len(ov) > max_u:
        ov = ov[np.unique(np.linspace(0, len(ov) - 1, max_u).round().astype(np.int64))]
    return ov


def plan(A: np.ndarray, w: np.ndarray, m: np.ndarray, p: np.ndarray, slots: np.ndarray, kv: np.ndarray,
         worder: np.ndarray, *, work_conserving: bool, forced: np.ndarray | None = None,
         force_smallest: bool = False, max_u: int = 8) -> Plan:
    """Stages 1 and 2 over a candidate window given in age order (oldest first).

    A (N, H1) are the loads each candidate adds h steps ahead (H1 = 1: prompt tokens), m (G, H1) the
    margins, w (H1,) the discounts. Returns the best plan found.
    """
    A = np.array(A, dtype=np.float64)
    N = A.shape[0]
    # writable copies: numba types read-only arrays (the view's) differently and would re-dispatch
    p = np.array(p, dtype=np.int64)
    slots = np.array(slots, dtype=np.int64)
    kv = np.array(kv, dtype=np.int64)
    m = np.array(m, dtype=np.float64)
    w = np.array(w, dtype=np.float64)
    worder = np.array(worder, dtype=np.int64)
    size = A @ w
    order = np.argsort(-size, kind="stable")  # largest first, older first on ties
    total_slots = int(slots.sum())
    if forced is None:
        forced = np.zeros(N, np.bool_)
    else:  # more overdue requests than slots: the oldest go first (candidates are in age order)
        forced = np.asarray(forced, np.bool_) & (np.cumsum(forced) <= total_slots)
    if work_conserving and N <= total_slots:
        a, v, _ = pack_kernel(A, w, m, p, slots, kv, order, worder, 0.0, ALL, N, forced, force_smallest)
        return Plan(a, v, 0.0, 1)
    K = min(N, total_slots) if work_conserving else 0
    a, v, over = pack_kernel(A, w, m, p, slots, kv, order, worder, 0.0, PACK, K, forced, force_smallest)
    best = Plan(a, v, 0.0, 1)
    for u in choose_u_candidates(over, max_u):
        a, v, _ = pack_kernel(A, w, m, p, slots, kv, order, worder, float(u), PACK, K, forced, force_smallest)
        best.tried += 1
        if v > best.value:
            best = Plan(a, v, float(u), best.tried)
    return best


_KERNEL_READY = False


def warm_kernel() -> None:
    """Load (or JIT-compile) the numba kernel once, so no decision timing includes the compile."""
    global _KERNEL_READY
    if not _KERNEL_READY:
        two = np.ones(2, np.int64)
        plan(np.ones((2, 1)), np.ones(1), np.zeros((2, 1)), two, two, 10 * two, np.arange(2),
             work_conserving=False)
        _KERNEL_READY = True


class PoolRouterBase(Policy):
    """Shared plumbing of BR-0 and BR-H: window, hold tracking, tie-break order, placements."""

    family = POOL

    def __init__(self, config: Br0Config, context: PolicyContext) -> None:
        super().__init__(config, context)
        validate_br0(config)
        warm_kernel()
        self._rng = context.rng(0xB20)
        self.holds = HoldCounter(config.max_hold_steps)
        self.last_plan: Plan | None = None

    def window_ids(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """The candidate window (oldest first) and its prompts.

        It holds at least the K requests a work-conserving step can admit. K counts free slots and,
        when KV binds, how many of the oldest requests the free KV can hold in total: otherwise a
        KV-bound step would widen the window to the whole queue and pack largest-first with no regard
        to age (measured on azure_conv_2023 x32, KV 120k: TTFT p99 41 s against 30 s for FCFS queues).
        """
        cfg = self.config
        waiting = view.num_waiting
        k = 0
        if cfg.work_conserving:
            k = min(waiting, int(view.free_slots.sum()))
            if k > cfg.window:
                fits = np.cumsum(view.waiting_prompt[:k]) <= int(view.free_kv.sum())
                k = int(fits.sum()) + 1  # one past what the free KV could hold
        n = min(waiting, max(cfg.window, k))
        return view.waiting_ids[:n], view.waiting_prompt[:n]

    def worker_order(self, view: ClusterView) -> np.ndarray:
        tb = self.config.tie_break
        if tb == "index":
            return np.arange(self.G, dtype=np.int64)
        if tb == "fewest_running":
            return np.argsort(view.running + view.prefilling, kind="stable").astype(np.int64)
        return self._rng.permutation(self.G).astype(np.int64)

    def forced_mask(self, view: ClusterView, ids: np.ndarray) -> np.ndarray | None:
        """Requests deliberately held max_hold_steps times already must go now (algorithms._hold)."""
        return self.holds.overdue(ids) if len(ids) else None

    def record_holds(self, ids: np.ndarray, assign: np.ndarray, free_slots: int) -> None:
        self.holds.record(ids, assign, free_slots)

    def base_loads(self, view: ClusterView) -> np.ndarray:
        """s_g plus tokens already committed to the worker (prefill reservations, local queue)."""
        return view.loads + view.committed_tokens

    def to_placements(self, view: ClusterView, ids: np.ndarray, pl: Plan) -> Placements:
        self.last_plan = pl
        self.record_holds(ids, pl.assign, int(view.free_slots.sum()))
        sel = pl.assign >= 0
        return Placements(ids[sel].astype(np.int64), pl.assign[sel])


@register_policy("br0", config=Br0Config)
class BR0(PoolRouterBase):
    """BalanceRoute BR-0 (see the module docstring)."""

    def decide(self, view: ClusterView) -> Placements:
        ids, prompt = self.window_ids(view)
        if len(ids) == 0:
            return Placements.empty()
        forced = self.forced_mask(view, ids)
        s = self.base_loads(view).astype(np.float64)
        m = (s.max() - s)[:, None]
        A = prompt.astype(np.float64)[:, None]
        pl = plan(A, _ONE, m, prompt, view.free_slots, view.free_kv, self.worker_order(view),
                  work_conserving=self.config.work_conserving, forced=forced,
                  force_smallest=self.config.force_order == "smallest",
                  max_u=self.config.max_u_candidates)
        return self.to_placements(view, ids, pl)

    def describe(self) -> dict[str, Any]:
        return {}


_ONE = np.ones(1)
