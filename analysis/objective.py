"""The hindsight imbalance objective J, computed the same way by every analysis (DESIGN.md 2 and 5).

Request i starts decoding at step a_i with prompt p_i and output o_i. It is active on steps
k = a_i .. a_i + o_i - 1 with load l_i(k) = p_i + (k - a_i) (its KV context). Worker g's load is
s_g(k) = sum of l_i(k) over the active requests placed on g, and

    J = sum over steps k of ( G * max_g s_g(k) - sum_g s_g(k) ),

a step with nothing active contributing 0. "Total compute" is G * sum_k max_g s_g(k): every worker is
padded to the envelope at every step, so J / total compute is the share of compute lost to imbalance.

The per-step loads come from difference arrays: the load of an active request is (p_i - a_i) + k, so
per worker two cumulative sums over the step axis (of the constants p_i - a_i and of the counts) give
s_g(k) = C_g(k) + N_g(k) * k exactly in int64, with no loop over requests or steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.errors import PlacementError, TraceFormatError


@dataclass(frozen=True)
class StepSeries:
    """Per-step loads of an assignment over steps k0 .. k0 + K - 1 (all steps between the first
    start and the last finish, idle ones included with zero load)."""

    k0: int
    loads: np.ndarray  # (K, G) int64, s_g(k)
    counts: np.ndarray  # (K, G) int64, active requests per worker

    @property
    def steps(self) -> np.ndarray:
        return np.arange(self.k0, self.k0 + self.loads.shape[0], dtype=np.int64)

    @property
    def envelope(self) -> np.ndarray:
        """max_g s_g(k) per step."""
        return self.loads.max(axis=1) if self.loads.size else np.zeros(0, np.int64)

    @property
    def total_load(self) -> np.ndarray:
        """S_k = sum_g s_g(k) per step (independent of the assignment)."""
        return self.loads.sum(axis=1)

    @property
    def imbalance(self) -> np.ndarray:
        """I_k = G * max_g s_g(k) - S_k per step (0 on idle steps)."""
        return self.loads.shape[1] * self.envelope - self.total_load

    @property
    def objective(self) -> int:
        return int(self.imbalance.sum())

    @property
    def total_compute(self) -> int:
        return int(self.loads.shape[1] * self.envelope.sum())


def as_requests(start, prompt, output, *, where: str = "instance") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert the three request columns to int64 arrays (a_i >= 0, p_i >= 0, o_i >= 1)."""
    cols = []
    for name, col, lo in (("start step", start, 0), ("prompt_tokens", prompt, 0), ("output_tokens", output, 1)):
        arr = np.asarray(col)
        if arr.ndim != 1:
            raise TraceFormatError(f"{where}: the {name} column must be one-dimensional, got shape {arr.shape}.")
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise TraceFormatError(f"{where}: {name} of row {i} is {arr[i]!r}, not a whole number.")
        elif arr.dtype.kind not in "iub" and len(arr):
            raise TraceFormatError(f"{where}: the {name} column holds {arr.dtype} values, not integers.")
        arr = arr.astype(np.int64)
        if len(arr) and arr.min() < lo:
            i = int(np.flatnonzero(arr < lo)[0])
            raise TraceFormatError(f"{where}: {name} of row {i} is {int(arr[i])}; it must be at least {lo}.")
        cols.append(arr)
    a, p, o = cols
    if not (len(a) == len(p) == len(o)):
        raise TraceFormatError(f"{where}: the start, prompt and output columns differ in length "
                               f"({len(a)}, {len(p)}, {len(o)}).")
    return a, p, o


def check_assignment(worker, n: int, workers: int, *, where: str = "assignment") -> np.ndarray:
    """An int64 worker index per request, each in 0..G-1."""
    if int(workers) < 1:
        raise PlacementError(f"{where}: workers={workers}; need at least one worker.")
    w = np.asarray(worker)
    if w.shape != (n,):
        raise PlacementError(f"{where}: expected one worker per request ({n}), got shape {w.shape}.")
    if n and w.dtype.kind not in "iu":
        if w.dtype.kind != "f" or not np.all(w == np.round(w)):
            raise PlacementError(f"{where}: worker indices must be integers, got {w.dtype}.")
    w = w.astype(np.int64)
    if n and (w.min() < 0 or w.max() >= workers):
        i = int(np.flatnonzero((w < 0) | (w >= workers))[0])
        raise PlacementError(f"{where}: request {i} is on worker {int(w[i])}; workers are 0..{workers - 1}.")
    return w


def step_series(start, prompt, output, worker, workers: int, *, validate: bool = True) -> StepSeries:
    """Per-step, per-worker loads and counts of an assignment (difference arrays, int64)."""
    if validate:
        a, p, o = as_requests(start, prompt, output)
        w = check_assignment(worker, len(a), workers)
    else:
        a, p, o, w = start, prompt, output, worker
    G = int(workers)
    if len(a) == 0:
        return StepSeries(0, np.zeros((0, G), np.int64), np.zeros((0, G), np.int64))
    k0 = int(a.min())
    K = int((a + o).max()) - k0
    lo = (a - k0) * G + w
    hi = (a + o - k0) * G + w
    size = (K + 1) * G
    const = p - a  # load of an active request is const + k
    dc = np.bincount(lo, weights=const, minlength=size) - np.bincount(hi, weights=const, minlength=size)
    dn = np.bincount(lo, minlength=size) - np.bincount(hi, minlength=size)
    # weights go through float64: exact while |sum| < 2**53, checked here
    if np.abs(const).sum() >= 2 ** 52:
        raise TraceFormatError("instance: loads too large for exact accumulation (sum above 2**52).")
    C = np.cumsum(np.rint(dc).astype(np.int64).reshape(K + 1, G)[:K], axis=0)
    N = np.cumsum(dn.reshape(K + 1, G)[:K], axis=0)
    k = np.arange(k0, k0 + K, dtype=np.int64)[:, None]
    return StepSeries(k0, C + N * k, N)


def objective(start, prompt, output, worker, workers: int) -> int:
    """J of an assignment (see the module docstring)."""
    return step_series(start, prompt, output, worker, workers).objective


def total_load_sum(prompt, output) -> int:
    """sum_k S_k = sum_i sum_{d<o_i} (p_i + d): the constant part of J, independent of the assignment."""
    p = np.asarray(prompt, np.int64)
    o = np.asarray(output, np.int64)
    return int((o * p + o * (o - 1) // 2).sum())
