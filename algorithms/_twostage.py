"""The paper's two-stage decomposition of the F-score (DESIGN.md section 5), shared by br0 and brh.

Per worker g the score of admitting a set Q with total prompt load Ds is the horizon F-score

    F_g(Ds) = alpha * (1'd) * Ds - beta * sum_h d_h * (Ds - m_g(h))^+,   m_g(h) = M_h - L_g(h),

with predicted loads L (G, H+1), envelope M_h = max_g L_g(h) and discounts d (H+1,). H = 0, d = (1,),
(alpha, beta) = (1, G) is BR-0's F_g = Ds - G*(Ds - m_g)^+. Admitting Ds to g adds Ds to every column of
L_g (our reading: the score treats an admitted request's load as constant over the horizon) and raises
M where L_g passes it, so later choices in the same step see the earlier ones.

Stage 1 (greedy, while the free slots exceed S_greedy): the worker with the most free slots (ties: the
lowest load) admits the single candidate with the largest F. Stage 2: workers with free slots sit in a
priority queue keyed by their discounted mean predicted load; the one popped ranks the candidates by
their single F, takes the first R_max, and admits the subset (at most its free slots, within its free
KV) with the largest F, found exactly by enumerating the reachable sums (2^R_max subsets, R_max <= 16).
When every candidate has a slot (work-conserving), there is nothing to select and they are placed
largest first on the least-loaded feasible worker (LPT, as the envelope reading does; our addition).
Starvation guard: when the popped worker's best F is <= 0 the single best (candidate, worker) pair over
every worker with room is admitted anyway (our reading: the paper admits "the single best request"; on
small random states taking it on the popped worker only was exact in fewer states, see docs/br0.md), so
the step stays work-conserving. Overdue candidates (forced) go first, each to the
KV-feasible worker with the lowest load; one that fits nowhere blocks every other admission this step.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from algorithms.fscore import envelope

MAX_RMAX = 16


@njit(cache=True, nogil=True)
def _prep(g, L, M, d, ms, cw, cm):  # pragma: no cover - compiled
    """Worker g's margins m_g(h) sorted, with prefix sums of d_h and d_h*m_g(h) in that order, so that
    F_g(Ds) costs one binary search (O(log H)) instead of a pass over the H+1 columns."""
    H1 = L.shape[1]
    m = np.empty(H1)
    for h in range(H1):
        m[h] = M[h] - L[g, h]
    order = np.argsort(m)
    cw[0] = 0.0
    cm[0] = 0.0
    for j in range(H1):
        h = order[j]
        ms[j] = m[h]
        cw[j + 1] = cw[j] + d[h]
        cm[j + 1] = cm[j] + d[h] * m[h]


@njit(cache=True, nogil=True, inline="always")
def _score(ds, ms, cw, cm, alpha, wsum, beta):  # pragma: no cover - compiled
    """F(Ds) = alpha*W*Ds - beta * sum over columns with m_h < Ds of d_h (Ds - m_h)."""
    k = np.searchsorted(ms, ds)
    return alpha * wsum * ds - beta * (ds * cw[k] - cm[k])


@njit(cache=True, nogil=True, inline="always")
def _admit(i, g, p, L, M, rs, rk, assign):  # pragma: no cover - compiled
    assign[i] = g
    rs[g] -= 1
    rk[g] -= p[i]
    for h in range(L.shape[1]):
        L[g, h] += p[i]
        if L[g, h] > M[h]:
            M[h] = L[g, h]


@njit(cache=True, nogil=True, inline="always")
def _key(g, L, d, wsum):  # pragma: no cover - compiled
    acc = 0.0
    for h in range(L.shape[1]):
        acc += d[h] * L[g, h]
    return acc / wsum


@njit(cache=True, nogil=True)
def two_stage(L0, d, alpha, beta, p, slots, kv, forced, s_greedy, r_max, guard):  # pragma: no cover
    """Assignment (N,) of the candidates p (age order, oldest first) to workers, -1 = not admitted.

    L0 (G, H1) predicted loads, d (H1,) discounts, slots/kv (G,) free room, forced (N,) overdue mask;
    guard: admit the best candidate even when its F <= 0 (work conservation); without it a worker whose
    best F is <= 0 admits nothing this step.
    """
    G, H1 = L0.shape
    N = p.shape[0]
    L = L0.copy()
    M = envelope(L)
    wsum = 0.0
    for h in range(H1):
        wsum += d[h]
    rs = slots.copy()
    rk = kv.copy()
    ms = np.empty(H1)
    cw = np.empty(H1 + 1)
    cm = np.empty(H1 + 1)
    assign = np.full(N, -1, np.int64)
    left = N
    total = 0
    for g in range(G):
        total += rs[g]

    # overdue requests first, oldest first, to the least-loaded worker with room
    for i in range(N):
        if not forced[i]:
            continue
        if total <= 0:
            return assign
        best = -1
        for g in range(G):
            if rs[g] > 0 and rk[g] >= p[i] and (best < 0 or L[g, 0] < L[best, 0]):
                best = g
        if best < 0:
            return assign  # FCFS blocking: room accumulates until the overdue request fits
        _admit(i, best, p, L, M, rs, rk, assign)
        total -= 1
        left -= 1

    usable = rs > 0
    if guard and left <= total:
        # every candidate will be admitted: nothing to select, so place them largest first on the
        # least-loaded feasible worker (LPT list scheduling), as the envelope reading does
        order = np.argsort(-p.astype(np.float64), kind="mergesort")
        for j in range(N):
            i = order[j]
            if assign[i] >= 0:
                continue
            best = -1
            for g in range(G):
                if rs[g] > 0 and rk[g] >= p[i] and (best < 0 or _key(g, L, d, wsum) < _key(best, L, d, wsum)):
                    best = g
            if best >= 0:
                _admit(i, best, p, L, M, rs, rk, assign)
        return assign
    # stage 1: greedy while slots are plentiful
    while total > s_greedy and left > 0:
        g = -1
        for k in range(G):
            if usable[k] and rs[k] > 0 and (g < 0 or rs[k] > rs[g] or (rs[k] == rs[g] and L[k, 0] < L[g, 0])):
                g = k
        if g < 0:
            break
        bi = -1
        bf = -np.inf
        _prep(g, L, M, d, ms, cw, cm)
        for i in range(N):
            if assign[i] < 0 and p[i] <= rk[g]:
                f = _score(float(p[i]), ms, cw, cm, alpha, wsum, beta)
                if f > bf:
                    bf = f
                    bi = i
        if bi < 0 or (not guard and bf <= 0.0):  # nothing fits this worker's KV, or nothing worth it
            usable[g] = False
            total -= rs[g]
            continue
        _admit(bi, g, p, L, M, rs, rk, assign)
        total -= 1
        left -= 1

    # stage 2: per worker, lowest (discounted) load first
    R = min(r_max, MAX_RMAX)
    cand = np.empty(R, np.int64)
    cf = np.empty(R)
    while left > 0:
        g = -1
        kg = np.inf
        for k in range(G):
            if usable[k] and rs[k] > 0:
                key = _key(k, L, d, wsum)
                if key < kg:
                    kg = key
                    g = k
        if g < 0:
            break
        # the R best candidates by single F (ties: older), KV-feasible on g
        nc = 0
        _prep(g, L, M, d, ms, cw, cm)
        for i in range(N):
            if assign[i] >= 0 or p[i] > rk[g]:
                continue
            f = _score(float(p[i]), ms, cw, cm, alpha, wsum, beta)
            if nc < R:
                j = nc
                nc += 1
            elif f > cf[R - 1]:
                j = R - 1
            else:
                continue
            while j > 0 and cf[j - 1] < f:
                cf[j] = cf[j - 1]
                cand[j] = cand[j - 1]
                j -= 1
            cf[j] = f
            cand[j] = i
        if nc == 0:
            usable[g] = False
            continue
        cap = min(rs[g], nc)
        best_mask = 0
        best_f = 0.0
        best_n = 0
        for mask in range(1, 1 << nc):
            cnt = 0
            ds = 0
            for j in range(nc):
                if mask & (1 << j):
                    cnt += 1
                    ds += p[cand[j]]
            if cnt > cap or ds > rk[g]:
                continue
            f = _score(float(ds), ms, cw, cm, alpha, wsum, beta)
            if f > best_f or (f == best_f and best_mask != 0 and cnt > best_n):
                best_f = f
                best_mask = mask
                best_n = cnt
        if best_mask == 0:
            if not guard:
                usable[g] = False
                continue
            # starvation guard: the single best (candidate, worker) pair over every worker with room
            # goes anyway (the popped worker's own best may overflow more than another worker's)
            bg, bi, bf = g, cand[0], cf[0]
            for k in range(G):
                if k == g or not usable[k] or rs[k] <= 0:
                    continue
                _prep(k, L, M, d, ms, cw, cm)
                for i in range(N):
                    if assign[i] < 0 and p[i] <= rk[k]:
                        f = _score(float(p[i]), ms, cw, cm, alpha, wsum, beta)
                        if f > bf:
                            bf, bg, bi = f, k, i
            _admit(bi, bg, p, L, M, rs, rk, assign)
            left -= 1
            continue
        for j in range(nc):
            if best_mask & (1 << j):
                _admit(cand[j], g, p, L, M, rs, rk, assign)
                left -= 1
    return assign
