"""The compiled step core (numba): everything of a step except the policy's decision.

``advance`` runs steps until something needs Python: a decision is possible (requests wait at the
router and, for pool policies, some worker has room), a buffer is full, a progress point is reached, or
the run is done. The driver (framework.simulator) then calls the policy, applies its placements with
``apply_placements`` and resumes at the same step. The state lives in a few flat arrays whose rows are
named by the constants below, so one call passes a handful of arrays, not dozens.

Order of work inside a step is that of the module docstring of framework.simulator. Workers are
visited in ascending order; requests completing in one step are handled in the order they started
decoding (a heap keyed by (finish step, start sequence)).
"""
from __future__ import annotations

import numpy as np
from numba import njit

# per-worker rows of WK (int64, shape (NWK, G))
S, NRUN, NPF, QLEN, QTOK, RES, BMAX, CAP, CADM, QHEAD, QTAIL, PFHEAD, PFTAIL, PTOK = range(14)
NWK = 14
# per-request rows of RQ (int32, shape (NRQ, N)); RF (float64, shape (3, N))
PROMPT, OUTPUT, WORKER, PLACED, ADMIT, PREEMPT, DONE, FINSTEP, INPOOL, ACTPOS, QNEXT, PFNEXT, PFREM = range(13)
NRQ = 13
ARR, FIRST, FINISH = range(3)
# running set AC (int64, shape (4, sum B)), compact with swap-remove
AID, AWRK, ASTART, ADONE0 = range(4)
# scalars SC (int64)
(K, PTR, NPOOL, POOLLO, ACT, COMPLETED, QTOTAL, PFTOTAL, HEAPN, SEQ, IDLE, BUSY, REQSTEPS, RECN, CBN,
 STOPAT, ERRSTEP) = range(17)
NSC = 17
# float scalars SF
TNOW, EXTRA = range(2)
# int params IP
DISPATCH_F, CHECK_F, CHUNK, MAXSTEPS, MAXIDLE, RECMODE, RECEVERY, HOOK_F, COSTKIND = range(9)
NIP = 9
# recording modes
REC_FULL, REC_STEPS, REC_SAMPLED, REC_SUMMARY = range(4)
NAGG = 9  # per-step aggregates: s max, sum, min; n max, sum, min; P sum; t_g max, mean
# accumulators ACC (float64)
A_WITHLOAD, A_IMB, A_BAL, A_IMBTOK, A_GT, A_IDLE = range(6)
NACC = 6
# return codes
DONE_RC, DECIDE, RECBUF, CBBUF, HEAPBUF, PROGRESS = range(6)
ERR_IDLE, ERR_MAXSTEPS, ERR_VANISHED = 10, 11, 12
ERR_INV = 20  # + invariant number (see framework.simulator.INVARIANTS)
NOLINK = -1
_SEQ_BITS = 32


@njit(cache=True)
def _heap_push(HK, HV, n, key, val):
    i = n
    HK[i] = key
    HV[i] = val
    while i > 0:
        p = (i - 1) >> 1
        if HK[p] <= HK[i]:
            break
        HK[p], HK[i] = HK[i], HK[p]
        HV[p], HV[i] = HV[i], HV[p]
        i = p
    return n + 1


@njit(cache=True)
def _heap_pop(HK, HV, n):
    n -= 1
    HK[0] = HK[n]
    HV[0] = HV[n]
    i = 0
    while True:
        lft = 2 * i + 1
        if lft >= n:
            break
        c = lft
        if lft + 1 < n and HK[lft + 1] < HK[lft]:
            c = lft + 1
        if HK[i] <= HK[c]:
            break
        HK[c], HK[i] = HK[i], HK[c]
        HV[c], HV[i] = HV[i], HV[c]
        i = c
    return n


