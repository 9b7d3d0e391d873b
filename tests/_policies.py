"""Tiny policies used only by the simulator tests.

They are registered only while a test asks for the ``test_policies`` fixture (tests/conftest.py), so
they never appear in the real registry, ``balanceroute --help`` or the every-policy checks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.policy import DISPATCH, POOL, Policy, PolicyConfig
from framework.view import Placements


@dataclass
class FixedMapConfig(PolicyConfig):
    pass


class FixedMap(Policy):
    """Dispatch request i to worker MAP[i] (set on the class by a test)."""

    family = DISPATCH
    MAP: dict[int, int] = {}

    def decide(self, view):
        ids = view.waiting_ids
        return Placements.of(ids, [self.MAP.get(int(i), int(i) % self.G) for i in ids])


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


class BadOverfill(Policy):
    """Pool policy that ignores free slots (for the PlacementError test)."""

    family = POOL

    def decide(self, view):
        ids = view.waiting_ids
        return Placements.of(ids, np.zeros(len(ids), np.int64))


# name -> (class, config class); registered by the ``test_policies`` fixture
TEST_POLICIES = {
    "_test_fixed_map": (FixedMap, FixedMapConfig),
    "_test_pool_first_fit": (PoolFirstFit, None),
    "_test_bad_overfill": (BadOverfill, None),
}
