"""One decision step's placement problem and the predicted loads, objective and limits of a placement.

Kept apart from the solver so rounding, tests and benchmarks can score placements without HiGHS.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from algorithms import fscore
from framework.classifier import TerminationClassifier
from framework.view import ClusterView


@dataclass
class PoolProblem:
    """One step's data: candidates, their added loads, the workers' predicted loads and limits."""

    ids: np.ndarray  # (N,) candidate request ids, oldest first
    prompt: np.ndarray  # (N,) prompt tokens (the KV a request takes at admission)
    add: np.ndarray  # (N, H+1) a_ih, load request i adds h steps after admission
    base: np.ndarray  # (G, H+1) s_g(h), predicted load without new admissions
    free_slots: np.ndarray  # (G,)
    free_kv: np.ndarray  # (G,)
    weights: np.ndarray  # (H+1,) gamma^h
    target: int = field(init=False)  # K = min(N, total free slots)
    floor: int = field(init=False)  # K_lb, a count the greedy packing reaches (<= the best count)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, np.int64)
        self.prompt = np.asarray(self.prompt, np.int64)
        self.add = np.ascontiguousarray(self.add, np.float64)
        self.base = np.ascontiguousarray(self.base, np.float64)
        self.free_slots = np.maximum(np.asarray(self.free_slots, np.int64), 0)
        self.free_kv = np.maximum(np.asarray(self.free_kv, np.int64), 0)
        self.weights = np.ascontiguousarray(self.weights, np.float64)
        H1 = len(self.weights)
        if self.add.shape != (self.N, H1) or self.base.shape != (self.G, H1):
            raise ValueError(f"PoolProblem shapes: add {self.add.shape}, base {self.base.shape}, "
                             f"expected ({self.N}, {H1}) and ({self.G}, {H1})")
        self.target = int(min(self.N, self.free_slots.sum()))
        self._greedy: np.ndarray | None = None
        self.floor = self.target if self.kv_never_binds() else int((self.greedy_count() >= 0).sum())

    @property
    def N(self) -> int:
        return len(self.prompt)

    @property
    def G(self) -> int:
        return len(self.free_slots)

    @property
    def H(self) -> int:
        return len(self.weights) - 1

    def kv_never_binds(self) -> bool:
        """True if every slot-respecting placement of the K smallest prompts respects free KV too."""
        K = self.target
        if K == 0:
            return True
        pmax = np.partition(self.prompt, K - 1)[K - 1]
        return bool(np.all(self.free_kv >= np.minimum(self.free_slots, K) * pmax))

    def greedy_count(self) -> np.ndarray:
        """A count-maximising greedy packing: smallest prompts first, each into the worker with the most
        KV room among those with a free slot. Returns assign (N,), -1 = not admitted."""
        if self._greedy is None:
            assign = np.full(self.N, -1, np.int64)
            slots = self.free_slots.copy()
            kv = self.free_kv.copy()
            room = np.where(slots > 0, kv, -1)
            done = 0
            for i in np.argsort(self.prompt, kind="stable").tolist():
                if done == self.target:
                    break
                g = int(np.argmax(room))
                p = int(self.prompt[i])
                if room[g] < p:  # fits nowhere, and neither does any larger request
                    break
                assign[i] = g
                done += 1
                slots[g] -= 1
                kv[g] -= p
                room[g] = kv[g] if slots[g] > 0 else -1
            self._greedy = assign
        return self._greedy.copy()

    def lower_bound(self) -> float:
        """A lower bound on the LP (and MILP) optimum; see "Certificate" in the module docstring."""
        K = self.target
        if K == 0 or self.N == 0:
            top = np.zeros(self.H + 1)
        elif K >= self.N:
            top = self.add.sum(axis=0)
        else:
            top = -np.partition(-self.add, K - 1, axis=0)[:K].sum(axis=0)
        gap = self.G * self.base.max(axis=0) - self.base.sum(axis=0) - top
        return float(self.weights @ np.maximum(gap, 0.0))

    def without(self, assign: np.ndarray) -> "PoolProblem":
        """The problem left after committing ``assign`` (its requests leave, their loads and their
        slots/KV are taken from the workers). Used to pre-place requests forced in by the hold bound."""
        sel = assign >= 0
        rest = ~sel
        return PoolProblem(self.ids[rest], self.prompt[rest], self.add[rest], predicted_loads(self, assign),
                           self.free_slots - np.bincount(assign[sel], minlength=self.G),
                           self.free_kv - np.bincount(assign[sel], weights=self.prompt[sel],
                                                      minlength=self.G).astype(np.int64),
                           self.weights)


def problem_from_view(view: ClusterView, ids: np.ndarray, prompt: np.ndarray, horizon: int,
                      gamma: float, classifier: TerminationClassifier | None) -> PoolProblem:
    """Build the step's problem for candidates ``ids`` (classifier None means q = 1, no call)."""
    H = int(horizon)
    h = np.arange(H + 1, dtype=np.float64)
    G = view.workers
    prompt = np.asarray(prompt, np.int64)
    committed = view.committed_tokens.astype(np.float64)[:, None]
    if classifier is None:
        base = committed + view.loads.astype(np.float64)[:, None] + view.running[:, None] * h
        add = prompt[:, None] + h
    else:
        surv = classifier.survival(view, H, ids)
        base = fscore.predicted_loads(np.asarray(surv.running, np.float64).reshape(-1, H + 1),
                                      view.running_prompt + view.running_decoded, view.running_worker, G,
                                      base=view.committed_tokens)
        add = fscore.admitted_loads(surv.candidates, prompt)
    return PoolProblem(ids, prompt, add, base, view.free_slots, view.free_kv, float(gamma) ** h)


# --------------------------------------------------------------------------------------------------
# evaluation and limits of an integral placement
def predicted_loads(pb: PoolProblem, assign: np.ndarray) -> np.ndarray:
    """(G, H+1) predicted loads with the placement ``assign`` (N,), -1 = not admitted."""
    sel = assign >= 0
    loads = pb.base.copy()
    if sel.any():
        H1 = pb.H + 1
        idx = (assign[sel][:, None] * H1 + np.arange(H1)).ravel()
        loads += np.bincount(idx, weights=pb.add[sel].ravel(), minlength=pb.G * H1).reshape(pb.G, H1)
    return loads


def imbalance_objective(pb: PoolProblem, assign: np.ndarray) -> float:
    """sum_h gamma^h (G*max_g s_g(h) - sum_g s_g(h)) after the placement (the model without rho*u)."""
    loads = predicted_loads(pb, assign)
    return float(pb.weights @ (pb.G * loads.max(axis=0) - loads.sum(axis=0)))


def limit_violations(pb: PoolProblem, assign: np.ndarray) -> list[str]:
    """Every way ``assign`` breaks a limit (empty list = a placement the simulator accepts)."""
    assign = np.asarray(assign, np.int64)
    if assign.shape != (pb.N,):
        return [f"assign has shape {assign.shape}, expected ({pb.N},)"]
    if np.any((assign < -1) | (assign >= pb.G)):
        return ["worker index out of range"]
    out = []
    sel = assign >= 0
    cnt = np.bincount(assign[sel], minlength=pb.G)
    tok = np.bincount(assign[sel], weights=pb.prompt[sel], minlength=pb.G)
    if np.any(cnt > pb.free_slots):
        out.append(f"slots: placed {cnt.tolist()} > free {pb.free_slots.tolist()}")
    if np.any(tok > pb.free_kv):
        out.append(f"kv: placed {tok.astype(np.int64).tolist()} > free {pb.free_kv.tolist()}")
    return out