@njit(cache=True)
def _remove_active(SC, RQ, AC, r):
    i = RQ[ACTPOS, r]
    last = SC[ACT] - 1
    if i != last:
        m = AC[AID, last]
        for row in range(4):
            AC[row, i] = AC[row, last]
        RQ[ACTPOS, m] = i
    RQ[ACTPOS, r] = NOLINK
    SC[ACT] = last


@njit(cache=True)
def apply_placements(req, wrk, SC, WK, RQ):
    """Put validated placements into the workers' local FCFS queues (in the order given)."""
    k = SC[K]
    for j in range(len(req)):
        r, g = req[j], wrk[j]
        RQ[INPOOL, r] = 0
        RQ[WORKER, r] = g
        RQ[PLACED, r] = k
        RQ[QNEXT, r] = NOLINK
        if WK[QTAIL, g] == NOLINK:
            WK[QHEAD, g] = r
        else:
            RQ[QNEXT, WK[QTAIL, g]] = r
        WK[QTAIL, g] = r
        WK[QTOK, g] += RQ[PROMPT, r]
        WK[QLEN, g] += 1
    SC[NPOOL] -= len(req)
    SC[QTOTAL] += len(req)
    lo, ptr = SC[POOLLO], SC[PTR]
    while lo < ptr and RQ[INPOOL, lo] == 0:
        lo += 1
    SC[POOLLO] = lo


@njit(cache=True)
def _admit(SC, WK, RQ):
    """Each worker admits from its local queue, FCFS, while a slot and KV room are free."""
    G = WK.shape[1]
    for g in range(G):
        if WK[QLEN, g] == 0:
            continue
        room_slots = WK[BMAX, g] - WK[NRUN, g] - WK[NPF, g]
        room_kv = WK[CADM, g] - WK[S, g] - WK[RES, g]
        admitted = 0
        tokens = 0
        r = WK[QHEAD, g]
        while r != NOLINK and room_slots > 0:
            need = np.int64(RQ[PROMPT, r]) + RQ[DONE, r]
            if need > room_kv:
                break
            nxt = RQ[QNEXT, r]
            room_slots -= 1
            room_kv -= need
            admitted += 1
            tokens += need
            RQ[PFREM, r] = need
            RQ[PFNEXT, r] = NOLINK
            if WK[PFTAIL, g] == NOLINK:
                WK[PFHEAD, g] = r
            else:
                RQ[PFNEXT, WK[PFTAIL, g]] = r
            WK[PFTAIL, g] = r
            r = nxt
        WK[QHEAD, g] = r
        if r == NOLINK:
            WK[QTAIL, g] = NOLINK
        if admitted:
            SC[QTOTAL] -= admitted
            SC[PFTOTAL] += admitted
            WK[QLEN, g] -= admitted
            WK[QTOK, g] -= tokens
            WK[NPF, g] += admitted
            WK[RES, g] += tokens


@njit(cache=True)
def _prefill(SC, IP, WK, RQ, AC, HK, HV, JB):
    """Chunked prefill within each worker's budget; requests that finish it start decoding now."""
    G = WK.shape[1]
    k = SC[K]
    nj = 0
    budget0 = IP[CHUNK] if IP[CHUNK] > 0 else np.int64(1) << 62
    for g in range(G):
        WK[PTOK, g] = 0
        if WK[PFHEAD, g] == NOLINK:
            continue
        budget = budget0
        used = 0
        r = WK[PFHEAD, g]
        while r != NOLINK and budget > 0:
            rem = np.int64(RQ[PFREM, r])
            take = rem if rem < budget else budget
            RQ[PFREM, r] = rem - take
            budget -= take
            used += take
            if rem - take == 0:
                nxt = RQ[PFNEXT, r]
                need = np.int64(RQ[PROMPT, r]) + RQ[DONE, r]
                WK[NPF, g] -= 1
                SC[PFTOTAL] -= 1
                WK[RES, g] -= need
                WK[S, g] += need
                WK[NRUN, g] += 1
                d0 = np.int64(RQ[DONE, r])
                fin = k + RQ[OUTPUT, r] - d0 - 1
                RQ[FINSTEP, r] = fin
                SC[HEAPN] = _heap_push(HK, HV, SC[HEAPN], (fin << _SEQ_BITS) | SC[SEQ], r)
                SC[SEQ] += 1
                if RQ[ADMIT, r] < 0:
                    RQ[ADMIT, r] = k
                c = SC[ACT]
                AC[AID, c] = r
                AC[AWRK, c] = g
                AC[ASTART, c] = k
                AC[ADONE0, c] = d0
                RQ[ACTPOS, r] = c
                SC[ACT] = c + 1
                JB[nj] = r
                nj += 1
                r = nxt
        WK[PFHEAD, g] = r
        if r == NOLINK:
            WK[PFTAIL, g] = NOLINK
        WK[PTOK, g] = used
    return nj


