"""The decision path, compiled: the router's snapshot filled in one call, placements checked and
applied in one call (framework.simulator._decide).

``fill_snapshot`` writes the public state into blocks the driver allocates fresh for each decision, so
a policy that keeps an old view never sees it change; the driver freezes the blocks before the policy
sees them (framework.state.ClusterState.from_blocks). ``place_checked`` accepts exactly the decisions
framework.placement.validate_placements accepts; on any violation it changes nothing and returns a
code, and the driver calls validate_placements for the message.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from framework.simcore import (ACT, ADONE0, AID, ARR, ASTART, AWRK, BASE, BMAX, CAP, CADM, INPOOL, K,
                               NPF, NPOOL, NRUN, POOLLO, PROMPT, PTR, QLEN, QTOK, RES, S, apply_placements)

# rows of the per-worker block, in ClusterState's WORKER_FIELDS order
W_ROWS = 10
OK, BAD_COUNT, BAD_DISPATCH, BAD_WAITING, BAD_DUP, BAD_WORKER, BAD_SLOTS, BAD_KV = range(8)


@njit(cache=True)
def fill_snapshot(SC, WK, RQ, RF, KEY, AC, wk, wait_i, wait_f, run_i):
    """Per-worker fields into wk (10, G); waiting ids / prompts / prompt keys into wait_i (3, W) and
    arrivals into wait_f (W,); running ids / worker / prompt / decoded / prompt key into run_i (5, R)."""
    G = WK.shape[1]
    base = SC[BASE]
    for g in range(G):
        s, n, npf, ql = WK[S, g], WK[NRUN, g], WK[NPF, g], WK[QLEN, g]
        res, qt, B = WK[RES, g], WK[QTOK, g], WK[BMAX, g]
        wk[0, g] = s
        wk[1, g] = n
        wk[2, g] = npf
        wk[3, g] = ql
        wk[4, g] = res + qt
        wk[5, g] = s + res
        wk[6, g] = B
        wk[7, g] = WK[CAP, g]
        wk[8, g] = max(B - n - npf - ql, 0)
        wk[9, g] = max(WK[CADM, g] - s - res - qt, 0)
    j = 0
    for r in range(SC[POOLLO], SC[PTR]):
        if RQ[INPOOL, r]:
            wait_i[0, j] = base + r
            wait_i[1, j] = RQ[PROMPT, r]
            wait_i[2, j] = KEY[r]
            wait_f[j] = RF[ARR, r]
            j += 1
    k = SC[K]
    for i in range(SC[ACT]):
        r = AC[AID, i]
        run_i[0, i] = base + r
        run_i[1, i] = AC[AWRK, i]
        run_i[2, i] = RQ[PROMPT, r]
        run_i[3, i] = AC[ADONE0, i] + (k - AC[ASTART, i])
        run_i[4, i] = KEY[r]
    return j


@njit(cache=True)
def place_checked(req, wrk, dispatch, SC, WK, RQ):
    """Check a decision against the state now and apply it (OK), or change nothing (a BAD_ code)."""
    n = len(req)
    if n != len(wrk):
        return BAD_COUNT
    if dispatch and n != SC[NPOOL]:
        return BAD_DISPATCH
    G = WK.shape[1]
    base, ptr = SC[BASE], SC[PTR]
    cnt = np.zeros(G, np.int64)
    tok = np.zeros(G, np.int64)
    code = OK
    marked = 0
    for j in range(n):
        r = req[j] - base
        if r < 0 or r >= ptr or RQ[INPOOL, r] == 0:
            code = BAD_WAITING
            break
        if RQ[INPOOL, r] == 2:
            code = BAD_DUP
            break
        RQ[INPOOL, r] = 2  # seen in this decision
        marked = j + 1
        g = wrk[j]
        if g < 0 or g >= G:
            code = BAD_WORKER
            break
        cnt[g] += 1
        tok[g] += RQ[PROMPT, r]
    for j in range(marked):
        RQ[INPOOL, req[j] - base] = 1
    if code != OK:
        return code
    if not dispatch:
        for g in range(G):
            s, npf, ql = WK[S, g], WK[NPF, g], WK[QLEN, g]
            if cnt[g] > max(WK[BMAX, g] - WK[NRUN, g] - npf - ql, 0):
                return BAD_SLOTS
            if tok[g] > max(WK[CADM, g] - s - WK[RES, g] - WK[QTOK, g], 0):
                return BAD_KV
    if n:
        slots = req - base
        apply_placements(slots, wrk, SC, WK, RQ)
    return OK
