"""Numba kernels behind the offline optimum: per-step lower bounds, greedy, annealing, move descent.

All kernels take requests as int64 arrays a (start step, relative: the first step of the instance is 0),
p (prompt) and o (output >= 1); request i has load p_i + k - a_i on steps a_i <= k < a_i + o_i. The
state of an assignment w is the (K, G) load matrix s plus, per step, the top three loads and the workers
holding the top two (``tops``: rows v1, i1, v2, i2, v3), so the change of max_g s_g(k) caused by moving
or swapping requests is O(1) per step. The searched quantity is E(w) = sum_k max_g s_g(k); the objective
is J = G * E - sum_k S_k and S_k does not depend on w, so deltas of E are deltas of J / G.

Why the per-step helper (max_other) is compiled with ``inline="always"``: calling a jitted function that
takes arrays inside a per-step loop costs reference counting on every call (docs/offline_optimum.md);
numba's IR inlining removes the call, so the helper is written once.
"""
from __future__ import annotations

import numba as nb
import numpy as np

V1, I1, V2, I2, V3 = range(5)


@nb.njit(cache=True)
def refresh_tops(s, k_lo, k_hi, tops):
    """Recompute the top-3 cache of steps k_lo .. k_hi - 1."""
    G = s.shape[1]
    for k in range(k_lo, k_hi):
        v1 = -1
        i1 = -1
        v2 = -1
        i2 = -1
        v3 = -1
        for g in range(G):
            x = s[k, g]
            if x > v1:
                v3 = v2
                v2 = v1
                i2 = i1
                v1 = x
                i1 = g
            elif x > v2:
                v3 = v2
                v2 = x
                i2 = g
            elif x > v3:
                v3 = x
        tops[V1, k] = v1
        tops[I1, k] = i1
        tops[V2, k] = v2
        tops[I2, k] = i2
        tops[V3, k] = v3


@nb.njit(cache=True)
def load_matrix(a, p, o, w, G, K):
    """s[k, g] for an assignment (the difference-array version lives in analysis.objective)."""
    s = np.zeros((K, G), np.int64)
    for i in range(a.shape[0]):
        g = w[i]
        for k in range(a[i], a[i] + o[i]):
            s[k, g] += p[i] + k - a[i]
    return s


@nb.njit(cache=True)
def move_request(i, g, a, p, o, w, s, tops):
    """Put request i on worker g and update s and the top-3 cache over its life."""
    g0 = w[i]
    for k in range(a[i], a[i] + o[i]):
        l = p[i] + k - a[i]
        s[k, g0] -= l
        s[k, g] += l
    w[i] = g
    refresh_tops(s, a[i], a[i] + o[i], tops)


@nb.njit(cache=True, inline="always")
def max_other(tops, k, ga, gb):
    """The largest load at step k over the workers other than ga and gb, from the top-3 cache (a worker
    outside the pair holds one of the top three)."""
    if tops[I1, k] != ga and tops[I1, k] != gb:
        return tops[V1, k]
    if tops[I2, k] != ga and tops[I2, k] != gb:
        return tops[V2, k]
    return tops[V3, k]


@nb.njit(cache=True)
def move_delta(i, g, a, p, o, w, s, tops):
    """Change of E when request i moves from w[i] to g (g != w[i])."""
    g0 = w[i]
    d = 0
    for k in range(a[i], a[i] + o[i]):
        l = p[i] + k - a[i]
        nm = max_other(tops, k, g0, g)
        r0 = s[k, g0] - l
        if r0 > nm:
            nm = r0
        x = s[k, g] + l
        if x > nm:
            nm = x
        d += nm - tops[V1, k]
    return d


