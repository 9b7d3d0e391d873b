"""The bounded deliberate hold shared by the pool routers (br0, brh, lp, bfio).

A router that chooses which waiting requests to admit can starve some of them; each one it passes over
(while a younger one was admitted, or while a slot stayed free, when FCFS would have admitted it)
counts one hold, and a request held ``max_hold_steps`` times is overdue and placed first.
"""
from __future__ import annotations

import numpy as np


class HoldCounter:
    """Per-request hold counts, indexed by request id and grown on demand."""

    def __init__(self, max_hold_steps: int, scope: int = 0) -> None:
        self.max_hold_steps = int(max_hold_steps)
        self.scope = int(scope)  # > 0: only the oldest `scope` candidates count holds
        self._held = np.zeros(0, np.int64)

    def overdue(self, ids: np.ndarray) -> np.ndarray:
        """Mask of the candidates already held max_hold_steps times."""
        if len(ids) == 0:
            return np.zeros(0, bool)
        self._grow(ids)
        return self._held[ids] >= self.max_hold_steps

    def _grow(self, ids: np.ndarray) -> None:
        need = int(ids.max()) + 1
        if need > len(self._held):
            grow = np.zeros(max(need, 2 * len(self._held)) - len(self._held), np.int64)
            self._held = np.concatenate((self._held, grow))

    def record(self, ids: np.ndarray, assign: np.ndarray, free_slots: int,
               arrival: np.ndarray | None = None) -> None:
        """Count a hold for each candidate left out that FCFS would have admitted.

        With ``arrival`` (the candidates' arrival times), a candidate bypassed by a younger one counts
        only if it arrived strictly earlier: requests that arrived together have no FCFS order among
        them (in a backlog, all at t = 0, choosing among them is no bypass).
        """
        adm = assign >= 0
        n_adm = int(adm.sum())
        if n_adm < min(len(ids), free_slots):
            held = ~adm
        elif n_adm:
            held = ~adm
            last = int(np.flatnonzero(adm)[-1])
            held[last:] = False  # only those older than the youngest admitted
            if arrival is not None:
                held &= np.asarray(arrival) < arrival[last]
        else:
            return
        if self.scope > 0:
            held[self.scope:] = False
        self._grow(ids)
        self._held[ids[held]] += 1
