"""The part of a source that is simulated: a time window in trace seconds and a row cap.

Every source (streamed CSV, jsonl, generated arrivals) applies the same rule, so the same config selects
the same rows whatever the source: keep rows with start_s <= t < end_s (t in seconds since the source's
first timestamp), in time order, and stop after ``cap`` of them.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("balanceroute.workloads")


@dataclass(frozen=True)
class Window:
    """Rows with start_s <= t < end_s, at most ``cap`` of them (None: no cap)."""

    start_s: float = 0.0
    end_s: float = math.inf
    cap: int | None = None


@dataclass
class Rows:
    """Rows a source kept, in time order; ``t_s`` is in trace seconds since the source's first timestamp."""

    t_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    meta: dict = field(default_factory=dict)
    key: np.ndarray | None = None  # prompt keys (framework.workloads.keys), None when the source has none

    def __len__(self) -> int:
        return len(self.t_s)


def row_cap(max_requests: int | None, train_fraction: float) -> int | None:
    """Rows to read so that, after the runner's train split, at least max_requests remain to simulate.

    n = ceil(m / (1 - f)) + 1 gives n - floor(n f) >= n (1 - f) >= m + (1 - f) > m.
    """
    if max_requests is None:
        return None
    return math.ceil(max_requests / (1.0 - train_fraction)) + 1


def sort_if_needed(t: np.ndarray, *cols: np.ndarray, meta: dict, where: str) -> tuple[np.ndarray, ...]:
    """Stable-sort rows by time if they are not sorted yet, and record it in ``meta``.

    Published traces are sorted; an unsorted file is accepted (sorted stably, so equal timestamps keep
    their file order) rather than rejected, and the fact is recorded, never hidden.
    """
    d = np.flatnonzero(np.diff(t) < 0)
    if len(d) == 0:
        meta.setdefault("sorted_by_loader", False)
        return (t, *cols)
    meta["sorted_by_loader"] = True
    meta["first_unsorted_row"] = int(d[0]) + 1
    log.warning("%s: timestamps are not sorted (row %d goes back in time); sorted them stably.",
                where, int(d[0]) + 1)
    order = np.argsort(t, kind="stable")
    return (t[order], *(c[order] for c in cols))


def select(t: np.ndarray, prompt: np.ndarray, output: np.ndarray, window: Window, meta: dict,
           where: str, origin: float | None = None, key: np.ndarray | None = None) -> Rows:
    """Apply the window and cap to in-memory rows in any order.

    Times are taken relative to ``origin`` (default: the earliest timestamp, as for a trace file;
    generated arrivals pass 0, the start of the process).
    """
    t = np.asarray(t, dtype=np.float64)
    if len(t):
        t = t - (t.min() if origin is None else origin)
    k = np.full(len(t), -1, np.int64) if key is None else np.asarray(key, np.int64)
    t, prompt, output, k = sort_if_needed(t, prompt, output, k, meta=meta, where=where)
    lo = int(np.searchsorted(t, window.start_s, side="left"))
    hi = int(np.searchsorted(t, window.end_s, side="left"))
    if window.cap is not None:
        hi = min(hi, lo + window.cap)
    meta.update(rows_total=int(len(t)), span_total_s=float(t[-1]) if len(t) else 0.0)
    return Rows(t[lo:hi], prompt[lo:hi], output[lo:hi], meta, None if key is None else k[lo:hi])
