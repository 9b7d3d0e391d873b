"""The live router: replays a workload in real time against a deployment with any registered policy.

Every tick (backend.tick_s of workload time, by default one nominal step c0 + c_sync) it lets the
arrivals due join its pool, samples its per-rank accounting, and, when something waits, asks the policy
for placements over the same ClusterView a simulation builds (framework.live.state). Dispatch policies
place every arrival at once (the rank queues it); pool policies admit within free slots and KV. Each
placement becomes one streamed request, pinned to its rank (framework.live.client).

Faults: a rank whose request is refused, times out before its first token or drops a stream is marked
down (framework.live.health); the requests still queued on it go back to the pool and are placed again;
a broken stream is retried from scratch, at most backend.max_attempts failed tries, then the request is
failed. A dispatch policy that places on a down rank is redirected to the least-loaded rank that is up
(summary: redirects). Every request ends completed or failed, never lost.
"""
from __future__ import annotations

import asyncio
import time
from bisect import bisect_right

import aiohttp
import numpy as np

from framework.cluster import CostConfig
from framework.errors import ConfigError, PlacementError
from framework.live.client import (Rejected, RankUnavailable, StreamBroken, Target, Watch, completion_body,
                                   stream_completion)
from framework.live.config import LiveBackendConfig
from framework.live.health import RankHealth
from framework.live.metrics import scrape_ranks
from framework.live.recorder import Recorder
from framework.live.state import DONE, RUNNING, SENT, WAITING, LiveState
from framework.policy import DISPATCH, Policy
from framework.view import ClusterView
from framework.workload import Workload


def check_placements(pl, view: ClusterView, state: LiveState, policy: Policy) -> tuple[list[int], list[int]]:
    """The simulator's rules for a decision (framework.simulator._apply), with the same messages."""
    where = f"Policy {policy.name!r} at tick {view.step} (t={view.now_s:.3f}s)"
    try:
        req = np.asarray(pl[0], dtype=np.int64).reshape(-1)
        wrk = np.asarray(pl[1], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, IndexError) as e:
        raise PlacementError(f"{where} returned {type(pl).__name__}, not Placements(requests, workers).") from e
    if len(req) != len(wrk):
        raise PlacementError(f"{where} returned {len(req)} requests but {len(wrk)} workers.")
    pool = view.waiting_ids
    if policy.family == DISPATCH and len(req) != len(pool):
        raise PlacementError(f"{where} is a dispatch policy and must place every new request; it left "
                             f"{len(pool) - len(req)} unplaced.")
    if len(req) == 0:
        return [], []
    if not np.isin(req, pool).all():
        bad = int(req[~np.isin(req, pool)][0])
        raise PlacementError(f"{where} placed request {bad}, which is not waiting at the router.")
    if len(np.unique(req)) != len(req):
        raise PlacementError(f"{where} placed a request twice in one decision.")
    if wrk.min() < 0 or wrk.max() >= state.G:
        raise PlacementError(f"{where} chose worker {int(wrk[(wrk < 0) | (wrk >= state.G)][0])}; workers "
                             f"are 0..{state.G - 1}.")
    if policy.family != DISPATCH:
        cnt = np.bincount(wrk, minlength=state.G)
        tok = np.bincount(wrk, weights=state.prompt[req], minlength=state.G)
        for what, used, free in (("requests", cnt, view.free_slots), ("prompt tokens", tok, view.free_kv)):
            over = np.flatnonzero(used > free)
            if len(over):
                g = int(over[0])
                raise PlacementError(f"{where} placed {int(used[g])} {what} on worker {g}, which has room "
                                     f"for {int(free[g])}. Respect view.free_slots and view.free_kv.")
    return req.tolist(), wrk.tolist()


