"""Which ranks the router may place on: a rank that failed is down until a probe of its endpoint passes.

Probes are GET /v1/models, which costs the deployment nothing and leaves its token counters alone. The
wait between probes of a rank that keeps failing doubles, up to 8x backend.probe_interval_s. With one
endpoint for every rank (header pinning), a probe can only say the server answers, so a rank comes back
on trial: its next failure takes it down again.
"""
from __future__ import annotations

import numpy as np


class RankHealth:
    def __init__(self, workers: int, probe_interval_s: float) -> None:
        self.down = np.zeros(workers, bool)
        self.interval = float(probe_interval_s)
        self._backoff = np.ones(workers)
        self._next_probe = np.zeros(workers)
        self.marked_down = 0  # times any rank went down (summary: ranks_marked_down)
        self.all_down_since: float | None = None

    def mark_down(self, g: int, now: float) -> bool:
        """True if the rank was up (the caller then re-routes what waits on it)."""
        if self.down[g]:
            return False
        self.down[g] = True
        self.marked_down += 1
        self._next_probe[g] = now + self.interval * self._backoff[g]
        self._backoff[g] = min(self._backoff[g] * 2, 8.0)
        self._update(now)
        return True

    def due(self, now: float) -> list[int]:
        return [int(g) for g in np.flatnonzero(self.down & (self._next_probe <= now))]

    def probed(self, g: int, ok: bool, now: float) -> None:
        if ok:
            self.down[g] = False
        else:
            self._next_probe[g] = now + self.interval * self._backoff[g]
            self._backoff[g] = min(self._backoff[g] * 2, 8.0)
        self._update(now)

    def _update(self, now: float) -> None:
        if self.down.all():
            if self.all_down_since is None:
                self.all_down_since = now
        else:
            self.all_down_since = None

    @property
    def up_ranks(self) -> np.ndarray:
        return np.flatnonzero(~self.down)
