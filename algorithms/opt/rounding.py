"""Integral placements that respect every limit: greedy fill, rounding of a fractional x, comparison.

The hot loops are numba kernels: they run every decision step, over candidates x workers.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from algorithms.fscore import envelope
from algorithms.opt.model import Model
from algorithms.opt.problem import PoolProblem, imbalance_objective, limit_violations, predicted_loads


@njit(cache=True, nogil=True)
def _fill_kernel(add, w, prompt, slots, kv, loads, order, assign, target):  # pragma: no cover - compiled
    """``fill``'s loop (see there); updates assign, slots, kv and loads in place."""
    G, H1 = loads.shape
    M = envelope(loads)
    wsum = np.zeros(G)
    placed = 0
    for i in range(len(assign)):
        if assign[i] >= 0:
            placed += 1
    for g in range(G):
        for h in range(H1):
            wsum[g] += w[h] * loads[g, h]
    for j in range(len(order)):
        if placed >= target:
            break
        i = order[j]
        if assign[i] >= 0:
            continue
        p = prompt[i]
        best = -1
        best_raise = 0.0
        for g in range(G):
            if slots[g] <= 0 or kv[g] < p:
                continue
            r = 0.0
            for h in range(H1):
                x = loads[g, h] + add[i, h] - M[h]
                if x > 0.0:
                    r += w[h] * x
            if best < 0 or r < best_raise or (r == best_raise and wsum[g] < wsum[best]):
                best = g
                best_raise = r
        if best < 0:
            continue
        assign[i] = best
        placed += 1
        slots[best] -= 1
        kv[best] -= p
        for h in range(H1):
            loads[best, h] += add[i, h]
            wsum[best] += w[h] * add[i, h]
            if loads[best, h] > M[h]:
                M[h] = loads[best, h]


@njit(cache=True, nogil=True)
def _take_kernel(req, wkr, prompt, slots, kv, assign, target):  # pragma: no cover - compiled
    """Rounding's first pass: take (req, wkr) pairs in the given order while they fit, up to target."""
    placed = 0
    for j in range(len(req)):
        i = req[j]
        g = wkr[j]
        if assign[i] >= 0 or slots[g] <= 0 or kv[g] < prompt[i]:
            continue
        assign[i] = g
        slots[g] -= 1
        kv[g] -= prompt[i]
        placed += 1
        if placed >= target:
            break
    return placed


def fill(pb: PoolProblem, assign: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Place unplaced requests, in ``order``, until K are placed: each goes to the worker with a slot and
    KV room where it raises the weighted envelope least (ties: the lower weighted load, then the lower
    index). Limits always hold."""
    assign = np.array(assign, dtype=np.int64)
    sel = assign >= 0
    if int(sel.sum()) >= pb.target:
        return assign
    slots = pb.free_slots - np.bincount(assign[sel], minlength=pb.G)
    kv = pb.free_kv - np.bincount(assign[sel], weights=pb.prompt[sel], minlength=pb.G).astype(np.int64)
    _fill_kernel(pb.add, pb.weights, pb.prompt, slots, kv, predicted_loads(pb, assign),
                 np.ascontiguousarray(order, dtype=np.int64), assign, pb.target)
    return assign


def greedy_placement(pb: PoolProblem) -> np.ndarray:
    """Largest first (discounted added load), each where it raises the envelope least; falls back to
    the count-greedy packing when that admits more (KV binding)."""
    order = np.argsort(-(pb.add @ pb.weights), kind="stable")
    assign = fill(pb, np.full(pb.N, -1, np.int64), order)
    if int((assign >= 0).sum()) < pb.floor:
        assign = fill(pb, pb.greedy_count(), order)
    return assign


def round_placement(pb: PoolProblem, x_req: np.ndarray, x_wkr: np.ndarray, x_val: np.ndarray,
                    tol: float = 1e-6) -> np.ndarray:
    """An integral placement from fractional x that respects every limit.

    Pairs are taken largest x first (older request first on ties) while the request is unplaced and the
    worker has a slot and KV room, up to K; requests still out are then placed by ``fill`` (largest total
    x first, then largest added load); if that admits fewer than K_lb, fill starts from the count-greedy
    packing instead.
    """
    assign = np.full(pb.N, -1, np.int64)
    if pb.target == 0:
        return assign
    keep = x_val > tol
    req, wkr, val = x_req[keep], x_wkr[keep], x_val[keep]
    order = np.lexsort((req, -val))
    placed = _take_kernel(req[order], wkr[order], pb.prompt, pb.free_slots.copy(), pb.free_kv.copy(),
                          assign, pb.target)
    if placed >= pb.target:
        return assign
    xsum = np.bincount(req, weights=val, minlength=pb.N)
    rest = np.lexsort((-(pb.add @ pb.weights), -xsum))
    out = fill(pb, assign, rest)
    if int((out >= 0).sum()) < pb.floor:
        out = fill(pb, pb.greedy_count(), rest)
    return out


def integral_solution(pb: PoolProblem, model: Model, x: np.ndarray) -> np.ndarray | None:
    """The placement a MILP solution encodes, or None if it breaks a limit (then round it instead)."""
    on = x > 0.5
    if np.bincount(model.x_req[on], minlength=pb.N).max(initial=0) > 1:
        return None
    assign = np.full(pb.N, -1, np.int64)
    assign[model.x_req[on]] = model.x_wkr[on]
    return None if limit_violations(pb, assign) else assign


def better(pb: PoolProblem, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The placement that admits more, then has the lower imbalance objective (a on ties)."""
    na, nb = int((a >= 0).sum()), int((b >= 0).sum())
    if na != nb:
        return a if na > nb else b
    return a if imbalance_objective(pb, a) <= imbalance_objective(pb, b) + 1e-9 else b
