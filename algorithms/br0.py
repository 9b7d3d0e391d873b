"""BR-0: the F-score of DESIGN.md section 3 maximised each decision step, family POOL.

Two decompositions (``policy.decomposition``): ``paper`` (default), the paper's greedy stage and
per-worker subset DP (algorithms._twostage); ``envelope``, the earlier reading kept for comparison: an
envelope raise u chosen from a few candidates (stage 1), then largest-first packing of the window into
the roomiest feasible worker under capacities m_g + u (stage 2, ``plan``/``pack_kernel`` below, shared
with BR-H's envelope form). Both are work-conserving by default (admit min(waiting, free slots)), place
overdue requests first (algorithms._hold), and read loads as s_g + committed tokens.
Why each choice was made, and what it measured: docs/br0.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from algorithms._hold import HoldCounter
from algorithms._twostage import MAX_RMAX, two_stage
from framework.policy import POOL, Policy, PolicyConfig, PolicyContext, register_policy
from framework.view import ClusterView, Placements

TIE_BREAKS = ("index", "fewest_running", "random")
DECOMPOSITIONS = ("paper", "envelope")
FORCE_ORDERS = ("oldest", "smallest")

# kernel modes
ALL = 0  # place every candidate (LPT), u irrelevant
PACK = 1  # place what fits within c_g; then force up to K


@dataclass
class Br0Config(PolicyConfig):
    """Options of BR-0 (also inherited by BR-H)."""

    name: str = "br0"
    decomposition: str = field(default="paper", metadata={
        "help": "paper (greedy stage + per-worker subset DP) | envelope (envelope raise + LPT packing)"})
    s_greedy: int = field(default=8, metadata={
        "help": "paper: greedy stage while total free slots exceed this"})
    r_max: int = field(default=4, metadata={
        "help": "paper: candidates (best single F first) a worker's subset DP chooses from, <= 16"})
    window: int = field(default=384, metadata={
        "help": "candidate window: the oldest this-many waiting requests (at least the K admitted)"})
    work_conserving: bool = field(default=True, metadata={
        "help": "admit min(waiting, free slots) every step; false = admit only what fits in c_g"})
    max_hold_steps: int = field(default=100, metadata={
        "help": "a request deliberately held (bypassed by a younger one, or left out while a slot "
                "stayed free) this many decisions is forced in"})
    hold_scope: int = field(default=0, metadata={
        "help": "only the oldest this-many waiting requests count holds (0 = every candidate)"})
    hold_ties_free: bool = field(default=True, metadata={
        "help": "a bypass by a request that arrived at the same time is no hold (a backlog has no order)"})
    max_u_candidates: int = field(default=8, metadata={"help": "stage-1 envelope raises tried (besides 0)"})
    force_order: str = field(default="oldest", metadata={
        "help": "which left-out requests fill the remaining slots: oldest | smallest"})
    tie_break: str = field(default="index", metadata={
        "help": "among workers with equal remaining capacity: index | fewest_running | random"})

    def validate(self) -> None:
        self.require_choice("decomposition", DECOMPOSITIONS)
        self.require_number("s_greedy", 0, integer=True)
        self.require(1 <= self.r_max <= MAX_RMAX, "r_max", f"must be in 1..{MAX_RMAX} (2^r_max subsets).")
        self.require_number("window", 1, integer=True)
        self.require_number("max_hold_steps", 0, integer=True)
        self.require_number("hold_scope", 0, ">= 0 (0 = every candidate)", integer=True)
        self.require_number("max_u_candidates", 0, integer=True)
        self.require_choice("force_order", FORCE_ORDERS)
        self.require_choice("tie_break", TIE_BREAKS)


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
        two_stage(np.zeros((2, 1)), np.ones(1), 1.0, 2.0, two, two, 10 * two, np.zeros(2, np.bool_), 0, 4,
                  True)
        _KERNEL_READY = True


class PoolRouterBase(Policy):
    """Shared plumbing of BR-0 and BR-H: window, hold tracking, tie-break order, placements."""

    family = POOL

    def __init__(self, config: Br0Config, context: PolicyContext) -> None:
        super().__init__(config, context)
        warm_kernel()
        self._rng = context.rng(0xB20)
        self.holds = HoldCounter(config.max_hold_steps, config.hold_scope)
        self.last_plan: Plan | None = None

    def window_ids(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """The candidate window (oldest first) and its prompts: at least the K requests a work-conserving
        step can admit (K counts free slots and, when KV binds, what the free KV holds; docs/br0.md)."""
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

    def record_holds(self, view: ClusterView, ids: np.ndarray, assign: np.ndarray) -> None:
        arrival = view.waiting_arrival_s[:len(ids)] if self.config.hold_ties_free else None
        self.holds.record(ids, assign, int(view.free_slots.sum()), arrival)

    def base_loads(self, view: ClusterView) -> np.ndarray:
        """s_g plus tokens already committed to the worker (prefill reservations, local queue)."""
        return view.loads + view.committed_tokens

    def paper_step(self, view: ClusterView, ids: np.ndarray, prompt: np.ndarray, L: np.ndarray,
                   d: np.ndarray, alpha: float, beta: float, forced: np.ndarray | None) -> Placements:
        """The paper's two stages (algorithms._twostage) over the window."""
        cfg = self.config
        if forced is None:
            forced = np.zeros(len(ids), np.bool_)
        a = two_stage(np.ascontiguousarray(L, np.float64), np.ascontiguousarray(d, np.float64),
                      float(alpha), float(beta), np.array(prompt, np.int64),
                      np.array(view.free_slots, np.int64), np.array(view.free_kv, np.int64),
                      np.asarray(forced, np.bool_), int(cfg.s_greedy), int(cfg.r_max),
                      bool(cfg.work_conserving))
        sel = a >= 0
        D = np.bincount(a[sel], weights=np.asarray(prompt, np.float64)[sel], minlength=self.G)
        m = L.max(axis=0) - L
        over = np.maximum((D[:, None] - m).max(axis=0), 0.0)
        value = float(d @ (alpha * D.sum() - beta * over)) if beta == self.G else float("nan")
        self.last_plan = Plan(a, value, 0.0, 1)  # value: the joint F-score (br0's, or brh with beta = G)
        self.record_holds(view, ids, a)
        return Placements(ids[sel].astype(np.int64), a[sel])

    def to_placements(self, view: ClusterView, ids: np.ndarray, pl: Plan) -> Placements:
        self.last_plan = pl
        self.record_holds(view, ids, pl.assign)
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
        if self.config.decomposition == "paper":
            return self.paper_step(view, ids, prompt, s[:, None], _ONE, 1.0, float(self.G), forced)
        m = (s.max() - s)[:, None]
        A = prompt.astype(np.float64)[:, None]
        pl = plan(A, _ONE, m, prompt, view.free_slots, view.free_kv, self.worker_order(view),
                  work_conserving=self.config.work_conserving, forced=forced,
                  force_smallest=self.config.force_order == "smallest",
                  max_u=self.config.max_u_candidates)
        return self.to_placements(view, ids, pl)

    def describe(self) -> dict[str, Any]:
        return {"decomposition": self.config.decomposition}


_ONE = np.ones(1)
