"""F-score and joint placement value (DESIGN.md section 3), checked by hand and against the imbalance."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.fscore import (admitted_loads, discount_weights, f_score, horizon_value, imbalance,
                               joint_delta_imbalance, joint_value, margins, predicted_loads)


def test_margins_by_hand():
    assert margins(np.array([10, 4, 7])).tolist() == [0, 6, 3]
    s = np.array([[10, 1], [4, 5], [7, 2]])
    assert margins(s).tolist() == [[0, 4], [6, 0], [3, 3]]


def test_f_score_safe_regime_breakpoint_and_overflow():
    G, m = 4, 10
    assert f_score(6, m, G) == 6  # safe: imbalance falls by Ds
    assert f_score(10, m, G) == 10  # breakpoint: both formulas agree
    assert f_score(13, m, G) == 13 - 4 * 3  # overflow by 3: slope 1 - G
    assert f_score(20, m, G) == 20 - 40
    assert f_score(0, m, G) == 0
    # the slope changes from +1 to 1-G exactly at Ds = m
    assert f_score(11, m, G) - f_score(10, m, G) == 1 - G
    assert f_score(10, m, G) - f_score(9, m, G) == 1


def test_f_score_is_minus_the_imbalance_change_for_one_worker():
    s = np.array([10.0, 4.0, 7.0])
    for g in range(3):
        for ds in (0, 2, 3, 6, 9, 25):
            after = s.copy()
            after[g] += ds
            assert f_score(ds, margins(s)[g], 3) == -(imbalance(after) - imbalance(s))


def test_joint_value_when_several_workers_overflow():
    s = np.array([10.0, 4.0, 7.0])  # I = 3*10 - 21 = 9
    m = margins(s)  # [0, 6, 3]
    # overflows 1, 3, 0: only the largest (3) raises the envelope: DI = 3*3 - 13 = -4
    D = np.array([1.0, 9.0, 3.0])
    assert joint_delta_imbalance(D, m) == -4
    assert joint_value(D, m) == 4
    assert imbalance(s + D) - imbalance(s) == -4  # s+D = [11, 13, 10]: I = 39 - 34 = 5
    # two equal overflows (2 and 2): the envelope still rises once: DI = 3*2 - 13 = -7
    D = np.array([0.0, 8.0, 5.0])
    assert joint_delta_imbalance(D, m) == -7
    # all safe: DI = -sum D
    D = np.array([0.0, 6.0, 3.0])
    assert joint_delta_imbalance(D, m) == -9
    assert imbalance(s + D) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=8), st.data())
def test_joint_delta_is_the_imbalance_change(loads, data):
    s = np.array(loads, dtype=float)
    D = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=len(s), max_size=len(s))), float)
    assert joint_delta_imbalance(D, margins(s)) == pytest.approx(imbalance(s + D) - imbalance(s))
    # one receiving worker: the joint value is that worker's F-score
    g = data.draw(st.integers(0, len(s) - 1))
    only = np.zeros_like(D)
    only[g] = D[g]
    assert joint_value(only, margins(s)) == f_score(D[g], margins(s)[g], len(s))


def test_horizon_value_by_hand():
    m = np.array([[0.0, 0.0], [5.0, 10.0]])
    D = np.array([[2.0, 1.0], [3.0, 12.0]])
    # h=0: sum 5, overflow max(2-0, 3-5)=2 -> 5 - 2*2 = 1; h=1: sum 13, overflow max(1, 2)=2 -> 13-4 = 9
    assert horizon_value(D, m, 0.5) == 1 + 0.5 * 9
    assert horizon_value(D[:, :1], m[:, :1], 0.5) == joint_value(D[:, 0], m[:, 0])
    assert discount_weights(3, 0.5).tolist() == [1, 0.5, 0.25, 0.125]


def _ref_predicted_loads(q, l, worker, G):
    out = np.zeros((G, q.shape[1]))
    for i in range(len(l)):
        for h in range(q.shape[1]):
            out[worker[i], h] += q[i, h] * (l[i] + h)
    return out


def test_predicted_and_admitted_loads_by_hand():
    q = np.array([[1.0, 1.0, 0.0], [1.0, 0.5, 0.5], [1.0, 1.0, 1.0]])
    l = np.array([10, 20, 7])
    w = np.array([0, 0, 1])
    s = predicted_loads(q, l, w, 2, base=np.array([3, 0]))
    # worker 0: h0 10+20+3, h1 11 + 0.5*21 + 3, h2 0 + 0.5*22 + 3 ; worker 1: 7, 8, 9
    assert s.tolist() == [[33, 24.5, 14], [7, 8, 9]]
    assert admitted_loads(np.array([[1.0, 0.5, 0.0]]), np.array([4])).tolist() == [[4, 2.5, 0]]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(0, 30), st.integers(0, 5), st.integers(0, 10**6))
def test_predicted_loads_fast_matches_reference(G, R, H, seed):
    rng = np.random.default_rng(seed)
    q = np.sort(rng.random((R, H + 1)), axis=1)[:, ::-1]
    q[:, 0] = 1
    l = rng.integers(1, 5000, R)
    w = rng.integers(0, G, R)
    np.testing.assert_allclose(predicted_loads(q, l, w, G), _ref_predicted_loads(q, l, w, G), rtol=1e-12)


def test_lifetime_loads_by_hand():
    from algorithms.fscore import lifetime_loads

    # request a on worker 0: context 10, q = 1, 1, 0.5 -> c = 2.5: runs h = 0, 1 fully, half of h = 2
    # request b on worker 1: context 20, q = 1, 0, 0 -> c = 1: only h = 0
    c = np.array([[1.0, 1.0, 0.5], [1.0, 0.0, 0.0]]).sum(axis=1)
    L = lifetime_loads(c, np.array([10, 20]), np.array([0, 1]), 2, base=np.array([0, 5]), horizon=2)
    np.testing.assert_allclose(L, [[10, 11, 6], [25, 5, 5]])
