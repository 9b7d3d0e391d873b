"""The emulator's G ranks in lockstep: the simulator's step model (DESIGN.md 2, 4) run in real time.

Each step: every rank admits from its FCFS queue while a slot and KV room are free, runs chunked
prefill within its token budget, and the step lasts T = max_g t_g + c_sync (an idle rank runs a dummy
step t_g = c0 while any rank is busy), scaled by ``time_scale`` onto the wall clock. At the step's end
every running request (those whose prefill completed this step included) emits one token; a rank over
its KV capacity preempts its newest requests back to the head of its queue. With nothing anywhere the
loop sleeps until a request arrives, as the simulator jumps to the next arrival.

Step ends are kept on an absolute schedule, so the mean step time stays right even when the event loop
is late for one of them (a test on a loaded machine still sees the preset's throughput).
"""
from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field

from framework.cluster import ClusterConfig

WAITING, PREFILL, RUNNING, FINISHED, CANCELLED = range(5)


@dataclass(eq=False)
class EmuRequest:
    """One request inside the emulator; ``generated`` grows by one per step and ``wake`` fires."""

    rid: int
    rank: int
    prompt: int
    max_tokens: int
    generated: int = 0
    state: int = WAITING
    pending_prefill: int = 0
    need: int = 0
    arrived_s: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.state in (FINISHED, CANCELLED)


@dataclass
class RankCounters:
    """Cumulative per-engine figures served on /metrics (vllm:prompt_tokens_total, ...)."""

    prompt_tokens: int = 0
    generation_tokens: int = 0
    requests_finished: int = 0
    preemptions: int = 0


class Rank:
    def __init__(self) -> None:
        self.waiting: deque[EmuRequest] = deque()
        self.prefill: deque[EmuRequest] = deque()
        self.running: list[EmuRequest] = []
        self.counters = RankCounters()

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.prefill or self.running)

    def load(self) -> int:
        """s_g: context tokens of running requests (prompt + tokens produced so far)."""
        return sum(r.prompt + r.generated for r in self.running)

    def reserved(self) -> int:
        return sum(r.need for r in self.prefill)


class Engine:
    """G lockstep ranks with one cost preset; ``submit`` from HTTP handlers, ``run`` as a task."""

    def __init__(self, workers: int, cluster: ClusterConfig, time_scale: float = 1.0) -> None:
        cluster.validate()
        self.G = workers
        self.cluster = cluster
        self.cost = cluster.cost
        self.time_scale = float(time_scale)
        self.B = int(cluster.max_running)
        self.C = int(cluster.kv_capacity_tokens)
        self.C_admit = self.C - int(math.floor(cluster.kv_watermark * self.C))
        self.chunk = int(cluster.prefill_chunk_tokens) or None
        self.ranks = [Rank() for _ in range(workers)]
        self.steps = 0
        self._ids = itertools.count()
        self._wake = asyncio.Event()

    # --- requests ---------------------------------------------------------------------------
    def submit(self, rank: int, prompt: int, max_tokens: int) -> EmuRequest:
        req = EmuRequest(next(self._ids), rank, int(prompt), int(max_tokens), arrived_s=time.monotonic())
        self.ranks[rank].waiting.append(req)
        self._wake.set()
        return req

    def cancel(self, req: EmuRequest) -> None:
        """The client went away: free whatever the request held (vLLM aborts it likewise)."""
        if req.done:
            return
        rk = self.ranks[req.rank]
        for q in (rk.waiting, rk.prefill):
            if req in q:
                q.remove(req)
        if req in rk.running:
            rk.running.remove(req)
        req.state = CANCELLED
        req.wake.set()

    # --- the step ---------------------------------------------------------------------------
    def _admit(self, rk: Rank) -> None:
        room_slots = self.B - len(rk.running) - len(rk.prefill)
        room_kv = self.C_admit - rk.load() - rk.reserved()
        while rk.waiting and room_slots > 0:
            r = rk.waiting[0]
            need = r.prompt + r.generated
            if need > room_kv:
                break
            rk.waiting.popleft()
            room_slots -= 1
            room_kv -= need
            r.state, r.need, r.pending_prefill = PREFILL, need, need
            rk.prefill.append(r)

    def _prefill(self, rk: Rank) -> int:
        budget = self.chunk if self.chunk is not None else 1 << 62
        used = 0
        while rk.prefill and budget > 0:
            r = rk.prefill[0]
            take = min(r.pending_prefill, budget)
            r.pending_prefill -= take
            budget -= take
            used += take
            if r.pending_prefill == 0:
                rk.prefill.popleft()
                r.state = RUNNING
                r.need = 0
                if r.generated == 0:
                    rk.counters.prompt_tokens += r.prompt
                rk.running.append(r)
        return used

    def step_time(self, n: list[int], s: list[int], P: list[int]) -> float:
        """T = max_g (c0 + c_seq n_g + c_kv s_g + c_pf P_g) + c_sync, in workload seconds."""
        c = self.cost
        return max(c.c0 + c.c_seq * n[g] + c.c_kv * s[g] + c.c_pf * P[g] for g in range(self.G)) + c.c_sync

    def _emit(self, rk: Rank) -> None:
        still = []
        for r in rk.running:
            r.generated += 1
            rk.counters.generation_tokens += 1
            if r.generated >= r.max_tokens:
                r.state = FINISHED
                rk.counters.requests_finished += 1
            else:
                still.append(r)
            r.wake.set()
        rk.running = still

    def _preempt(self, rk: Rank) -> None:
        while rk.running and rk.load() + rk.reserved() > self.C:
            r = rk.running.pop()  # the newest (vLLM pops the tail); it recomputes prompt + generated
            r.state = WAITING
            rk.waiting.appendleft(r)
            rk.counters.preemptions += 1

    async def run(self) -> None:
        """Step forever; sleep while idle."""
        last_end = None
        while True:
            if not any(rk.busy for rk in self.ranks):
                self._wake.clear()
                await self._wake.wait()
                last_end = None
            for rk in self.ranks:
                if rk.waiting:
                    self._admit(rk)
            P = [self._prefill(rk) if rk.prefill else 0 for rk in self.ranks]
            n = [len(rk.running) for rk in self.ranks]
            s = [rk.load() for rk in self.ranks]
            T = self.step_time(n, s, P) * self.time_scale
            now = time.monotonic()
            if last_end is None or now - last_end > 10 * T:
                last_end = now  # idle before, or hopelessly late: restart the schedule here
            last_end += T
            delay = last_end - time.monotonic()
            await asyncio.sleep(max(delay, 0.0))
            for rk in self.ranks:
                if rk.running:
                    self._emit(rk)
                    self._preempt(rk)
            self.steps += 1

    # --- what /metrics reports ----------------------------------------------------------------
    def gauges(self, g: int) -> dict[str, float]:
        rk = self.ranks[g]
        return {"running": len(rk.running) + len(rk.prefill), "waiting": len(rk.waiting),
                "kv_usage": (rk.load() + rk.reserved()) / self.C}