@njit(cache=True)
def _complete(SC, IP, WK, RQ, RF, AC, HK, HV, CB, t_end):
    k = SC[K]
    while SC[HEAPN] > 0 and (HK[0] >> _SEQ_BITS) <= k:
        r = HV[0]
        SC[HEAPN] = _heap_pop(HK, HV, SC[HEAPN])
        if RQ[FINSTEP, r] != k:  # stale entry of a preempted request
            continue
        g = RQ[WORKER, r]
        WK[S, g] -= np.int64(RQ[PROMPT, r]) + RQ[OUTPUT, r] - 1
        WK[NRUN, g] -= 1
        RQ[FINSTEP, r] = -2
        _remove_active(SC, RQ, AC, r)
        RF[FINISH, r] = t_end
        SC[COMPLETED] += 1
        if IP[HOOK_F]:
            CB[0, SC[CBN]] = r
            CB[1, SC[CBN]] = k
            SC[CBN] += 1


@njit(cache=True)
def _preempt_overflow(SC, WK, RQ, AC):
    """A worker over its KV capacity preempts its newest requests to the head of its queue (sticky)."""
    G = WK.shape[1]
    N = RQ.shape[1]
    k = SC[K]
    for g in range(G):
        while WK[S, g] + WK[RES, g] > WK[CAP, g]:
            best = -1
            best_key = np.int64(-1)
            for i in range(SC[ACT]):  # newest first: latest decode start, then latest request id
                if AC[AWRK, i] == g:
                    key = AC[ASTART, i] * N + AC[AID, i]
                    if key > best_key:
                        best_key = key
                        best = i
            if best < 0:  # only prefill reservations left; they fit by construction
                break
            r = AC[AID, best]
            decoded = AC[ADONE0, best] + (k + 1 - AC[ASTART, best])
            load = RQ[PROMPT, r] + decoded
            WK[S, g] -= load
            WK[NRUN, g] -= 1
            _remove_active(SC, RQ, AC, r)
            RQ[FINSTEP, r] = -1
            RQ[DONE, r] = decoded
            RQ[PREEMPT, r] += 1
            RQ[QNEXT, r] = WK[QHEAD, g]
            WK[QHEAD, g] = r
            if WK[QTAIL, g] == NOLINK:
                WK[QTAIL, g] = r
            WK[QLEN, g] += 1
            SC[QTOTAL] += 1
            WK[QTOK, g] += load


@njit(cache=True)
def step_times(kind, PRM, WK, tg):
    """t_g per worker for cost model ``kind`` (framework.cost); returns T = max t_g + c_sync."""
    G = WK.shape[1]
    if kind == 0:  # fixed
        for g in range(G):
            tg[g] = PRM[0]
        return PRM[0] + PRM[4]
    mx = -np.inf
    for g in range(G):  # linear; same operation order as c0 + c_seq*n + c_kv*s + c_pf*P
        v = PRM[0] + PRM[1] * np.float64(WK[NRUN, g]) + PRM[2] * np.float64(WK[S, g]) \
            + PRM[3] * np.float64(WK[PTOK, g])
        tg[g] = v
        if v > mx:
            mx = v
    return mx + PRM[4]
