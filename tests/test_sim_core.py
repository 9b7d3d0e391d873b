"""Compiled core: recording modes agree with the full table, the invariant check can fail, decision
time can be charged, cost models, the ClusterState seam and the one placement check."""
from __future__ import annotations

import time
from dataclasses import fields

import numpy as np
import pytest

import tests._policies as tp
from framework import simcore as sc
from framework.cluster import ClusterConfig, CostConfig
from framework.cost import LinearCost, make_cost_model
from framework.errors import ConfigError, PlacementError
from framework.metrics import imbalance_metrics
from framework.placement import validate_placements
from framework.policy import POOL, Policy, PolicyContext, make_policy
from framework.recorder import resolve_mode
from framework.runner import run_policy
from framework.simulator import InvariantError, Simulator
from framework.state import ClusterState
from framework.view import ClusterView, Placements
from framework.workload import Workload


def kv_bound_run(record: str, every: int = 3):
    rng = np.random.default_rng(11)
    n = 300
    w = Workload("t", np.cumsum(rng.exponential(0.01, n)), rng.integers(1, 400, n), rng.integers(1, 120, n))
    cl = ClusterConfig(workers=3, max_running=8, kv_capacity_tokens=2500, prefill_chunk_tokens=64,
                       cost=CostConfig(c0=0.02, c_seq=1e-4, c_kv=2e-7, c_pf=2e-5, c_sync=1e-3))
    return run_policy("_test_pool_first_fit", w, cl, 0, record=record, record_every=every)


TIMING = {"decision_ms_p50", "decision_ms_p99", "decision_ms_max", "sim_wall_s", "request_steps_per_s", "record"}
IMB = {"avg_dp_imbalance", "balance_ratio", "idle_fraction", "imbalance_tokens"}


def test_recording_modes_agree_with_the_full_table():
    full = kv_bound_run("full")
    assert full.summary["preemptions"] > 0  # the run exercises preemption
    tab = full.result.table
    for mode in ("steps", "sampled", "summary"):
        other = kv_bound_run(mode)
        a, b = full.summary, other.summary
        common = (set(a) & set(b)) - TIMING - IMB  # the paper's per-step forms need the full table
        assert {"requests_completed", "ttft_p99_s", "preemptions", "steps"} <= common
        assert {k: a[k] for k in common} == {k: b[k] for k in common}
        for k in IMB:  # streaming sums vs numpy's pairwise ones
            assert b[k] == pytest.approx(a[k], rel=1e-12, abs=1e-12)
        assert other.summary["record"] == mode
    # steps: the aggregates are those of the full rows
    st = kv_bound_run("steps").steps
    np.testing.assert_array_equal(st["load_max"], tab.load.max(axis=1))
    np.testing.assert_array_equal(st["load_min"], tab.load.min(axis=1))
    np.testing.assert_allclose(st["load_mean"], tab.load.mean(axis=1), rtol=1e-15)
    np.testing.assert_array_equal(st["imbalance_tokens"], 3 * tab.load.max(axis=1) - tab.load.sum(axis=1))
    np.testing.assert_array_equal(st["running_max"], tab.running.max(axis=1))
    np.testing.assert_array_equal(st["prefill_tokens"], tab.prefill.sum(axis=1))
    np.testing.assert_array_equal(st["compute_max_s"], tab.compute.max(axis=1))
    np.testing.assert_array_equal(st["duration_s"], tab.duration)
    # sampled: every third step's full rows
    sa = kv_bound_run("sampled", every=3).result.table
    keep = np.arange(0, full.result.steps, 3)
    np.testing.assert_array_equal(sa.step, keep)
    np.testing.assert_array_equal(sa.load, tab.load[keep])
    np.testing.assert_array_equal(sa.compute, tab.compute[keep])
    # summary keeps no table
    out = kv_bound_run("summary")
    assert out.steps is None and out.requests is None


def test_accumulators_equal_the_table_metrics():
    out = kv_bound_run("full")
    r = out.result
    ref = imbalance_metrics(r.step_load, r.step_compute, r.step_duration)
    acc = r.accum
    assert acc["steps_with_load"] == ref["steps_with_load"]
    assert acc["imbalance_tokens"] == ref["imbalance_tokens"]
    assert acc["sum_idle"] / acc["sum_GT"] == pytest.approx(ref["idle_fraction"], rel=1e-12)


def test_auto_recording_picks_steps_for_a_long_run_and_says_so(capsys):
    assert resolve_mode("auto", est_steps=1000, workers=16) == "full"
    assert resolve_mode("auto", est_steps=20_000_000, workers=16) == "steps"
    err = capsys.readouterr().err
    assert "GiB" in err and "record=steps" in err and "record=full" in err
    resolve_mode("full", est_steps=20_000_000, workers=16)
    assert "warning" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="record='everything'"):
        resolve_mode("everything", est_steps=1, workers=1)


class _Corrupting(Simulator):
    """Breaks one piece of bookkeeping after the first decision (what a core bug would do)."""

    what = "load"

    def _decide(self, decisions):
        super()._decide(decisions)
        if len(decisions) == 1:
            if self.what == "load":
                self.WK[sc.S, 0] += 1
            else:  # a waiting request vanishes from the count
                self.SC[sc.NPOOL] -= 1


@pytest.mark.parametrize("what,msg", [("load", "s_g differs"), ("lost", "lost or duplicated")])
def test_invariant_check_catches_broken_bookkeeping(what, msg):
    w = Workload("t", np.zeros(6), np.full(6, 10), np.full(6, 5))
    ctx = PolicyContext(workers=2, max_running=np.full(2, 2), kv_capacity=np.full(2, 1000))
    pol = make_policy("_test_pool_first_fit", ctx)
    sim = _Corrupting(w, ClusterConfig(workers=2, max_running=2, kv_capacity_tokens=1000), pol,
                      check_invariants=True)
    sim.what = what
    with pytest.raises(InvariantError, match=msg):
        sim.run()