@nb.njit(cache=True)
def swap_delta(i, j, a, p, o, w, s, tops):
    """Change of E when requests i and j (on different workers) exchange workers."""
    g1 = w[i]
    g2 = w[j]
    ai = a[i]
    ei = a[i] + o[i]
    aj = a[j]
    ej = a[j] + o[j]
    ci = p[i] - ai
    cj = p[j] - aj
    lo = min(ai, aj)
    hi = max(ei, ej)
    d = 0
    for k in range(lo, hi):
        li = ci + k if (k >= ai and k < ei) else 0
        lj = cj + k if (k >= aj and k < ej) else 0
        n1 = s[k, g1] - li + lj
        n2 = s[k, g2] - lj + li
        nm = max_other(tops, k, g1, g2)
        if n1 > nm:
            nm = n1
        if n2 > nm:
            nm = n2
        d += nm - tops[V1, k]
    return d


@nb.njit(cache=True)
def greedy(a, p, o, order, G, K):
    """Place requests in ``order`` on the worker that raises E least (ties: least load over the life).

    Largest-first (by total load over the life) works best: big requests fix the envelope, small ones
    fill the holes, as LPT does for makespan.
    """
    s = np.zeros((K, G), np.int64)
    env = np.zeros(K, np.int64)
    N = a.shape[0]
    w = np.zeros(N, np.int64)
    inc = np.empty(G, np.int64)
    tot = np.empty(G, np.int64)
    for ii in range(N):
        i = order[ii]
        for g in range(G):
            inc[g] = 0
            tot[g] = 0
        for k in range(a[i], a[i] + o[i]):
            l = p[i] + k - a[i]
            e = env[k]
            for g in range(G):
                x = s[k, g] + l
                if x > e:
                    inc[g] += x - e
                tot[g] += s[k, g]
        bg = 0
        for g in range(1, G):
            if inc[g] < inc[bg] or (inc[g] == inc[bg] and tot[g] < tot[bg]):
                bg = g
        w[i] = bg
        for k in range(a[i], a[i] + o[i]):
            s[k, bg] += p[i] + k - a[i]
            if s[k, bg] > env[k]:
                env[k] = s[k, bg]
    return w


@nb.njit(cache=True)
def active_lists(a, o, K):
    """CSR lists of the requests active at each step (ptr has K + 1 entries)."""
    N = a.shape[0]
    ptr = np.zeros(K + 1, np.int64)
    for i in range(N):
        ptr[a[i] + 1:a[i] + o[i] + 1] += 1
    for k in range(K):
        ptr[k + 1] += ptr[k]
    fill = ptr[:-1].copy()
    ids = np.empty(ptr[K], np.int64)
    for i in range(N):
        for k in range(a[i], a[i] + o[i]):
            ids[fill[k]] = i
            fill[k] += 1
    return ptr, ids


@nb.njit(cache=True)
def anneal(a, p, o, w, s, tops, ptr, ids, by_start, starts, it_start, n_iters, it_total, T0, T1, seed,
           p_move, align):
    """Simulated annealing. A proposal moves a random request to another worker (probability p_move)
    or swaps it with a request on another worker: half the time one whose start is within ``align``
    steps of its own (the change then sits at the two ends of the lives, a fine adjustment), else one
    active at a random step of its life. Temperature T0 * (T1/T0)**(it/it_total), so a run split into
    chunks follows one schedule. Updates w, s, tops in place; returns the change of E."""
    np.random.seed(seed)
    G = s.shape[1]
    N = a.shape[0]
    cur = 0
    ratio = T1 / T0
    for it in range(it_start, it_start + n_iters):
        T = T0 * ratio ** (it / it_total)
        i = np.random.randint(N)
        if np.random.random() < p_move:
            g = np.random.randint(G - 1)
            if g >= w[i]:
                g += 1
            d = move_delta(i, g, a, p, o, w, s, tops)
            if d <= 0 or np.random.random() < np.exp(-d / T):
                move_request(i, g, a, p, o, w, s, tops)
                cur += d
        else:
            if align > 0 and np.random.random() < 0.5:
                lo = np.searchsorted(starts, a[i] - align)
                hi = np.searchsorted(starts, a[i] + align + 1)
                j = by_start[lo + np.random.randint(hi - lo)]
            else:
                k = a[i] + np.random.randint(o[i])
                n_k = ptr[k + 1] - ptr[k]
                j = ids[ptr[k] + np.random.randint(n_k)]
            if w[j] == w[i]:
                continue
            d = swap_delta(i, j, a, p, o, w, s, tops)
            if d <= 0 or np.random.random() < np.exp(-d / T):
                gi = w[i]
                gj = w[j]
                move_request(i, gj, a, p, o, w, s, tops)
                move_request(j, gi, a, p, o, w, s, tops)
                cur += d
    return cur


