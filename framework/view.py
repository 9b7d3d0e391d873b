"""The read-only cluster view a router sees each step (DESIGN.md section 4).

A thin wrapper over a ``framework.state.ClusterState`` (filled by the simulator or the live backend):
the waiting requests (id, arrival, prompt, prompt key, age), per-worker load s_g, running count n_g, local-queue
and prefill occupancy, free slots and free KV, and the running requests' prompt lengths and
decoded-so-far counts. The state holds no output lengths and no handle on whoever filled it, so a
policy cannot reach ground truth through the view; oracles go through framework.oracle.
"""
from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

import numpy as np

from framework.state import ClusterState


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

    __slots__ = ("state", "step", "now_s", "workers", "__dict__")

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.step: int = state.step
        self.now_s: float = state.now_s
        self.workers: int = state.workers

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


class PeriodicSnapshot:
    """A stale copy of per-worker counters, refreshed every ``interval_s`` of simulated time.

    vLLM's front-end sees engine counts published every 100 ms, SGLang's router every 20 ms; a policy
    that models this keeps one of these and reads counters from it instead of from the live view.
    interval_s = 0 means always fresh.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = float(interval_s)
        self._next = -np.inf
        self.values: dict[str, np.ndarray] = {}
        self.refreshed = False

    def update(self, view: ClusterView, **fields) -> bool:
        """Refresh from ``fields`` (name -> callable(view) -> array) if a publish is due; True if it was."""
        self.refreshed = False
        if self.interval_s <= 0 or view.now_s >= self._next:
            self.values = {k: np.array(f(view), dtype=np.float64) for k, f in fields.items()}
            if self.interval_s > 0:
                # publish instants are multiples of the interval, as a periodic publisher's would be
                self._next = (np.floor(view.now_s / self.interval_s) + 1) * self.interval_s
            self.refreshed = True
        return self.refreshed
