"""The router's own accounting of every rank, from what it sent and what it streamed back.

A request is, at the router: pending (not yet arrived), waiting (in the router's pool), sent (at its
rank, no token yet: queued or in prefill there), running (streaming), done or failed. Per rank the
accounting keeps what the simulator's view shows (DESIGN.md 4): s_g = sum of prompt + tokens streamed
over running requests (the load of the rank's next step, as in the simulator), n_g, and the sent
requests, of which the first B_g - n_g (FCFS, within KV room) count as prefilling and the rest as
queued, as the rank's own admission would have them. ``snapshot`` packs this into the fields that
framework.view.ClusterView reads, so policies run unchanged.
"""
from __future__ import annotations


import numpy as np

from framework.cluster import ClusterConfig
from framework.state import ClusterState
from framework.view import ClusterView
from framework.workload import Workload

PENDING, WAITING, SENT, RUNNING, DONE, FAILED = range(6)
STATUS_NAMES = ("pending", "waiting", "sent", "running", "done", "failed")


class LiveState:
    """Per-request and per-rank accounting; every transition keeps s_g and n_g exact."""

    def __init__(self, workload: Workload, cluster: ClusterConfig) -> None:
        self.N = N = len(workload)
        self.G = G = int(cluster.workers)
        self.prompt = workload.prompt_tokens
        self.arrival = workload.arrival_s
        self.key = workload.prompt_key  # the client's prompt keys, when it knows them (else None)
        self.max_tokens = workload.output_tokens  # what is asked for (max_tokens); never shown to policies
        self.B = np.full(G, int(cluster.max_running), np.int64)
        self.C = np.full(G, int(cluster.kv_capacity_tokens), np.int64)
        self.C_admit = self.C - np.floor(cluster.kv_watermark * self.C).astype(np.int64)
        self.status = np.full(N, PENDING, np.int8)
        self.worker = np.full(N, -1, np.int64)
        self.decoded = np.zeros(N, np.int64)
        self.attempts = np.zeros(N, np.int64)
        self.placed_tick = np.full(N, -1, np.int64)
        self.admit_tick = np.full(N, -1, np.int64)
        self.first_token_s = np.full(N, np.nan)
        self.finish_s = np.full(N, np.nan)
        self.s = np.zeros(G, np.int64)
        self.n = np.zeros(G, np.int64)
        self.sent: list[dict[int, None]] = [dict() for _ in range(G)]  # FCFS by send order
        self.sent_tokens = np.zeros(G, np.int64)
        self.running: list[set[int]] = [set() for _ in range(G)]
        self._pool: set[int] = set()
        self._pool_arr: np.ndarray | None = np.empty(0, np.int64)
        # per-tick counters for the steps table (reset by take_interval)
        self.tick_tokens = np.zeros(G, np.int64)
        self.tick_prefill = np.zeros(G, np.int64)
        self.attempt_prompt_tokens = np.zeros(G, np.int64)  # prompts of attempts that reached a token
        self.generated_tokens = np.zeros(G, np.int64)

    # --- transitions ------------------------------------------------------------------------
    def arrive(self, ids: np.ndarray) -> None:
        self.status[ids] = WAITING
        self._pool.update(ids.tolist())
        self._pool_arr = None

    def send(self, r: int, g: int, tick: int) -> None:
        assert self.status[r] == WAITING, f"request {r} sent while {STATUS_NAMES[self.status[r]]}"
        self._pool.discard(r)
        self._pool_arr = None
        self.status[r] = SENT
        self.worker[r] = g
        self.placed_tick[r] = tick
        self.attempts[r] += 1
        self.decoded[r] = 0
        self.sent[g][r] = None
        self.sent_tokens[g] += self.prompt[r]

    def tokens(self, r: int, total: int, now_s: float, tick: int) -> None:
        """The stream of r has delivered ``total`` tokens so far (the first call is its first token)."""
        g = int(self.worker[r])
        k = total - int(self.decoded[r])
        if k <= 0:
            return
        if self.status[r] == SENT:
            del self.sent[g][r]
            self.sent_tokens[g] -= self.prompt[r]
            self.status[r] = RUNNING
            self.running[g].add(r)
            self.n[g] += 1
            self.s[g] += self.prompt[r]
            self.tick_prefill[g] += self.prompt[r]
            self.attempt_prompt_tokens[g] += self.prompt[r]
            self.first_token_s[r] = now_s
            self.admit_tick[r] = tick
        self.decoded[r] = total
        self.s[g] += k
        self.tick_tokens[g] += k
        self.generated_tokens[g] += k

    def finish(self, r: int, now_s: float) -> None:
        g = int(self.worker[r])
        self._leave_rank(r, g)
        self.status[r] = DONE
        self.finish_s[r] = now_s

    def requeue(self, r: int) -> None:
        """Back to the router's pool (its rank went down or its stream broke): it will be placed again."""
        g = int(self.worker[r])
        if g >= 0:
            self._leave_rank(r, g)
        self.status[r] = WAITING
        self.first_token_s[r] = np.nan
        self.admit_tick[r] = -1
        self._pool.add(r)
        self._pool_arr = None

    def fail(self, r: int) -> None:
        g = int(self.worker[r])
        if self.status[r] in (SENT, RUNNING):
            self._leave_rank(r, g)
        self._pool.discard(r)
        self._pool_arr = None
        self.status[r] = FAILED

    def _leave_rank(self, r: int, g: int) -> None:
        if self.status[r] == SENT:
            del self.sent[g][r]
            self.sent_tokens[g] -= self.prompt[r]
        elif self.status[r] == RUNNING:
            self.running[g].discard(r)
            self.n[g] -= 1
            self.s[g] -= self.prompt[r] + self.decoded[r]

    # --- reads -------------------------------------------------------------------------------
    @property
    def pool(self) -> np.ndarray:
        if self._pool_arr is None:
            self._pool_arr = np.sort(np.fromiter(self._pool, np.int64, len(self._pool)))
        return self._pool_arr

    @property
    def finished(self) -> bool:
        return bool(np.all(self.status >= DONE))

    def sent_on(self, g: int) -> list[int]:
        return list(self.sent[g])

    def take_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Tokens streamed and prompt tokens that reached their first token, per rank, since the last call."""
        out = self.tick_tokens.copy(), self.tick_prefill.copy()
        self.tick_tokens[:] = 0
        self.tick_prefill[:] = 0
        return out

    def split_sent(self, down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(prefilling count, their reserved tokens) per rank: the first sent requests the rank can hold."""
        npf = np.zeros(self.G, np.int64)
        res = np.zeros(self.G, np.int64)
        for g in range(self.G):
            room_slots = int(self.B[g] - self.n[g])
            room_kv = int(self.C_admit[g] - self.s[g])
            for r in self.sent[g]:
                if room_slots <= 0 or self.prompt[r] > room_kv:
                    break
                room_slots -= 1
                room_kv -= int(self.prompt[r])
                npf[g] += 1
                res[g] += self.prompt[r]
        return npf, res

    def snapshot(self, tick: int, now_s: float, down: np.ndarray) -> ClusterState:
        """The state policies decide on; a rank marked down shows no free slot and no free KV."""
        npf, res = self.split_sent(down)
        qlen = np.array([len(d) for d in self.sent], np.int64) - npf
        ids = np.fromiter((r for g in range(self.G) for r in self.running[g]), np.int64, int(self.n.sum()))
        s, n = self.s.copy(), self.n.copy()
        queued_tokens = self.sent_tokens - res
        free_slots = np.maximum(self.B - n - npf - qlen, 0)
        free_kv = np.maximum(self.C_admit - s - res - queued_tokens, 0)
        free_slots[down] = 0
        free_kv[down] = 0
        pool = np.asarray(self.pool, np.int64)
        return ClusterState(
            step=int(tick), now_s=float(now_s), loads=s, running=n, prefilling=npf, queued=qlen,
            committed_tokens=res + queued_tokens, kv_used=s + res, max_running=self.B.copy(),
            kv_capacity=self.C.copy(), free_slots=free_slots, free_kv=free_kv, waiting_ids=pool.copy(),
            waiting_arrival_s=self.arrival[pool], waiting_prompt=self.prompt[pool], running_ids=ids,
            running_worker=self.worker[ids], running_prompt=self.prompt[ids],
            running_decoded=self.decoded[ids].astype(np.int64),
            waiting_key=None if self.key is None else self.key[pool],
            running_key=None if self.key is None else self.key[ids])

    def view(self, tick: int, now_s: float, down: np.ndarray) -> ClusterView:
        """The same ClusterView policies read in simulation, over this accounting."""
        return ClusterView(self.snapshot(tick, now_s, down))
