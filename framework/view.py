"""The read-only cluster view a router sees each step (DESIGN.md section 4).

A thin wrapper over a ``framework.state.ClusterState`` (filled by the simulator or the live backend):
the waiting requests (id, arrival, prompt, prompt key, age), per-worker load s_g, running count n_g, local-queue
and prefill occupancy, free slots and free KV, and the running requests' prompt lengths and
decoded-so-far counts. The state holds no output lengths and no handle on whoever filled it, so a
policy cannot reach ground truth through the view; oracles go through framework.oracle.
"""
from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import NamedTuple

import numpy as np

from framework.state import RUNNING_FIELDS, ClusterState


def _ro(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class Placements(NamedTuple):
    """A policy's decision: request ``requests[j]`` goes to worker ``workers[j]``."""

    requests: np.ndarray
    workers: np.ndarray

    @staticmethod
    def empty() -> "Placements":
        return Placements(np.empty(0, np.int64), np.empty(0, np.int64))

    @staticmethod
    def of(requests, workers) -> "Placements":
        return Placements(np.asarray(requests, dtype=np.int64).reshape(-1),
                          np.asarray(workers, dtype=np.int64).reshape(-1))


class ClusterView:
    """Snapshot of the cluster at the start of a step, as the router sees it (never output lengths)."""

    __slots__ = ("state", "step", "now_s", "workers", "counters_s", "refreshed", "__dict__")

    def __init__(self, state: ClusterState, counters_s: float | None = None, refreshed: bool = True) -> None:
        self.state = state
        self.step: int = state.step
        self.now_s: float = state.now_s
        self.workers: int = state.workers
        # when the per-worker counters were read (now_s on a fresh view; older on a StaleView's), and
        # whether they were read at this decision (always, on a fresh view)
        self.counters_s: float = state.now_s if counters_s is None else float(counters_s)
        self.refreshed: bool = refreshed

    # --- per worker -------------------------------------------------------------------------
    @property
    def loads(self) -> np.ndarray:
        """s_g: KV tokens of running (decoding) requests per worker."""
        return self.state.loads

    @property
    def running(self) -> np.ndarray:
        """n_g: decoding requests per worker."""
        return self.state.running

    @property
    def prefilling(self) -> np.ndarray:
        """Requests admitted and still in (chunked) prefill, per worker."""
        return self.state.prefilling

    @property
    def queued(self) -> np.ndarray:
        """Requests placed on a worker but not yet admitted (its local FCFS queue), per worker."""
        return self.state.queued

    @property
    def committed_tokens(self) -> np.ndarray:
        """KV tokens reserved by prefilling requests plus prompt tokens queued locally, per worker."""
        return self.state.committed_tokens

    @property
    def max_running(self) -> np.ndarray:
        return self.state.max_running

    @property
    def kv_capacity(self) -> np.ndarray:
        return self.state.kv_capacity

    @property
    def free_slots(self) -> np.ndarray:
        """Requests a worker can still admit now: B_g - running - prefilling - queued."""
        return self.state.free_slots

    @property
    def free_kv(self) -> np.ndarray:
        """KV tokens a worker can still admit now: C_g less the watermark, s_g and committed tokens."""
        return self.state.free_kv

    @cached_property
    def kv_usage(self) -> np.ndarray:
        """Fraction of KV capacity in use (s_g + reserved) / C_g, as engines report it."""
        return _ro(self.state.kv_used / self.state.kv_capacity.astype(np.float64))

    # --- waiting requests (central pool, oldest first) ----------------------------------------
    @property
    def waiting_ids(self) -> np.ndarray:
        return self.state.waiting_ids

    @property
    def num_waiting(self) -> int:
        return len(self.state.waiting_ids)

    @property
    def waiting_prompt(self) -> np.ndarray:
        return self.state.waiting_prompt

    @property
    def waiting_key(self) -> np.ndarray:
        """Prompt keys of the waiting requests (-1 = unknown); equal keys, same prompt."""
        return self.state.waiting_key

    @property
    def waiting_arrival_s(self) -> np.ndarray:
        return self.state.waiting_arrival_s

    @cached_property
    def waiting_age_s(self) -> np.ndarray:
        return _ro(self.now_s - self.state.waiting_arrival_s)

    @property
    def new_ids(self) -> np.ndarray:
        """Waiting requests that arrived since the previous decision (dispatch policies place these)."""
        return self.state.waiting_ids

    # --- running requests -----------------------------------------------------------------------
    @property
    def running_ids(self) -> np.ndarray:
        return self.state.running_ids

    @property
    def running_worker(self) -> np.ndarray:
        return self.state.running_worker

    @property
    def running_prompt(self) -> np.ndarray:
        return self.state.running_prompt

    @property
    def running_decoded(self) -> np.ndarray:
        """Tokens each running request has produced so far; its context is prompt + decoded."""
        return self.state.running_decoded

    @property
    def running_key(self) -> np.ndarray:
        """Prompt keys of the running requests (-1 = unknown)."""
        return self.state.running_key

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (f"ClusterView(step={self.step}, t={self.now_s:.3f}s, waiting={self.num_waiting}, "
                f"loads={self.loads.tolist()})")


SCHEDULES = ("publish", "read")


class PeriodicSnapshot:
    """A stale copy of per-worker counters, refreshed every ``interval_s`` of simulated time.

    Two schedules, after the two systems the baselines copy. ``publish`` (vLLM's DP coordinator pushes
    counts every 100 ms): refresh at the first decision at or after each multiple of the interval.
    ``read`` (SGLang's controller pulls, at most once per 20 ms): refresh when the interval has passed
    since the last refresh. interval_s = 0 means always fresh.
    """

    def __init__(self, interval_s: float, schedule: str = "publish") -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule {schedule!r} is not one of {SCHEDULES}")
        self.interval_s = float(interval_s)
        self.schedule = schedule
        self._next = -np.inf
        self._last = -np.inf
        self.values: dict[str, np.ndarray] = {}
        self.refreshed = False

    def due(self, now_s: float) -> bool:
        if self.interval_s <= 0:
            return True
        if self.schedule == "read":
            return now_s - self._last >= self.interval_s
        return now_s >= self._next

    def update(self, view: ClusterView, **fields) -> bool:
        """Refresh from ``fields`` (name -> callable(view) -> array) if a refresh is due; True if it was.
        The copies keep the counters' dtypes and are read-only."""
        self.refreshed = self.due(view.now_s)
        if self.refreshed:
            self.values = {k: _ro(np.array(f(view))) for k, f in fields.items()}
            self._last = view.now_s
            if self.interval_s > 0:
                # publish instants are multiples of the interval, as a periodic publisher's would be
                self._next = (np.floor(view.now_s / self.interval_s) + 1) * self.interval_s
        return self.refreshed


# What a stale view serves from its snapshot: every counter the engines report (per worker) and the
# running-request table they describe. Everything else is the router's own knowledge, served fresh.
STALE_FIELDS = ("loads", "running", "prefilling", "queued", "committed_tokens", "kv_used") + RUNNING_FIELDS


class StaleView:
    """Serves a router the engines' counters as last read, plus the router's own placements since.

    The policy option ``stale_s`` (framework.policy.PolicyConfig) turns this on for any policy. A real
    front-end learns the engines' loads from periodic reports, but it knows what it sent itself, so:

    stale (the snapshot, refreshed per ``PeriodicSnapshot``): loads s_g, running n_g, prefilling, kv_used
      (hence kv_usage) and the running-request table (every RUNNING_FIELDS column: ids, worker, prompt,
      decoded so far, prompt key).
    stale + local: queued and committed_tokens, to which each placement since the snapshot adds one
      request and its prompt tokens (a placement enters the worker's local queue, DISPATCH and POOL
      alike), so requests + tokens per worker = what was reported + what was sent since.
    local (fresh): the waiting pool and its ages (the router's own queue), step and time, B_g and C_g,
      and free_slots / free_kv: the simulator admits only into real room (a placement beyond it is an
      error, not a refusal it could model), and a front-end sees a slot free when a stream ends.
    """

    def __init__(self, interval_s: float, schedule: str = "publish") -> None:
        self.snapshot = PeriodicSnapshot(interval_s, schedule)
        self.read_s = -np.inf
        self.refreshes = 0
        self._sent_n = np.zeros(0, np.int64)
        self._sent_tokens = np.zeros(0, np.int64)

    def view(self, fresh: ClusterView) -> ClusterView:
        """The view the router decides on now (a new ClusterView over a patched ClusterState)."""
        if self.snapshot.update(fresh, **{f: _getter(f) for f in STALE_FIELDS}):
            self.read_s = fresh.now_s
            self.refreshes += 1
            self._sent_n = np.zeros(fresh.workers, np.int64)
            self._sent_tokens = np.zeros(fresh.workers, np.int64)
        v = self.snapshot.values
        served = dict(v, queued=v["queued"] + self._sent_n,
                      committed_tokens=v["committed_tokens"] + self._sent_tokens)
        state = dataclasses.replace(fresh.state, **served)
        return ClusterView(state, counters_s=self.read_s, refreshed=self.snapshot.refreshed)

    def placed(self, view: ClusterView, placements: Placements) -> None:
        """Count this decision's placements into the counters until the next refresh."""
        req, wrk = placements.requests, placements.workers
        ids = view.waiting_ids
        if not len(req) or not len(ids) or len(req) != len(wrk):
            return  # (malformed placements: the simulator's validation names the problem)
        order = np.argsort(ids, kind="stable")
        pos = order[np.minimum(np.searchsorted(ids, req, sorter=order), len(ids) - 1)]
        ok = (ids[pos] == req) & (wrk >= 0) & (wrk < len(self._sent_n))
        np.add.at(self._sent_n, wrk[ok], 1)
        np.add.at(self._sent_tokens, wrk[ok], view.waiting_prompt[pos[ok]])


def _getter(name: str):
    return lambda v: getattr(v.state, name)