@nb.njit(cache=True)
def sample_uphill(a, p, o, w, s, tops, n, seed):
    """Median of the positive E-deltas of n random moves: the scale for the annealing temperature."""
    np.random.seed(seed)
    G = s.shape[1]
    N = a.shape[0]
    out = np.empty(n, np.int64)
    m = 0
    for _ in range(n):
        i = np.random.randint(N)
        g = np.random.randint(G - 1)
        if g >= w[i]:
            g += 1
        d = move_delta(i, g, a, p, o, w, s, tops)
        if d > 0:
            out[m] = d
            m += 1
    if m == 0:
        return 1.0
    return float(np.median(out[:m]))


@nb.njit(cache=True)
def move_descent(a, p, o, w, s, tops, max_rounds):
    """Best-improvement single-request moves until none improves; returns the change of E."""
    N = a.shape[0]
    G = s.shape[1]
    total = 0
    for _ in range(max_rounds):
        improved = False
        for i in range(N):
            bd = 0
            bg = -1
            for g in range(G):
                if g == w[i]:
                    continue
                d = move_delta(i, g, a, p, o, w, s, tops)
                if d < bd:
                    bd = d
                    bg = g
            if bg >= 0:
                move_request(i, bg, a, p, o, w, s, tops)
                total += bd
                improved = True
        if not improved:
            break
    return total


@nb.njit(cache=True)
def step_bounds(a, p, o, G, K):
    """Per-step lower bound c_k <= max_g s_g(k), valid for every assignment.

    With the active loads sorted, l_(1) >= l_(2) >= ..., and m = j*G + 1 (j >= 0), some worker holds at
    least j + 1 of the m largest (pigeonhole), so max_g s_g >= l_(m-j) + ... + l_(m) (the j + 1
    smallest of them); j = 0 is the largest load, j = 1 the G-th plus (G+1)-th. Also max >= the mean,
    rounded up since loads are integers. Between breakpoints the active set is fixed and every load grows
    by one per step, so the order is fixed and each bound is affine in k: one sort per segment.
    """
    N = a.shape[0]
    c = np.zeros(K, np.int64)
    order = np.argsort(a)
    ends = a + o
    eorder = np.argsort(ends)
    pos = np.full(N, -1, np.int64)
    act = np.empty(N, np.int64)
    n_act = 0
    si = 0
    ei = 0
    buf = np.empty(N, np.int64)
    pref = np.zeros(N + 1, np.int64)
    k = 0
    while k < K:
        while si < N and a[order[si]] <= k:
            i = order[si]
            pos[i] = n_act
            act[n_act] = i
            n_act += 1
            si += 1
        while ei < N and ends[eorder[ei]] <= k:
            i = eorder[ei]
            q = pos[i]
            last = act[n_act - 1]
            act[q] = last
            pos[last] = q
            pos[i] = -1
            n_act -= 1
            ei += 1
        nxt = K
        if si < N and a[order[si]] < nxt:
            nxt = a[order[si]]
        if ei < N and ends[eorder[ei]] < nxt:
            nxt = ends[eorder[ei]]
        if n_act == 0:
            k = nxt
            continue
        m = n_act
        for r in range(m):
            buf[r] = -(p[act[r]] - a[act[r]])
        vals = -np.sort(buf[:m])  # descending constants; load = const + k
        for r in range(m):
            pref[r + 1] = pref[r] + vals[r]
        for kk in range(k, nxt):
            S = pref[m] + m * kk
            best = (S + G - 1) // G
            j = 0
            while j * G + 1 <= m:
                mm = j * G + 1
                v = pref[mm] - pref[mm - j - 1] + (j + 1) * kk
                if v > best:
                    best = v
                j += 1
            c[kk] = best
        k = nxt
    return c