class _Slow(Policy):
    family = POOL
    name = "_slow"

    def decide(self, view):
        time.sleep(0.005)
        return tp.PoolFirstFit.decide(self, view)


@pytest.mark.parametrize("charge", [False, True])
def test_decision_time_is_charged_to_the_step_only_when_asked(charge):
    w = Workload("t", np.array([0.0, 0.0, 2.5]), np.array([5, 5, 5]), np.array([2, 2, 2]))
    cl = ClusterConfig(workers=2, cost=CostConfig(c0=1.0), charge_decision_time=charge)
    ctx = PolicyContext(workers=2, max_running=np.full(2, 256), kv_capacity=np.full(2, 10**6))
    res = Simulator(w, cl, _Slow(None, ctx), check_invariants=True).run()
    T = res.step_duration
    decided = np.isin(np.arange(res.steps), res.req_placed_step)
    if charge:
        assert (T[decided] >= 1.005).all() and (T[~decided] == 1.0).all()
    else:
        assert (T == 1.0).all()


def test_linear_cost_model_is_what_the_core_charges():
    out = kv_bound_run("full")
    t = out.result.table
    cm = make_cost_model(CostConfig(c0=0.02, c_seq=1e-4, c_kv=2e-7, c_pf=2e-5, c_sync=1e-3))
    assert isinstance(cm, LinearCost)
    np.testing.assert_array_equal(t.compute, cm.step_times(t.running, t.load, t.prefill))
    np.testing.assert_array_equal(t.duration, t.compute.max(axis=1) + 1e-3)


def test_cost_model_names_are_checked():
    with pytest.raises(ConfigError, match="Did you mean 'linear'"):
        make_cost_model(CostConfig(model="linaer"))
    with pytest.raises(ConfigError, match="cluster.cost.model=fixed"):
        make_cost_model(CostConfig(model="fixed", c_kv=1e-7))


# --- the state seam -----------------------------------------------------------------------------
def test_cluster_state_holds_no_output_lengths_and_is_read_only():
    names = {f.name for f in fields(ClusterState)}
    assert not any("output" in n for n in names)
    w = Workload("t", np.array([0.0, 0.0, 0.05, 0.05]), np.array([10, 20, 30, 40]), np.array([7, 7, 7, 7]))
    ctx = PolicyContext(workers=2, max_running=np.full(2, 2), kv_capacity=np.full(2, 1000))
    seen = []

    class Peek(tp.PoolFirstFit):
        def decide(self, view):
            seen.append(view)
            return super().decide(view)

    Simulator(w, ClusterConfig(workers=2, max_running=2, kv_capacity_tokens=1000, cost=CostConfig(c0=0.03)),
              Peek(None, ctx)).run()
    st = seen[1].state  # step 2: requests 0 and 1 decode on worker 0, 2 and 3 have just arrived
    assert st.step == 2 and st.running_ids.tolist() == [0, 1] and st.waiting_ids.tolist() == [2, 3]
    assert st.running_decoded.tolist() == [2, 2] and st.running_worker.tolist() == [0, 0]
    assert st.loads.tolist() == [34, 0] and st.free_slots.tolist() == [0, 2]
    for f in fields(ClusterState):
        v = getattr(st, f.name)
        if isinstance(v, np.ndarray):
            assert not v.flags.writeable
            with pytest.raises(ValueError):
                v[...] = 0
    assert not hasattr(seen[1], "_sim")


def test_build_derives_free_room_like_the_simulator():
    st = ClusterState.build(step=3, now_s=1.0, max_running=[4, 4], kv_capacity=[100, 100],
                            prompt=np.array([10, 20, 30]), running=[(0, 0, 5)], waiting=[2, 1],
                            queued=[1, 0], queued_tokens=[7, 0], reserved=[0, 3], kv_admit=[90, 90])
    assert st.loads.tolist() == [15, 0] and st.running.tolist() == [1, 0]
    assert st.free_slots.tolist() == [2, 4]
    assert st.free_kv.tolist() == [90 - 15 - 7, 90 - 3]
    assert st.committed_tokens.tolist() == [7, 3] and st.kv_used.tolist() == [15, 3]
    assert ClusterView(st).waiting_prompt.tolist() == [30, 20]


def test_placement_check_on_an_unsorted_waiting_list():
    st = ClusterState.build(step=0, now_s=0.0, max_running=[1, 1], kv_capacity=[100, 50],
                            prompt=np.array([10, 20, 95]), waiting=[2, 0, 1])
    req, wrk = validate_placements(Placements.of([0, 1], [1, 0]), st, family=POOL, policy="p")
    assert req.tolist() == [0, 1] and wrk.tolist() == [1, 0]
    with pytest.raises(PlacementError, match="95 prompt tokens on worker 1"):
        validate_placements(Placements.of([0, 2], [0, 1]), st, family=POOL, policy="p")
    with pytest.raises(PlacementError, match="free slot"):
        validate_placements(Placements.of([0, 1], [0, 0]), st, family=POOL, policy="p")
    with pytest.raises(PlacementError, match="not waiting"):
        validate_placements(Placements.of([5], [0]), st, family=POOL, policy="p")
    with pytest.raises(PlacementError, match="twice"):
        validate_placements(Placements.of([0, 0], [0, 1]), st, family=POOL, policy="p")
