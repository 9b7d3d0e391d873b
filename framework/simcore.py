"""The compiled step core (numba): everything of a step except the policy's decision.

``advance`` runs steps until something needs Python: a decision is possible (requests wait at the
router and, for pool policies, some worker has room), a buffer is full, a progress point is reached, or
the run is done. The driver (framework.simulator) then calls the policy, applies its placements with
``apply_placements`` and resumes at the same step. The state lives in a few flat arrays whose rows are
named by the constants below, so one call passes a handful of arrays, not dozens.

Order of work inside a step is that of the module docstring of framework.simulator. Workers are
visited in ascending order; requests completing in one step are handled in the order they started
decoding (a calendar of finish steps, see _cal_push).
"""
from __future__ import annotations

import numpy as np
from numba import njit

# per-worker rows of WK (int64, shape (NWK, G))
S, NRUN, NPF, QLEN, QTOK, RES, BMAX, CAP, CADM, QHEAD, QTAIL, PFHEAD, PFTAIL, PTOK = range(14)
NWK = 14
# per-request rows of RQ (int32, shape (NRQ, N)); RF (float64, shape (3, N))
(PROMPT, OUTPUT, WORKER, PLACED, ADMIT, PREEMPT, DONE, FINSTEP, INPOOL, ACTPOS, QNEXT, PFNEXT, PFREM,
 SNEXT, SPREV) = range(15)
NRQ = 15
ARR, FIRST, FINISH = range(3)
# running set AC (int64, shape (4, sum B)), compact with swap-remove
AID, AWRK, ASTART, ADONE0 = range(4)
# scalars SC (int64)
(K, PTR, NPOOL, POOLLO, ACT, COMPLETED, QTOTAL, PFTOTAL, IDLE, BUSY, REQSTEPS, RECN, CBN, STOPAT,
 ERRSTEP, BASE, NLOADED, EXHAUSTED) = range(18)
NSC = 18
# RQ/RF columns are slots of a sliding window over the requests: slot j holds request BASE + j; slots
# 0..NLOADED-1 are filled, and EXHAUSTED says the arrival source has nothing more (framework.arrival)
# float scalars SF
TNOW, EXTRA = range(2)
# int params IP
DISPATCH_F, CHECK_F, CHUNK, MAXSTEPS, MAXIDLE, RECMODE, RECEVERY, HOOK_F, COSTKIND, CLOSEDW = range(10)
NIP = 10  # CLOSEDW > 0: closed-loop arrivals, keeping CLOSEDW requests waiting (pool + local queues)
# recording modes
REC_FULL, REC_STEPS, REC_SAMPLED, REC_SUMMARY = range(4)
NAGG = 9  # per-step aggregates: s max, sum, min; n max, sum, min; P sum; t_g max, mean
# accumulators ACC (float64)
A_WITHLOAD, A_IMB, A_BAL, A_IMBTOK, A_GT, A_IDLE = range(6)
NACC = 6
# return codes
DONE_RC, DECIDE, RECBUF, CBBUF, PROGRESS, NEEDARR = range(6)
ERR_IDLE, ERR_MAXSTEPS, ERR_VANISHED = 10, 11, 12
ERR_INV = 20  # + invariant number (see framework.simulator.INVARIANTS)
NOLINK = -1
FINISHED = -2  # RQ[FINSTEP] of a completed request
LINK_ROWS = (QNEXT, PFNEXT, SNEXT, SPREV)  # RQ rows that hold slots (shifted when the window moves)


# Completions come from a calendar: bucket (finish step mod len(CH)) holds a doubly linked list of the
# requests finishing then, in the order they started decoding. len(CH) >= max output, so a bucket only
# ever holds one finish step; a preempted request is unlinked, so no stale entries exist.
@njit(cache=True)
def _cal_push(CH, CT, RQ, r, fin):
    b = fin & (len(CH) - 1)
    t = CT[b]
    RQ[SPREV, r] = t
    RQ[SNEXT, r] = NOLINK
    if t == NOLINK:
        CH[b] = r
    else:
        RQ[SNEXT, t] = r
    CT[b] = r


@njit(cache=True)
def _cal_unlink(CH, CT, RQ, r):
    b = RQ[FINSTEP, r] & (len(CH) - 1)
    p, n = RQ[SPREV, r], RQ[SNEXT, r]
    if p == NOLINK:
        CH[b] = n
    else:
        RQ[SNEXT, p] = n
    if n == NOLINK:
        CT[b] = p
    else:
        RQ[SPREV, n] = p


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
def _append(WK, RQ, g, r, head, tail, link):
    """Append request slot r to worker g's list (local queue or prefill set) threaded through RQ[link]."""
    RQ[link, r] = NOLINK
    if WK[tail, g] == NOLINK:
        WK[head, g] = r
    else:
        RQ[link, WK[tail, g]] = r
    WK[tail, g] = r


@njit(cache=True)
def apply_placements(req, wrk, SC, WK, RQ):
    """Put validated placements into the workers' local FCFS queues (in the order given)."""
    k = SC[K]
    for j in range(len(req)):
        r, g = req[j], wrk[j]
        RQ[INPOOL, r] = 0
        RQ[WORKER, r] = g
        RQ[PLACED, r] = k
        _append(WK, RQ, g, r, QHEAD, QTAIL, QNEXT)
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
            _append(WK, RQ, g, r, PFHEAD, PFTAIL, PFNEXT)
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
def _prefill(SC, IP, WK, RQ, AC, CH, CT, JB):
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
                _cal_push(CH, CT, RQ, r, fin)
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
def _complete(SC, IP, WK, RQ, RF, AC, CH, CT, CB, t_end):
    k = SC[K]
    b = k & (len(CH) - 1)
    r = CH[b]
    CH[b] = NOLINK
    CT[b] = NOLINK
    while r != NOLINK:
        nxt = RQ[SNEXT, r]
        g = RQ[WORKER, r]
        WK[S, g] -= np.int64(RQ[PROMPT, r]) + RQ[OUTPUT, r] - 1
        WK[NRUN, g] -= 1
        RQ[FINSTEP, r] = FINISHED
        _remove_active(SC, RQ, AC, r)
        RF[FINISH, r] = t_end
        SC[COMPLETED] += 1
        if IP[HOOK_F]:
            CB[0, SC[CBN]] = r
            CB[1, SC[CBN]] = k
            SC[CBN] += 1
        r = nxt


@njit(cache=True)
def _preempt_overflow(SC, WK, RQ, AC, CH, CT):
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
            _cal_unlink(CH, CT, RQ, r)
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
