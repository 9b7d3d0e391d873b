"""Tiny policies used only by the simulator tests (not registered in algorithms/)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.policy import DISPATCH, POOL, Policy, PolicyConfig, register_policy
from framework.view import Placements


@dataclass
class FixedMapConfig(PolicyConfig):
    pass


@register_policy("_test_fixed_map", config=FixedMapConfig)
class FixedMap(Policy):
    """Dispatch request i to worker MAP[i] (set on the class by a test)."""

    family = DISPATCH
    MAP: dict[int, int] = {}

    def decide(self, view):
        ids = view.waiting_ids
        return Placements.of(ids, [self.MAP.get(int(i), int(i) % self.G) for i in ids])


@register_policy("_test_pool_first_fit")
class PoolFirstFit(Policy):
    """Pool policy: admit oldest-first into the first worker with a free slot and KV room."""

    family = POOL

    def decide(self, view):
        slots = view.free_slots.copy()
        kv = view.free_kv.copy()
        req, wrk = [], []
        for r, p in zip(view.waiting_ids.tolist(), view.waiting_prompt.tolist()):
            ok = np.flatnonzero((slots > 0) & (kv >= p))
            if len(ok) == 0:
                continue
            g = int(ok[np.argmin(view.loads[ok] + (kv[ok] * 0))])
            slots[g] -= 1
            kv[g] -= p
            req.append(r)
            wrk.append(g)
        return Placements.of(req, wrk)


@register_policy("_test_bad_overfill")
class BadOverfill(Policy):
    """Pool policy that ignores free slots (for the PlacementError test)."""

    family = POOL

    def decide(self, view):
        ids = view.waiting_ids
        return Placements.of(ids, np.zeros(len(ids), np.int64))
