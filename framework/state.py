"""The public, read-only cluster state a router decides on (DESIGN.md sections 2 and 4).

One ``ClusterState`` is a snapshot at the start of a step. The simulator fills one per decision; the
live backend fills the same object from its engines' counters; ``framework.view.ClusterView`` wraps it
for policies. It holds what a real router can know and nothing else: there is no field, and no object
reachable from one, that carries a request's output length, so "no policy sees o_i" holds by
construction, not by convention.

Fields (all numpy arrays are int64 unless noted, made read-only on construction):

per worker, shape (G,)
  loads             s_g, KV tokens of decoding requests
  running           n_g, decoding requests
  prefilling        requests admitted and still in (chunked) prefill
  queued            requests placed on the worker but not yet admitted (its local FCFS queue)
  committed_tokens  KV tokens reserved by prefilling requests plus prompt tokens queued locally
  kv_used           KV tokens held now: loads plus prefill reservations (what engines report)
  max_running       B_g
  kv_capacity       C_g
  free_slots        requests the worker can still take now: B_g - running - prefilling - queued, >= 0
  free_kv           KV tokens it can still take now (C_g less the admission watermark, loads and
                    committed tokens), >= 0
waiting requests at the router, oldest first, shape (W,)
  waiting_ids, waiting_arrival_s (float64, seconds), waiting_prompt
running (decoding) requests, shape (R,)
  running_ids, running_worker, running_prompt, running_decoded (tokens produced so far)
prompt keys (optional; -1 = unknown): waiting_key (W,), running_key (R,). A key identifies the prompt
  (framework.workloads.keys), which a real router sees; it says nothing about the output by itself.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable

import numpy as np

WORKER_FIELDS = ("loads", "running", "prefilling", "queued", "committed_tokens", "kv_used",
                 "max_running", "kv_capacity", "free_slots", "free_kv")
WAITING_FIELDS = ("waiting_ids", "waiting_arrival_s", "waiting_prompt", "waiting_key")
RUNNING_FIELDS = ("running_ids", "running_worker", "running_prompt", "running_decoded", "running_key")


@dataclass(frozen=True, eq=False)
class ClusterState:
    """A router's snapshot of the cluster at the start of one step; see the module docstring."""

    step: int
    now_s: float
    loads: np.ndarray
    running: np.ndarray
    prefilling: np.ndarray
    queued: np.ndarray
    committed_tokens: np.ndarray
    kv_used: np.ndarray
    max_running: np.ndarray
    kv_capacity: np.ndarray
    free_slots: np.ndarray
    free_kv: np.ndarray
    waiting_ids: np.ndarray
    waiting_arrival_s: np.ndarray
    waiting_prompt: np.ndarray
    running_ids: np.ndarray
    running_worker: np.ndarray
    running_prompt: np.ndarray
    running_decoded: np.ndarray
    waiting_key: np.ndarray | None = None  # None: unknown for every request (filled with -1)
    running_key: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, n in (("waiting_key", len(self.waiting_ids)), ("running_key", len(self.running_ids))):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, -1, np.int64))
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                if v.flags.writeable:  # the filler hands over fresh arrays; freeze them in place
                    v.flags.writeable = False
        G = len(self.loads)
        for groups, n, what in ((WORKER_FIELDS, G, "per-worker"),
                                (WAITING_FIELDS, len(self.waiting_ids), "waiting"),
                                (RUNNING_FIELDS, len(self.running_ids), "running")):
            for name in groups:
                if len(getattr(self, name)) != n:
                    raise ValueError(f"ClusterState.{name} has length {len(getattr(self, name))}, "
                                     f"other {what} fields {n}.")

    @property
    def workers(self) -> int:
        return len(self.loads)

    @classmethod
    def from_blocks(cls, step: int, now_s: float, wk: np.ndarray, wait_i: np.ndarray, wait_f: np.ndarray,
                    run_i: np.ndarray) -> "ClusterState":
        """The simulator's fast path: fields are rows of blocks made for this one snapshot, frozen here.

        wk holds WORKER_FIELDS as rows (10, G); wait_i the waiting ids, prompts and prompt keys (3, W),
        wait_f their arrival times; run_i the running ids, workers, prompts, decoded counts and prompt
        keys (5, R). A row of a
        read-only block cannot be made writeable, so the view stays read-only as with __init__, whose
        per-field checks this skips (the shapes hold by construction).
        """
        for b in (wk, wait_i, wait_f, run_i):
            b.flags.writeable = False
        obj = object.__new__(cls)
        d = obj.__dict__
        d.update(zip(WORKER_FIELDS, wk))
        d.update(step=step, now_s=now_s, waiting_ids=wait_i[0], waiting_arrival_s=wait_f,
                 waiting_prompt=wait_i[1], running_ids=run_i[0], running_worker=run_i[1],
                 running_prompt=run_i[2], running_decoded=run_i[3], waiting_key=wait_i[2],
                 running_key=run_i[4])
        return obj

    @classmethod
    def build(cls, *, step: int, now_s: float, max_running: Iterable[int], kv_capacity: Iterable[int],
              prompt: np.ndarray, arrival_s: np.ndarray | None = None,
              running: Iterable[tuple[int, int, int]] = (), waiting: Iterable[int] = (),
              prefilling=None, queued=None, reserved=None, queued_tokens=None,
              kv_admit=None, keys=None) -> "ClusterState":
        """Assemble a state from request-level facts (tests, benchmarks, a live backend's adapter).

        ``prompt`` and ``arrival_s`` are indexed by request id; ``running`` lists (id, worker,
        decoded); ``waiting`` the router's ids, oldest first. ``kv_admit`` is the admission limit per
        worker (defaults to the capacity, i.e. no watermark). ``keys``: prompt keys by request id (or None).
        """
        B = np.asarray(list(max_running) if not isinstance(max_running, np.ndarray) else max_running,
                       np.int64)
        G = len(B)
        C = np.broadcast_to(np.asarray(kv_capacity if isinstance(kv_capacity, np.ndarray)
                                       else list(kv_capacity), np.int64), (G,)).copy()
        prompt = np.asarray(prompt, np.int64)
        arrival = np.zeros(len(prompt)) if arrival_s is None else np.asarray(arrival_s, np.float64)
        run = list(running)
        rid = np.array([r[0] for r in run], np.int64)
        rw = np.array([r[1] for r in run], np.int64)
        rd = np.array([r[2] for r in run], np.int64)
        s = np.bincount(rw, weights=prompt[rid] + rd, minlength=G).astype(np.int64)
        n = np.bincount(rw, minlength=G).astype(np.int64)
        z = np.zeros(G, np.int64)
        npf = z if prefilling is None else np.asarray(prefilling, np.int64)
        ql = z if queued is None else np.asarray(queued, np.int64)
        res = z if reserved is None else np.asarray(reserved, np.int64)
        qt = z if queued_tokens is None else np.asarray(queued_tokens, np.int64)
        admit = C if kv_admit is None else np.asarray(kv_admit, np.int64)
        wid = np.asarray(list(waiting) if not isinstance(waiting, np.ndarray) else waiting, np.int64)
        return cls(step=int(step), now_s=float(now_s), loads=s, running=n, prefilling=npf.copy(),
                   queued=ql.copy(), committed_tokens=res + qt, kv_used=s + res, max_running=B.copy(),
                   kv_capacity=C, free_slots=np.maximum(B - n - npf - ql, 0),
                   free_kv=np.maximum(admit - s - res - qt, 0), waiting_ids=wid,
                   waiting_arrival_s=arrival[wid], waiting_prompt=prompt[wid], running_ids=rid,
                   running_worker=rw, running_prompt=prompt[rid], running_decoded=rd,
                   waiting_key=None if keys is None else np.asarray(keys, np.int64)[wid],
                   running_key=None if keys is None else np.asarray(keys, np.int64)[rid])
