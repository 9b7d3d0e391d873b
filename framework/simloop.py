"""The compiled step loop: runs whole steps until the driver is needed (see framework.simcore)."""
from __future__ import annotations

import numpy as np
from numba import njit

from framework.simcore import (
    A_BAL, A_GT, A_IDLE, A_IMB, A_IMBTOK, A_WITHLOAD, ACT, ACTPOS, ADONE0, AID, ARR, ASTART, AWRK, BASE,
    BMAX, BUSY, CAP, CBBUF, CBN, CHECK_F, CLOSEDW, COMPLETED, COSTKIND, DECIDE, DISPATCH_F, DONE_RC,
    ERR_IDLE, ERR_INV, ERR_MAXSTEPS, ERR_VANISHED, ERRSTEP, EXHAUSTED, EXTRA, FIRST, HOOK_F, IDLE, INPOOL,
    K, MAXIDLE, MAXSTEPS, NEEDARR, NLOADED, NOLINK, NPF, NPOOL, NRUN, PFHEAD, PFNEXT, PFTOTAL, PROGRESS,
    PROMPT, PTOK, PTR, QHEAD, QLEN, QNEXT, QTOTAL, REC_FULL, REC_SAMPLED, REC_STEPS, REC_SUMMARY, RECBUF, RECEVERY, RECMODE, RECN,
    REQSTEPS, RES, S, STOPAT, TNOW, WORKER, _admit, _complete, _preempt_overflow, _prefill, step_times)


@njit(cache=True)
def _record_row(SC, rec_k, rec_t, rec_T, k, t, T):
    """Claim the next row of the recording buffers for step k (start t, duration T)."""
    row = SC[RECN]
    rec_k[row] = k
    rec_t[row] = t
    rec_T[row] = T
    SC[RECN] = row + 1
    return row


@njit(cache=True)
def _record(SC, IP, WK, tg, t, T, rec_k, rec_t, rec_T, rec_s, rec_n, rec_P, rec_tg, rec_agg, ACC):
    G = WK.shape[1]
    k = SC[K]
    mx = WK[S, 0]
    mn = WK[S, 0]
    sm = np.int64(0)
    idle = 0.0
    for g in range(G):
        v = WK[S, g]
        sm += v
        if v > mx:
            mx = v
        if v < mn:
            mn = v
        idle += T - tg[g]
    mean = np.float64(sm) / G
    if mx > 0:
        ACC[A_WITHLOAD] += 1.0
        ACC[A_IMB] += (mx - mean) / mx
        ACC[A_BAL] += mean / mx
    ACC[A_IMBTOK] += np.float64(G * mx - sm)
    ACC[A_GT] += G * T
    ACC[A_IDLE] += idle
    mode = IP[RECMODE]
    if mode == REC_FULL or (mode == REC_SAMPLED and k % IP[RECEVERY] == 0):
        row = _record_row(SC, rec_k, rec_t, rec_T, k, t, T)
        for g in range(G):
            rec_s[row, g] = WK[S, g]
            rec_n[row, g] = WK[NRUN, g]
            rec_P[row, g] = WK[PTOK, g]
            rec_tg[row, g] = tg[g]
    elif mode == REC_STEPS:
        row = _record_row(SC, rec_k, rec_t, rec_T, k, t, T)
        nmx = WK[NRUN, 0]
        nmn = WK[NRUN, 0]
        nsm = np.int64(0)
        psm = np.int64(0)
        tmx = tg[0]
        tsm = 0.0
        for g in range(G):
            nsm += WK[NRUN, g]
            nmx = max(nmx, WK[NRUN, g])
            nmn = min(nmn, WK[NRUN, g])
            psm += WK[PTOK, g]
            tmx = max(tmx, tg[g])
            tsm += tg[g]
        a = rec_agg[row]
        a[0], a[1], a[2] = mx, sm, mn
        a[3], a[4], a[5] = nmx, nsm, nmn
        a[6], a[7], a[8] = psm, tmx, tsm / G


@njit(cache=True)
def _chain_len(RQ, head, link):
    """Length of a per-worker linked list (local queue or prefill set) threaded through RQ[link]."""
    cnt = 0
    r = head
    while r != NOLINK:
        cnt += 1
        r = RQ[link, r]
    return cnt


@njit(cache=True)
def check_invariants(SC, WK, RQ, AC, tg, T, PRM, extra):
    """0 if the bookkeeping holds, else the number of the first broken invariant."""
    G = WK.shape[1]
    k = SC[K]
    s_chk = np.zeros(G, np.int64)
    n_chk = np.zeros(G, np.int64)
    for i in range(SC[ACT]):
        r = AC[AID, i]
        if RQ[ACTPOS, r] != i:
            return 1  # running twice, or the position map is stale
        if RQ[WORKER, r] != AC[AWRK, i]:
            return 4
        g = AC[AWRK, i]
        s_chk[g] += RQ[PROMPT, r] + AC[ADONE0, i] + (k - AC[ASTART, i])
        n_chk[g] += 1
    qt = 0
    pt = 0
    mx = -np.inf
    for g in range(G):
        if s_chk[g] != WK[S, g]:
            return 2
        if n_chk[g] != WK[NRUN, g]:
            return 3
        if WK[S, g] + WK[RES, g] > WK[CAP, g]:
            return 5
        if WK[NRUN, g] + WK[NPF, g] > WK[BMAX, g]:
            return 6
        if WK[S, g] < 0 or WK[NRUN, g] < 0:
            return 9
        if _chain_len(RQ, WK[QHEAD, g], QNEXT) != WK[QLEN, g]:
            return 8
        if _chain_len(RQ, WK[PFHEAD, g], PFNEXT) != WK[NPF, g]:
            return 8
        qt += WK[QLEN, g]
        pt += WK[NPF, g]
        mx = max(mx, tg[g])
    if qt != SC[QTOTAL] or pt != SC[PFTOTAL]:
        return 8
    if abs(T - (mx + PRM[4] + extra)) > 1e-12:
        return 7
    if SC[NPOOL] + SC[QTOTAL] + SC[PFTOTAL] + SC[ACT] + SC[COMPLETED] != SC[BASE] + SC[PTR]:
        return 10  # a request was lost or duplicated
    return 0


