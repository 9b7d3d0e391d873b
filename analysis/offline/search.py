"""The incumbent of the offline optimum: largest-first greedy, then simulated annealing on the clock.

It warm-starts the MILP and is the upper bound where the MILP is too large; the kernels it drives are in
analysis.offline.kernels.
"""
from __future__ import annotations

import time

import numpy as np

from analysis.objective import step_series
from analysis.offline import kernels as ks


def energy(a, p, o, w, G) -> int:
    """E = sum_k max_g s_g(k) of an assignment of a part."""
    return int(step_series(a, p, o, w, G, validate=False).envelope.sum())


def search_incumbent(a, p, o, G: int, time_budget: float, seed: int = 0, iters: int | None = None,
                     restarts: int = 1, target: int | None = None,
                     max_iters: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Largest-first greedy, then ``restarts`` annealing runs from it (each followed by move descent).

    Returns the best assignment and all runs' results (the MILP pre-splits its segments where these
    good assignments change arg-max, see solve_milp). A run stops early when it reaches ``target``
    (a lower bound on E: nothing can do better); ``max_iters`` caps a time-calibrated schedule.
    """
    N = len(a)
    K = int((a + o).max())
    size = o * p + o * (o - 1) // 2
    order = np.argsort(-size, kind="stable")
    w_greedy = ks.greedy(a, p, o, order, G, K)
    if G == 1 or N <= G:
        return w_greedy, [w_greedy]
    ptr, ids = ks.active_lists(a, o, K)
    by_start = np.argsort(a, kind="stable")
    lists = (ptr, ids, by_start, a[by_start])
    t_end = time.perf_counter() + time_budget
    runs = []
    for r in range(restarts):
        budget = (t_end - time.perf_counter()) / (restarts - r)
        runs.append(_anneal_run(a, p, o, G, K, w_greedy.copy(), lists, budget, seed + 7919 * r, iters,
                                target, max_iters))
        if target is not None and energy(a, p, o, runs[-1], G) <= target:
            break
    energies = [energy(a, p, o, w, G) for w in runs]
    return runs[int(np.argmin(energies))], runs


# annealing settings: T0 = 0.2 x the median uphill move, 20% moves, swaps half aligned by start (+-3
# steps); how they were tuned: docs/offline_optimum.md
T0_FACTOR, P_MOVE, ALIGN = 0.2, 0.2, 3


def _anneal_run(a, p, o, G, K, w, lists, time_budget, seed, iters, target=None, max_iters=None):
    """One annealing schedule + descent. With ``iters`` the schedule is that many proposals
    (deterministic); otherwise it follows the clock, T = T0 * (T1/T0)**f with f the share of the budget
    used (or of ``max_iters``, whichever is further), so the run ends at its deadline.

    Why the clock and not a proposal count calibrated once: proposals get cheaper as the temperature
    falls (fewer accepted moves to apply), so a calibrated count ran out well before the budget and
    left the rest of the time unused (docs/offline_optimum.md).
    """
    N = len(a)
    s = ks.load_matrix(a, p, o, w, G, K)
    e0 = int(s.max(axis=1).sum())
    if target is not None and e0 <= target:
        return w
    tops = np.empty((5, K), np.int64)
    ks.refresh_tops(s, 0, K, tops)
    T0 = T0_FACTOR * ks.sample_uphill(a, p, o, w, s, tops, 2000, seed)
    T1 = max(T0 * 1e-3, 1e-3)
    best_w, best_e, cur_e = w.copy(), 0, 0
    first = 20_000
    if iters is not None:
        total = iters
    else:
        # the cap only guards absurd budgets (on 1000 x 16 it is about 700 s of proposals here)
        total = max_iters if max_iters is not None else 1_000_000 * N + 1_000_000
        t_start = time.perf_counter()
        rate = 0.0  # proposals per second, measured on the last chunk
    done = 0
    while done < total:
        if iters is not None:
            n, it0, span = min(first, total - done), done, total
        else:
            now = time.perf_counter()
            f = max((now - t_start) / time_budget if time_budget > 0 else 1.0, done / total)
            if f >= 1.0:
                break
            # the schedule in proposals at the current rate: this chunk covers about 2% of it
            span = int(max(min(rate * time_budget, total), first)) if rate else 50 * first
            n = min(max(span // 50, first), total - done)
            it0 = int(f * span)
        t_chunk = time.perf_counter()
        cur_e += ks.anneal(a, p, o, w, s, tops, *lists, it0, n, span, T0, T1, seed + done, P_MOVE, ALIGN)
        done += n
        if iters is None:
            rate = n / max(time.perf_counter() - t_chunk, 1e-6)
        if cur_e < best_e:
            best_e, best_w = cur_e, w.copy()
            if target is not None and e0 + best_e <= target:
                break
    w = best_w
    s = ks.load_matrix(a, p, o, w, G, K)
    ks.refresh_tops(s, 0, K, tops)
    ks.move_descent(a, p, o, w, s, tops, 50)
    return w
