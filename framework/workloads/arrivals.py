"""Synthetic arrival processes for workloads that have lengths but no timestamps.

- poisson: exponential gaps, rate ``rate_rps`` (gap CV 1).
- gamma: Gamma-distributed gaps with mean 1/rate and coefficient of variation ``burst_cv``
  (shape 1/cv^2); cv > 1 gives bursts separated by lulls, the shape of the Azure code trace (CV ~13).
- varying: non-homogeneous Poisson with rate rate_rps * (1 + amplitude * sin(2 pi t / period_s)),
  drawn by thinning (Lewis & Shedler): candidates at the peak rate, each kept with probability
  rate(t) / peak. Its mean rate over whole periods is rate_rps.
- backlog: every request at t = 0, the saturated regime of both papers (a central pool that is always
  backlogged until it drains); rate_rps plays no role.
- closed_loop: no times at all: the simulator releases the next request whenever fewer than
  workload.closed_loop_waiting wait (in the router's pool or a worker's local queue), at the step it
  does so, until every request is released (a backlog that stays the same depth); placeholders of 0
  here.
All are vectorised and fully determined by the generator passed in.
"""
from __future__ import annotations

import math

import numpy as np

from framework.errors import ConfigError, did_you_mean

ARRIVALS = ("poisson", "gamma", "varying", "backlog", "closed_loop")


def arrival_times(process: str, n: int, rate_rps: float, rng: np.random.Generator, *,
                  burst_cv: float = 1.0, period_s: float = 60.0, amplitude: float = 0.0) -> np.ndarray:
    """``n`` non-decreasing arrival times (seconds; after 0, or all 0 for a backlog)."""
    if process in ("backlog", "closed_loop"):
        return np.zeros(n)
    if process == "poisson":
        return np.cumsum(rng.exponential(1.0 / rate_rps, n))
    if process == "gamma":
        shape = 1.0 / burst_cv**2
        return np.cumsum(rng.gamma(shape, 1.0 / (rate_rps * shape), n))
    if process == "varying":
        return _thinned_sinusoid(n, rate_rps, period_s, amplitude, rng)
    raise ConfigError(f"workload.arrival={process!r} is not an arrival process."
                      + did_you_mean(process, ARRIVALS))


def _thinned_sinusoid(n: int, rate: float, period: float, amp: float, rng: np.random.Generator) -> np.ndarray:
    """Thinning in vectorised batches until ``n`` arrivals are accepted."""
    peak = rate * (1.0 + amp)
    out: list[np.ndarray] = []
    have, t_last = 0, 0.0
    while have < n:
        m = int(math.ceil((n - have) * (1.0 + amp) * 1.1)) + 64
        cand = t_last + np.cumsum(rng.exponential(1.0 / peak, m))
        accept = rng.random(m) * peak < rate * (1.0 + amp * np.sin(2.0 * math.pi * cand / period))
        kept = cand[accept]
        out.append(kept)
        have += len(kept)
        t_last = float(cand[-1])
    return np.concatenate(out)[:n]
