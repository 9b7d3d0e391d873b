"""The paper's two-stage decomposition (algorithms._twostage): hand cases, a plain reference, and the gap
to exhaustive search on small random states for both decompositions (figures quoted in docs/br0.md)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algorithms._twostage import two_stage
from algorithms.br0 import plan
from algorithms.fscore import joint_value
from tests.test_br0 import exhaustive, random_state


def run(s, p, slots, kv=None, forced=None, s_greedy=10**6, r_max=4, guard=True, L=None, d=None, beta=None):
    s = np.asarray(s, float)
    G = len(s)
    L = s[:, None] if L is None else np.asarray(L, float)
    d = np.ones(1) if d is None else np.asarray(d, float)
    p = np.asarray(p, np.int64)
    kv = np.full(G, 10**9, np.int64) if kv is None else np.asarray(kv, np.int64)
    forced = np.zeros(len(p), np.bool_) if forced is None else np.asarray(forced, np.bool_)
    return two_stage(L, d, 1.0, float(G if beta is None else beta), p, np.asarray(slots, np.int64), kv,
                     forced, s_greedy, r_max, guard).tolist()


def value(s, p, assign):
    s, p, a = np.asarray(s, float), np.asarray(p, float), np.asarray(assign)
    sel = a >= 0
    return joint_value(np.bincount(a[sel], weights=p[sel], minlength=len(s)), s.max() - s)


# --- hand cases ------------------------------------------------------------------------------------
def test_per_worker_subset_fills_the_margin_exactly():
    # worker 1 has margin 100 and 3 slots; candidates 70, 60, 40, 30 (its 4 best by single F: 70 60 40
    # 30). Best: a subset summing to 100 (F = 100): {60, 40} (bit mask 0110) is enumerated before
    # {70, 30} (1001) and ties stay with the first. Without the guard that is all; work-conserving,
    # the third slot then takes the best single left at margin 0: F(30) = -30 beats F(70) = -70.
    assert run([100, 0], [70, 60, 40, 30], [0, 3], guard=False) == [-1, 1, 1, -1]
    assert run([100, 0], [70, 60, 40, 30], [0, 3]) == [-1, 1, 1, 1]
    # r_max = 2: only 70 and 60 are candidates of the subset DP; {70} (F = 70) beats {70, 60} (F = 70)
    # on a tie? no: F(130) = 130 - 2*30 = 70 ties F(70) = 70, and the larger count wins the tie
    assert run([100, 0], [70, 60, 40, 30], [0, 3], r_max=2, guard=False) == [1, 1, -1, -1]


def test_lowest_load_worker_chooses_first():
    # loads 100, 0, 50: worker 1 (margin 100) picks the 100-token request, then worker 2 (margin 50) the 50
    assert run([100, 0, 50], [50, 100], [0, 1, 1]) == [2, 1]


def test_starvation_guard_admits_when_every_choice_raises_the_envelope():
    # equal loads: any admission overflows (F = 10 - 2*10 < 0); the guard still admits the best single
    assert run([100, 100], [10, 30], [1, 0]) == [0, -1]
    # without the guard (work_conserving=false) nothing is admitted
    assert run([100, 100], [10, 30], [1, 0], guard=False) == [-1, -1]


def test_greedy_stage_runs_while_free_slots_exceed_s_greedy():
    # empty cluster, 2 slots each, s_greedy = 0, p = 9 5 4 1 3 (worked by hand):
    # 1. both 2 free, load 0 -> w0; envelope 0, F = -p: the 1 goes to w0 (M = 1)
    # 2. w1 has more free slots; m = 1: F(3) = 3 - 2*2 = -1 is the largest -> the 3 to w1 (M = 3)
    # 3. 1 free each, w0 lighter; m = 2: F(4) = 4 - 2*2 = 0 -> the 4 to w0 (M = 5)
    # 4. w1; m = 2: F(5) = -1 beats F(9) = -5 -> the 5 to w1
    assert run([0, 0], [9, 5, 4, 1, 3], [2, 2], s_greedy=0) == [-1, 1, 0, 0, 1]
    # every candidate has a slot: LPT: 9 -> w0, 5 -> w1, 4 -> w1, then 1 -> w0 (9 vs 9: the first)
    assert run([0, 0], [9, 5, 4, 1], [4, 4], s_greedy=0) == [0, 1, 1, 0]


def test_forced_request_goes_first_to_the_least_loaded_worker_and_blocks_when_it_cannot():
    assert run([0, 50], [10, 80], [1, 1], forced=[False, True]) == [1, 0]
    # the overdue 80-token request fits nowhere (KV 60): nothing else is admitted this step
    assert run([0, 50], [10, 80], [1, 1], kv=[60, 60], forced=[False, True]) == [-1, -1]


def test_slots_and_kv_are_respected_on_random_states():
    rng = np.random.default_rng(3)
    for _ in range(300):
        A, w, m, p, slots, kv = random_state(rng, G_max=4, N_max=9)
        s = m.max() - m[:, 0]
        a = np.array(run(s, p, slots, kv=kv, s_greedy=int(rng.integers(0, 4))))
        sel = a >= 0
        assert (np.bincount(a[sel], minlength=len(s)) <= slots).all()
        assert (np.bincount(a[sel], weights=p[sel], minlength=len(s)) <= kv).all()
        if (kv >= 10**9).all():  # KV never binds: work-conserving
            assert sel.sum() == min(len(p), int(slots.sum()))


def test_horizon_penalty_counts_every_column():
    # worker 1 has margin 100 now but only 20 one step ahead; (alpha, beta) = (1, 2), d = (1, 1):
    # F(110) = 2*110 - 2*((110 - 100) + (110 - 20)) = 20 < F(20) = 2*20 = 40, so the 20 goes
    L = np.array([[100.0, 100.0], [0.0, 80.0]])
    a = run([100, 0], [110, 20], [0, 1], L=L, d=[1, 1], beta=2)
    assert a == [-1, 1]


# --- exhaustive search -----------------------------------------------------------------------------
def gaps(decomposition: str, states: int = 300, seed: int = 12345) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(states):
        A, w, m, p, slots, kv = random_state(rng, G_max=3, N_max=6)
        kv = np.full(len(m), 10**9)
        K = min(len(p), int(slots.sum()))
        s = m.max() - m[:, 0]
        if decomposition == "paper":  # br0's defaults: s_greedy 8, r_max 4
            v = value(s, p, run(s, p, slots, s_greedy=8, r_max=4))
        else:
            v = plan(A, w, m, p, slots, kv, np.arange(len(m)), work_conserving=True).value
        out.append((exhaustive(p, m[:, 0], slots, kv, K) - v) / p.sum())
    return np.array(out)


def test_paper_decomposition_against_exhaustive_search():
    """Exact-match rate and mean gap of both decompositions (work-conserving, 300 states, G <= 3, N <= 6)."""
    paper, env = gaps("paper"), gaps("envelope")
    assert (paper >= -1e-12).all() and (env >= -1e-12).all()
    exact_p, exact_e = (paper < 1e-12).mean(), (env < 1e-12).mean()
    # measured: paper exact in 83.3% of states, mean gap 2.7% of the candidates' tokens; envelope 80.3%,
    # 2.3%. The paper's sequential per-worker choice cannot see that work conservation will force the
    # remaining requests onto fuller workers (the envelope's stage 1 does), hence its larger misses.
    assert exact_p >= exact_e, (exact_p, exact_e)
    assert paper.mean() <= env.mean() + 0.01, (paper.mean(), env.mean())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_single_slot_is_exact(seed):
    # one free slot in the whole cluster: the per-worker stage scores every candidate on that worker
    rng = np.random.default_rng(seed)
    A, w, m, p, slots, kv = random_state(rng, G_max=3, N_max=6)
    slots = np.zeros(len(m), np.int64)
    slots[rng.integers(len(m))] = 1
    kv = np.full(len(m), 10**9)
    s = m.max() - m[:, 0]
    a = run(s, p, slots, r_max=6)
    assert value(s, p, a) == pytest.approx(exhaustive(p, m[:, 0], slots, kv, 1))