class LiveRouter:
    """One run: ``await router.run()``; then read state, recorder and the counters below."""

    def __init__(self, workload: Workload, state: LiveState, policy: Policy, cfg: LiveBackendConfig,
                 cost: CostConfig, tick_s: float, seed: int) -> None:
        self.workload, self.state, self.policy, self.cfg, self.cost = workload, state, policy, cfg, cost
        self.G = state.G
        self.tick_s = tick_s
        self.seed = seed
        self.scale = cfg.time_scale
        self.targets = [Target(cfg.endpoint(g), g, cfg.pin_mode) for g in range(self.G)]
        self.health = RankHealth(self.G, cfg.probe_interval_s)
        self.tasks: dict[int, asyncio.Task] = {}
        self.watches: dict[int, Watch] = {}
        self.errors = np.zeros(len(workload), np.int64)
        self.retries = self.reroutes = self.redirects = self.failures = 0
        self.first_error: str | None = None
        self.fatal: Exception | None = None
        self.decision_ns: list[int] = []
        self.finished_since: list[int] = []
        self.server_now = np.full((3, self.G), np.nan)
        self.counters_start: dict[int, dict[str, float]] = {}
        self.counters_end: dict[int, dict[str, float]] = {}
        self.model = cfg.model or ""
        self.max_model_len: int | None = None
        self.tick = 0
        self.wall_s = 0.0

    # --- clock ------------------------------------------------------------------------------
    def now(self) -> float:
        """Workload seconds since the run started (the first arrival is at 0)."""
        return (time.monotonic() - self.t0) / self.scale

    def _note(self, e: Exception) -> None:
        if self.first_error is None:
            self.first_error = str(e)

    # --- setup -------------------------------------------------------------------------------
    async def _preflight(self) -> None:
        """Find the model and its length limit, the deployment's engines and their start counters."""
        urls = sorted({t.url for t in self.targets})
        reached = 0
        for url in urls:
            try:
                async with asyncio.timeout(self.cfg.connect_timeout_s):
                    async with self.session.get(f"{url}/v1/models") as resp:
                        data = (await resp.json(content_type=None)).get("data") or [{}]
                reached += 1
                self.model = self.model or str(data[0].get("id", ""))
                if data[0].get("max_model_len"):
                    self.max_model_len = int(data[0]["max_model_len"])
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, AttributeError) as e:
                self._note(RankUnavailable(f"{url}: {type(e).__name__}: {e}"))
                for t in self.targets:
                    if t.url == url:
                        self.health.mark_down(t.rank, time.monotonic())
        if not reached:
            raise ConfigError(f"No endpoint of the deployment answers GET /v1/models ({self.first_error}). "
                              "Start the server(s) or fix backend.url / backend.urls.")
        need = self.workload.prompt_tokens + self.workload.output_tokens
        if self.max_model_len is not None and need.max() > self.max_model_len:
            i = int(np.argmax(need))
            raise ConfigError(f"Request {i} needs {int(need[i])} tokens (prompt + output) but the deployment's "
                              f"max_model_len is {self.max_model_len}; filter the workload or raise "
                              "--max-model-len.")
        if self.cfg.scrape_metrics:
            self.counters_start = await scrape_ranks(self.session, [t.url for t in self.targets],
                                                     self.cfg.pin_mode != "endpoint", self.cfg.connect_timeout_s)
            engines = len(self.counters_start)
            if self.cfg.pin_mode != "endpoint" and engines and engines != self.G:
                raise ConfigError(f"The deployment's /metrics shows {engines} engine(s) but cluster.workers="
                                  f"{self.G}; set cluster.workers={engines}.")

    # --- placing and streaming ------------------------------------------------------------------
    def _send(self, r: int, g: int) -> None:
        self.state.send(r, g, self.tick)
        self.tasks[r] = asyncio.create_task(self._attempt(r, g, int(self.state.attempts[r])))

    def _prompt_ids(self, r: int) -> list[int]:
        rng = np.random.default_rng([self.seed, r])
        return rng.integers(self.cfg.token_id_low, self.cfg.token_id_high, int(self.state.prompt[r])).tolist()

    async def _attempt(self, r: int, g: int, a: int) -> None:
        st = self.state
        live = lambda: st.attempts[r] == a and st.worker[r] == g and st.status[r] in (SENT, RUNNING)  # noqa: E731

        def on_tokens(total: int) -> None:
            if live():
                now = self.now()
                st.tokens(r, total, now, self.tick)
                self.recorder.token(now, g, r, total)

        want = int(st.max_tokens[r])
        watch = self.watches[r] = Watch(time.monotonic())
        try:
            body = completion_body(self.model, self._prompt_ids(r), want)
            try:
                got = await stream_completion(self.session, self.targets[g], body, self.cfg, on_tokens, watch)
            except asyncio.CancelledError:
                if not watch.timed_out:
                    raise
                wait = self.cfg.token_timeout_s if watch.got else self.cfg.first_token_timeout_s
                err = StreamBroken if watch.got else RankUnavailable
                raise err(f"rank {g}: no data for {wait:g} s after {watch.got} token(s) (request {r})") from None
            if not live():
                return
            if got != want:
                raise StreamBroken(f"rank {g} streamed {got} of the {want} tokens asked for request {r}")
            st.finish(r, self.now())
            self.finished_since.append(r)
        except Rejected as e:
            self.fatal = ConfigError(f"The deployment rejected request {r} on rank {g}: {e}. Check "
                                     "cluster.workers against its data-parallel size, backend.model and the "
                                     "workload's lengths against its max_model_len.")
        except (RankUnavailable, StreamBroken) as e:
            if live():
                self._failed_attempt(r, g, e)
        finally:
            if self.tasks.get(r) is asyncio.current_task():
                del self.tasks[r]
                del self.watches[r]

    def _failed_attempt(self, r: int, g: int, e: Exception) -> None:
        self._note(e)
        self.errors[r] += 1
        if self.errors[r] >= self.cfg.max_attempts:
            self.state.fail(r)
            self.failures += 1
        else:
            self.state.requeue(r)
            self.retries += 1
        if self.health.mark_down(g, time.monotonic()):
            for q in self.state.sent_on(g):  # queued there, never started: place them again
                task = self.tasks.pop(q, None)
                self.watches.pop(q, None)
                if task is not None:
                    task.cancel()
                self.state.requeue(q)
                self.reroutes += 1

    def _decide(self) -> None:
        st = self.state
        view = st.view(self.tick, self.now(), self.health.down)
        if self.policy.family != DISPATCH and not (view.free_slots > 0).any():
            return
        t0 = time.perf_counter_ns()
        pl = self.policy.route(view)
        self.decision_ns.append(time.perf_counter_ns() - t0)
        reqs, wrks = check_placements(pl, view, st, self.policy)
        up = self.health.up_ranks
        for r, g in zip(reqs, wrks):
            if self.health.down[g]:
                if not len(up):
                    continue  # nowhere to go: it waits in the pool
                g = int(up[np.argmin((st.s + st.sent_tokens)[up])])
                self.redirects += 1
            self._send(r, g)

    # --- background loops ---------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.1, self.cfg.probe_interval_s / 4))
            now = time.monotonic()
            for g in self.health.due(now):
                try:
                    async with asyncio.timeout(self.cfg.connect_timeout_s):
                        async with self.session.get(f"{self.targets[g].url}/v1/models") as resp:
                            ok = resp.status == 200
                except (aiohttp.ClientError, OSError, TimeoutError):
                    ok = False
                self.health.probed(g, ok, time.monotonic())

    async def _watchdog(self) -> None:
        """Cancel streams that waited too long for data (see client.Watch)."""
        while True:
            await asyncio.sleep(min(0.25, self.cfg.token_timeout_s / 4))
            now = time.monotonic()
            for r, w in list(self.watches.items()):
                if not w.timed_out and w.overdue(now, self.cfg):
                    w.timed_out = True
                    task = self.tasks.get(r)
                    if task is not None:
                        task.cancel()

    async def _metrics_loop(self) -> None:
        urls, header = [t.url for t in self.targets], self.cfg.pin_mode != "endpoint"
        while True:
            await asyncio.sleep(self.cfg.metrics_interval_s)
            got = await scrape_ranks(self.session, urls, header, self.cfg.connect_timeout_s)
            for g, vals in got.items():
                if 0 <= g < self.G:
                    self.server_now[:, g] = [vals.get(k, np.nan) for k in ("running", "waiting", "kv_usage")]

    # --- the run ------------------------------------------------------------------------------
    def _give_up(self, reason: str) -> None:
        """Fail what can no longer be served (every rank down too long, or the run over its limit)."""
        for r in self.state.pool.tolist():
            self.state.fail(r)
            self.failures += 1
        self._note(RuntimeError(reason))

    async def run(self) -> None:
        from framework.live.run import raise_fd_limit

        raise_fd_limit()
        st = self.state
        self.recorder = Recorder(self.G, self.cost, self.cfg.record_tokens)
        conn = aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as session:
            self.session = session
            await self._preflight()
            bg = [asyncio.create_task(self._probe_loop()), asyncio.create_task(self._watchdog())]
            if self.cfg.scrape_metrics:
                bg.append(asyncio.create_task(self._metrics_loop()))
            hook = getattr(self.policy, "on_complete", None)
            arrivals = self.workload.arrival_s.tolist()
            N, ptr = len(arrivals), 0
            self.t0 = time.monotonic()
            wall0 = time.perf_counter()
            try:
                while True:
                    now = self.now()
                    self.recorder.close(now, *st.take_interval())
                    if self.fatal is not None:
                        raise self.fatal
                    if ptr < N and arrivals[ptr] <= now:
                        j = bisect_right(arrivals, now, ptr)
                        st.arrive(np.arange(ptr, j, dtype=np.int64))
                        ptr = j
                    if self.finished_since and callable(hook):
                        ids = np.asarray(self.finished_since, np.int64)
                        hook(ids, st.worker[ids], st.decoded[ids].copy())
                    self.finished_since = []
                    if ptr == N and st.finished:
                        break
                    if ((st.status >= WAITING) & (st.status < DONE)).any():
                        self.recorder.open(now, st.s, st.n, self.server_now)
                    if len(st.pool):
                        self._decide()
                    down_for = self.health.all_down_since
                    if down_for is not None and time.monotonic() - down_for > self.cfg.give_up_s and len(st.pool):
                        self._give_up(f"every rank down for more than backend.give_up_s={self.cfg.give_up_s:g} s")
                    if time.perf_counter() - wall0 > self.cfg.max_run_s:
                        for task in list(self.tasks.values()):
                            task.cancel()
                        for r in np.flatnonzero((st.status == SENT) | (st.status == RUNNING)).tolist():
                            st.requeue(r)
                        self._give_up(f"run passed backend.max_run_s={self.cfg.max_run_s:g} s")
                        for r in np.flatnonzero(st.status == 0).tolist():
                            st.fail(r)
                            self.failures += 1
                        ptr = N
                    period = self.tick_s * self.scale
                    self.tick = max(self.tick + 1, int((time.monotonic() - self.t0) / period))  # late: skip ahead
                    await asyncio.sleep(max(0.0, self.t0 + self.tick * period - time.monotonic()))
            finally:
                self.wall_s = time.perf_counter() - wall0
                for t in [*bg, *self.tasks.values()]:
                    t.cancel()
                await asyncio.gather(*bg, *self.tasks.values(), return_exceptions=True)
            if self.cfg.scrape_metrics:
                self.counters_end = await scrape_ranks(session, [t.url for t in self.targets],
                                                       self.cfg.pin_mode != "endpoint", self.cfg.connect_timeout_s)
