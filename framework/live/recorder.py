"""What the router measured, as columns: one sample per tick and rank, and optionally every token.

A sample is taken at the start of each tick while anything is waiting, sent or running (the simulator
records no step while the cluster is idle either); its duration, and the tokens and first-token prompts
streamed during it, are known at the next tick. compute_s is the cluster preset's estimate of each
rank's busy share of the interval, duration * t_g / T with t_g = c0 + c_seq n_g + c_kv s_g + c_pf P_g
and T = max_g t_g + c_sync, since a client cannot see a rank's compute time; idle_fraction of a live run
is therefore model-based (summary field idle_fraction_source).
"""
from __future__ import annotations

from array import array

import numpy as np

from framework.cluster import CostConfig


class Recorder:
    def __init__(self, workers: int, cost: CostConfig, record_tokens: bool) -> None:
        self.G = workers
        self.cost = cost
        self.t: list[float] = []
        self.duration: list[float] = []
        self.load: list[np.ndarray] = []
        self.running: list[np.ndarray] = []
        self.tokens: list[np.ndarray] = []
        self.prefill: list[np.ndarray] = []
        self.server: list[np.ndarray] = []  # (3, G): running, waiting, kv_usage as last scraped
        self._pending: tuple | None = None
        self.record_tokens = record_tokens
        self.tok_t, self.tok_worker, self.tok_request, self.tok_total = array("d"), array("i"), array("q"), array("i")

    def open(self, t: float, load: np.ndarray, running: np.ndarray, server: np.ndarray) -> None:
        self._pending = (t, load.copy(), running.copy(), server.copy())

    def close(self, t: float, tokens: np.ndarray, prefill: np.ndarray) -> None:
        """End the open sample at time t with what streamed during it."""
        if self._pending is None:
            return
        t0, load, running, server = self._pending
        self._pending = None
        self.t.append(t0)
        self.duration.append(max(t - t0, 0.0))
        self.load.append(load)
        self.running.append(running)
        self.tokens.append(tokens)
        self.prefill.append(prefill)
        self.server.append(server)

    def token(self, t: float, worker: int, request: int, total: int) -> None:
        if self.record_tokens:
            self.tok_t.append(t)
            self.tok_worker.append(worker)
            self.tok_request.append(request)
            self.tok_total.append(total)

    # --- columns ------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        K, G = len(self.t), self.G
        stack = (lambda xs, dt: np.array(xs, dt).reshape(K, G))
        load, running = stack(self.load, np.int64), stack(self.running, np.int64)
        tokens, prefill = stack(self.tokens, np.int64), stack(self.prefill, np.int64)
        dur = np.array(self.duration, np.float64)
        steps_in = np.maximum(tokens.sum(1) / np.maximum(running.sum(1), 1), 1.0)  # decode steps per sample
        c = self.cost
        tg = c.c0 + c.c_seq * running + c.c_kv * load + c.c_pf * prefill / steps_in[:, None]
        T = tg.max(axis=1) + c.c_sync if K else np.empty(0)
        compute = dur[:, None] * tg / T[:, None] if K else np.empty((0, G))
        server = np.array(self.server, np.float64).reshape(K, 3, G)
        return {"t": np.array(self.t, np.float64), "duration": dur, "load": load, "running": running,
                "tokens": tokens, "prefill": prefill, "compute": compute, "server": server}

    def token_table(self) -> dict[str, np.ndarray]:
        return {"t_s": np.frombuffer(self.tok_t, np.float64), "worker": np.frombuffer(self.tok_worker, np.int32),
                "request_id": np.frombuffer(self.tok_request, np.int64),
                "tokens_so_far": np.frombuffer(self.tok_total, np.int32)}
