"""The compiled decision path: it accepts exactly what validate_placements accepts, and the view it
builds is read-only and unchanged by later steps."""
from __future__ import annotations

import numpy as np
import pytest

from framework import simcore as sc
from framework.cluster import ClusterConfig
from framework.errors import PlacementError
from framework.placement import validate_placements
from framework.policy import DISPATCH, POOL, Policy, PolicyContext
from framework.simdecide import OK, place_checked
from framework.simloop import advance
from framework.simulator import Simulator
from framework.view import ClusterView, Placements
from framework.workload import Workload


class _Keep(Policy):
    """Places nothing the first time it is asked (so requests wait); remembers every view."""

    family = POOL
    name = "_keep"

    def __init__(self, config, context):
        super().__init__(config, context)
        self.views: list[ClusterView] = []

    def decide(self, view):
        self.views.append(view)
        ids = view.waiting_ids[: int(view.free_slots.sum())]
        g = np.repeat(np.arange(self.G), view.free_slots)[: len(ids)]
        return Placements.of(ids, g) if len(self.views) > 1 else Placements.empty()


def _sim(family: str, n: int = 12, seed: int = 0) -> Simulator:
    rng = np.random.default_rng(seed)
    w = Workload("t", np.zeros(n), rng.integers(1, 50, n), rng.integers(1, 9, n))
    ctx = PolicyContext(workers=3, max_running=np.full(3, 2), kv_capacity=np.full(3, 120))
    pol = _Keep(None, ctx)
    pol.family = family
    return Simulator(w, ClusterConfig(workers=3, max_running=2, kv_capacity_tokens=120), pol)


def _at_first_decision(sim: Simulator) -> None:
    rc = advance(0, *sim._args())
    assert rc == sc.DECIDE


@pytest.mark.parametrize("family", [POOL, DISPATCH])
def test_compiled_check_agrees_with_validate_placements(family):
    rng = np.random.default_rng(7)
    agree = {True: 0, False: 0}
    for trial in range(300):
        sim = _sim(family, seed=trial % 5)
        _at_first_decision(sim)
        state = sim.snapshot()
        W = state.waiting_ids
        k = int(rng.integers(0, len(W) + 2))
        req = rng.choice(np.r_[W, [-1, 99]], size=k, replace=bool(rng.random() < 0.3))
        if family == DISPATCH and rng.random() < 0.7:
            req = rng.permutation(W)  # mostly complete, sometimes with a bad worker
        wrk = rng.integers(-1 if rng.random() < 0.2 else 0, 3, size=len(req))
        before = (sim.SC.copy(), sim.WK.copy(), sim.RQ.copy())
        code = place_checked(req.astype(np.int64), wrk.astype(np.int64), family == DISPATCH, sim.SC, sim.WK, sim.RQ)
        try:
            validate_placements(Placements.of(req, wrk), state, family=family, policy="p")
            valid = True
        except PlacementError:
            valid = False
        assert (code == OK) == valid, (req, wrk, code)
        if not valid:  # a rejected decision changes nothing
            for a, b in zip(before, (sim.SC, sim.WK, sim.RQ)):
                np.testing.assert_array_equal(a, b)
        agree[valid] += 1
    assert agree[True] > 20 and agree[False] > 20  # both verdicts were exercised


def test_views_are_read_only_and_stay_as_they_were():
    sim = _sim(POOL)
    sim.run()
    views = sim.policy.views
    first = views[0]
    assert len(views) > 2 and first.num_waiting == 12 and first.loads.sum() == 0
    for arr in (first.loads, first.free_slots, first.waiting_ids, first.waiting_prompt, first.running_ids,
                first.waiting_key):
        with pytest.raises(ValueError):
            arr[...] = 0
        with pytest.raises(ValueError):
            arr.flags.writeable = True
    # later decisions saw other states; the first view still shows its own
    assert views[-1].num_waiting < 12 and first.num_waiting == 12 and first.loads.sum() == 0
    np.testing.assert_array_equal(first.waiting_ids, np.arange(12))
