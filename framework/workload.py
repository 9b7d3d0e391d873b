"""The request table every workload source produces, its streamed form, and the train/simulate split.

Output lengths live here because the simulator needs them to know when requests finish; policies never
receive a Workload, only the view (framework.view) and, if they are oracles, the OracleChannel.

``prompt_key`` (optional, int64 >= 0 per request, or None when the source has none) identifies the
prompt: requests with equal keys have the same prompt (Mooncake: a hash of hash_ids; a CSV: its hash
column; framework.workloads.keys). A router sees the prompt, so the view carries the key; it is not
ground truth about the output.

The simulator consumes requests through one seam, ``iter_chunks``: a ``Workload`` (in memory) is one
chunk; a ``WorkloadStream`` (a week-long trace, framework.workloads.stream) yields chunks as it reads,
and the simulator pulls the next one only when its clock reaches the last arrival it holds, so a week
never needs every request's arrays at once (docs/simulator.md).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from framework.errors import TraceFormatError


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival time (seconds from the first simulated arrival)."""

    name: str
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str = ""
    meta: dict = field(default_factory=dict)
    prompt_key: np.ndarray | None = None
    # > 0: closed-loop arrivals (workload.arrival=closed_loop): arrival_s is ignored and the simulator
    # releases the next request whenever fewer than this many wait; its arrival is the release time
    closed_loop_waiting: int = 0

    def __post_init__(self) -> None:
        a = np.ascontiguousarray(self.arrival_s, dtype=np.float64)
        p = np.ascontiguousarray(self.prompt_tokens, dtype=np.int64)
        o = np.ascontiguousarray(self.output_tokens, dtype=np.int64)
        object.__setattr__(self, "arrival_s", a)
        object.__setattr__(self, "prompt_tokens", p)
        object.__setattr__(self, "output_tokens", o)
        where = f"workload {self.name!r}" + (f" ({self.source})" if self.source else "")
        if not (len(a) == len(p) == len(o)):
            raise TraceFormatError(f"{where}: arrival, prompt and output columns differ in length "
                                   f"({len(a)}, {len(p)}, {len(o)}).")
        if len(a) == 0:
            raise TraceFormatError(f"{where} has no requests: check the file, the time window "
                                   "(workload.start_s / workload.duration_s) and workload.max_requests.")
        if not np.all(np.isfinite(a)):
            bad = int(np.flatnonzero(~np.isfinite(a))[0])
            raise TraceFormatError(f"{where}: arrival time of request {bad} is not finite.")
        if np.any(np.diff(a) < 0):
            bad = int(np.flatnonzero(np.diff(a) < 0)[0]) + 1
            raise TraceFormatError(f"{where}: arrivals are not sorted (request {bad} arrives before "
                                   "the one above it); sort the trace by timestamp.")
        if self.prompt_key is not None:
            k = np.ascontiguousarray(self.prompt_key, dtype=np.int64)
            object.__setattr__(self, "prompt_key", k)
            if len(k) != len(a):
                raise TraceFormatError(f"{where}: prompt_key has {len(k)} entries for {len(a)} requests.")
            if len(k) and int(k.min()) < 0:
                raise TraceFormatError(f"{where}: prompt keys must be >= 0 (framework.workloads.keys makes "
                                       "them); -1 is reserved for 'unknown'.")
        for col, arr, lo in (("prompt_tokens", p, 1), ("output_tokens", o, 1)):
            if np.any(arr < lo):
                bad = int(np.flatnonzero(arr < lo)[0])
                raise TraceFormatError(f"{where}: {col} of request {bad} is {int(arr[bad])}; every "
                                       f"request needs at least {lo} token(s). Drop or fix that row.")

    def __len__(self) -> int:
        return len(self.arrival_s)

    def take(self, index: np.ndarray | slice, name: str | None = None) -> "Workload":
        """A sub-workload (rows in arrival order), arrivals re-based to start at 0."""
        a = self.arrival_s[index]
        a = a - a[0] if len(a) else a
        key = None if self.prompt_key is None else self.prompt_key[index]
        return Workload(name or self.name, a, self.prompt_tokens[index], self.output_tokens[index],
                        self.source, dict(self.meta), key, self.closed_loop_waiting)


@dataclass(frozen=True)
class Chunk:
    """Consecutive requests of a source: arrival times (s, non-decreasing), prompt and output tokens."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    prompt_key: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrival_s)


@dataclass
class WorkloadStream:
    """A workload read chunk by chunk (``chunks()`` starts a fresh pass); requests are never all in memory.

    ``total`` is the request count when the source knows it (progress bar), else None.
    """

    name: str
    chunks: Callable[[], Iterator[Chunk]]
    source: str = ""
    meta: dict = field(default_factory=dict)
    total: int | None = None
    closed_loop_waiting: int = 0


def iter_chunks(workload: "Workload | WorkloadStream") -> Iterator[Chunk]:
    """The seam the simulator reads requests through (see the module docstring)."""
    if isinstance(workload, Workload):
        yield Chunk(workload.arrival_s, workload.prompt_tokens, workload.output_tokens, workload.prompt_key)
    else:
        yield from workload.chunks()


def split_train(workload: Workload, train_fraction: float) -> tuple[Workload | None, Workload]:
    """Split off the first part of a trace as history for learned classifiers.

    The training split is what a deployment would have observed before the experiment starts (its
    completed requests' lengths); the simulated part never overlaps it, so a fitted classifier never
    sees the outputs it is asked to predict.
    """
    if not 0.0 <= train_fraction < 1.0:
        raise TraceFormatError(f"workload.train_fraction={train_fraction} must be in [0, 1).")
    n_train = int(len(workload) * train_fraction)
    if n_train == 0:
        return None, workload
    if n_train >= len(workload):
        raise TraceFormatError("workload.train_fraction leaves no request to simulate; lower it.")
    return (workload.take(slice(0, n_train), workload.name + ":train"),
            workload.take(slice(n_train, None)))