@njit(cache=True)
def _arrive(SC, IP, RQ, RF, t):
    """Move arrivals into the router's pool; True if the window ran out before the source did.

    Open loop: every loaded request with arrival time <= t. Closed loop (IP[CLOSEDW] = W > 0): the next
    requests in id order while fewer than W wait (in the pool or a local queue), each arriving now.
    """
    ptr = SC[PTR]
    nl = SC[NLOADED]
    W = IP[CLOSEDW]
    if W > 0:
        while ptr < nl and SC[NPOOL] + SC[QTOTAL] < W:
            RF[ARR, ptr] = t
            RQ[INPOOL, ptr] = 1
            ptr += 1
            SC[NPOOL] += 1
        short = SC[NPOOL] + SC[QTOTAL] < W
    else:
        while ptr < nl and RF[ARR, ptr] <= t:
            RQ[INPOOL, ptr] = 1
            ptr += 1
            SC[NPOOL] += 1
        short = True
    SC[PTR] = ptr
    return ptr == nl and short and SC[EXHAUSTED] == 0


@njit(cache=True)
def advance(phase, SC, SF, PRM, IP, WK, RQ, RF, AC, CH, CT, JB, CB, tg,
            rec_k, rec_t, rec_T, rec_s, rec_n, rec_P, rec_tg, rec_agg, ACC):
    """Run steps from ``phase`` (0: step top, 1: just after a decision) until a return code."""
    G = WK.shape[1]
    capA = AC.shape[1]
    while True:
        if phase == 0:
            if SC[EXHAUSTED] and SC[COMPLETED] >= SC[BASE] + SC[NLOADED]:
                return DONE_RC
            if SC[RECN] >= len(rec_k) and IP[RECMODE] != REC_SUMMARY:
                return RECBUF
            if IP[HOOK_F] and SC[CBN] + capA > CB.shape[1]:
                return CBBUF
            if SC[K] >= SC[STOPAT]:
                return PROGRESS
            if _arrive(SC, IP, RQ, RF, SF[TNOW]):
                return NEEDARR
            SC[BUSY] = 1 if (SC[ACT] or SC[PFTOTAL] or SC[QTOTAL]) else 0
            if SC[NPOOL] > 0:
                want = IP[DISPATCH_F] != 0
                if not want:
                    for g in range(G):
                        if WK[BMAX, g] - WK[NRUN, g] - WK[NPF, g] - WK[QLEN, g] > 0:
                            want = True
                            break
                if want:
                    return DECIDE
        phase = 0
        t = SF[TNOW]
        if SC[BUSY] == 0 and SC[QTOTAL] == 0:
            if SC[NPOOL] > 0:
                SC[IDLE] += 1
                if SC[IDLE] > IP[MAXIDLE]:
                    return ERR_IDLE
            elif SC[PTR] < SC[NLOADED]:  # whole cluster idle: jump to the next arrival
                SF[TNOW] = max(t, RF[ARR, SC[PTR]])
                continue
            else:
                return ERR_VANISHED
        else:
            SC[IDLE] = 0
        if SC[QTOTAL]:
            _admit(SC, WK, RQ)
        if SC[PFTOTAL]:
            nj = _prefill(SC, IP, WK, RQ, AC, CH, CT, JB)
        else:
            nj = 0
            for g in range(G):
                WK[PTOK, g] = 0
        extra = SF[EXTRA]
        T = step_times(IP[COSTKIND], PRM, WK, tg) + extra
        SF[EXTRA] = 0.0
        _record(SC, IP, WK, tg, t, T, rec_k, rec_t, rec_T, rec_s, rec_n, rec_P, rec_tg, rec_agg, ACC)
        SC[REQSTEPS] += SC[ACT]
        if IP[CHECK_F]:
            bad = check_invariants(SC, WK, RQ, AC, tg, T, PRM, extra)
            if bad:
                SC[ERRSTEP] = SC[K]
                return ERR_INV + bad
        t_end = t + T
        for j in range(nj):
            r = JB[j]
            if np.isnan(RF[FIRST, r]):
                RF[FIRST, r] = t_end
        _complete(SC, IP, WK, RQ, RF, AC, CH, CT, CB, t_end)
        over = False
        for g in range(G):
            WK[S, g] += WK[NRUN, g]
            if WK[S, g] + WK[RES, g] > WK[CAP, g]:
                over = True
        if over and SC[ACT]:
            _preempt_overflow(SC, WK, RQ, AC, CH, CT)
        SF[TNOW] = t_end
        SC[K] += 1
        if SC[K] >= IP[MAXSTEPS]:
            return ERR_MAXSTEPS
