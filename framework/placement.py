"""The one placement check: the simulator, the latency benchmark and the policy checks all call it.

A decision is judged against the ClusterState it was made on, so the same rules hold wherever the state
came from (simulator or live backend): every placed request is waiting and placed once, workers exist,
a dispatch policy places every waiting request, and a pool policy stays within each worker's free
slots and free KV. A broken decision raises PlacementError naming the policy, the step and the fix.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from framework.errors import PlacementError
from framework.policy import DISPATCH
from framework.state import ClusterState


def waiting_positions(waiting_ids: np.ndarray, req: np.ndarray) -> np.ndarray:
    """Index of each ``req`` in ``waiting_ids``, -1 where it is not waiting."""
    W = waiting_ids
    if len(W) == 0:
        return np.full(len(req), -1, np.int64)
    if len(W) > 1 and not bool(np.all(W[1:] > W[:-1])):  # the simulator's pool is sorted; others may not be
        order = np.argsort(W, kind="stable")
        pos = np.searchsorted(W[order], req)
        pos_c = np.minimum(pos, len(W) - 1)
        hit = W[order][pos_c] == req
        return np.where(hit, order[pos_c], -1)
    pos = np.searchsorted(W, req)
    pos_c = np.minimum(pos, len(W) - 1)
    return np.where(W[pos_c] == req, pos_c, -1)


def placement_arrays(placements: Any, state: ClusterState, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """A decision's (requests, workers) as int64 arrays, or a PlacementError if it is not of that form."""
    try:
        return (np.asarray(placements[0], dtype=np.int64).reshape(-1),
                np.asarray(placements[1], dtype=np.int64).reshape(-1))
    except (TypeError, ValueError, IndexError) as e:
        raise PlacementError(f"Policy {policy!r} at step {state.step} returned {type(placements).__name__}, "
                             "not Placements(requests, workers) of integer arrays.") from e


def validate_placements(placements: Any, state: ClusterState, *, family: str,
                        policy: str) -> tuple[np.ndarray, np.ndarray]:
    """Check a decision against ``state``; return its (requests, workers) as int64 arrays.

    The simulator runs the same rules compiled (framework.simdecide.place_checked) and calls this only
    to word the error when they fail.
    """
    req, wrk = placement_arrays(placements, state, policy)
    where = f"Policy {policy!r} at step {state.step} (t={state.now_s:.3f}s)"
    W = state.waiting_ids
    if len(req) != len(wrk):
        raise PlacementError(f"{where} returned {len(req)} requests but {len(wrk)} workers.")
    if family == DISPATCH and len(req) != len(W):
        missing = np.setdiff1d(W, req)[:5].tolist()
        raise PlacementError(f"{where} is a dispatch policy and must place every new request; "
                             f"it left {len(W) - len(req)} unplaced (e.g. {missing}).")
    if len(req) == 0:
        return req, wrk
    pos = waiting_positions(W, req)
    if pos.min() < 0:
        raise PlacementError(f"{where} placed request {int(req[pos < 0][0])}, which is not waiting at the "
                             "router (unknown, already placed, or not yet arrived).")
    if len(req) > 1:
        dup = np.bincount(pos, minlength=len(W)) > 1
        if dup.any():
            raise PlacementError(f"{where} placed request {int(W[np.flatnonzero(dup)[0]])} twice in one "
                                 "decision.")
    G = state.workers
    if wrk.min() < 0 or wrk.max() >= G:
        bad = int(wrk[(wrk < 0) | (wrk >= G)][0])
        raise PlacementError(f"{where} chose worker {bad}; workers are 0..{G - 1}.")
    if family != DISPATCH:
        cnt = np.bincount(wrk, minlength=G)
        over_s = np.flatnonzero(cnt > state.free_slots)
        if len(over_s):
            g = int(over_s[0])
            raise PlacementError(f"{where} placed {int(cnt[g])} requests on worker {g}, which has "
                                 f"{int(state.free_slots[g])} free slot(s) (max_running="
                                 f"{int(state.max_running[g])}). Respect view.free_slots.")
        tok = np.bincount(wrk, weights=state.waiting_prompt[pos], minlength=G)
        over_k = np.flatnonzero(tok > state.free_kv)
        if len(over_k):
            g = int(over_k[0])
            raise PlacementError(f"{where} placed {int(tok[g])} prompt tokens on worker {g}, which "
                                 f"has {int(state.free_kv[g])} free KV tokens. Respect view.free_kv.")
    return req, wrk
