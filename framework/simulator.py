"""Discrete-step DP decode simulator with the barrier (DESIGN.md sections 2 and 4).

One tick is one decode step of the whole cluster. Per step:
  1. arrivals up to the clock join the router's waiting pool;
  2. the policy places waiting requests (dispatch: all of them into local queues; pool: some of them
     into free capacity); the simulator validates every placement;
  3. each worker admits from its local FCFS queue while a slot and KV room are free;
  4. chunked prefill runs within the per-worker token budget; a request whose prefill completes joins
     the running set with load p_i (+ tokens already decoded, after a preemption);
  5. the step lasts T = max_g t_g + c_sync (idle workers run a dummy step t_g = c0);
  6. requests whose last token is produced this step finish (a policy that defines
     on_complete(request_ids, workers) is told, as a front-end learns of finished requests); every
     other running request's context grows by one token (s_g += n_g);
  7. a worker whose KV would overflow preempts its newest requests back to the head of its own queue
     (vLLM's recompute preemption; assignments stay sticky).
When nothing is running, queued or waiting, the clock jumps to the next arrival.

The per-step path never loops over running requests: loads grow by n_g, and completions come from a
schedule keyed by finish step (known at decode start from o_i, which only the simulator reads).
"""
from __future__ import annotations

import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from framework.cluster import ClusterConfig
from framework.errors import ConfigError, PlacementError
from framework.policy import DISPATCH, Policy
from framework.placement import validate_placements
from framework.state import ClusterState
from framework.view import ClusterView
from framework.workload import Workload


class InvariantError(AssertionError):
    """The simulator's own bookkeeping broke; always a bug, never a user error."""


@dataclass
class SimResult:
    """Everything a run produced, as columns (turned into tables by framework.results)."""

    workers: int
    step_t_start: np.ndarray  # (K,)
    step_duration: np.ndarray  # (K,) barrier step time T
    step_load: np.ndarray  # (K, G) s_g during the step
    step_running: np.ndarray  # (K, G) n_g
    step_compute: np.ndarray  # (K, G) t_g
    step_prefill: np.ndarray  # (K, G) prefill tokens processed
    req_worker: np.ndarray
    req_placed_step: np.ndarray
    req_admit_step: np.ndarray  # first step the request's load counted (decode start, a_i)
    req_first_token_s: np.ndarray
    req_finish_s: np.ndarray
    req_preemptions: np.ndarray
    decision_ns: np.ndarray
    wall_s: float
    request_steps: int
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.step_duration)


class Simulator:
    """Runs one policy over one workload on one cluster; see the module docstring for the step."""

    def __init__(self, workload: Workload, cluster: ClusterConfig, policy: Policy, *,
                 check_invariants: bool = False, progress: bool = False,
                 max_steps: int = 100_000_000, max_idle_hold_steps: int = 100_000) -> None:
        cluster.validate()
        self.workload = workload
        self.cluster = cluster
        self.policy = policy
        self.G = G = int(cluster.workers)
        self.B = np.full(G, int(cluster.max_running), np.int64)
        self.C = np.full(G, int(cluster.kv_capacity_tokens), np.int64)
        # admission leaves a watermark free so running requests can grow before preemption kicks in
        self.C_admit = self.C - np.floor(cluster.kv_watermark * self.C).astype(np.int64)
        self.chunk = int(cluster.prefill_chunk_tokens) or None
        cost = cluster.cost
        self.c0, self.c_seq, self.c_kv, self.c_pf, self.c_sync = (
            float(cost.c0), float(cost.c_seq), float(cost.c_kv), float(cost.c_pf), float(cost.c_sync))
        self.fixed_cost = cost.is_fixed
        self.check = check_invariants
        self.progress = progress
        self.max_steps = max_steps
        self.max_idle_hold_steps = max_idle_hold_steps

        self.N = N = len(workload)
        self.arrival = workload.arrival_s
        self._arrival_list = workload.arrival_s.tolist()
        self.prompt = workload.prompt_tokens
        self._prompt_list = workload.prompt_tokens.tolist()
        self._output = workload.output_tokens  # ground truth: simulator-internal only
        self._output_list = workload.output_tokens.tolist()
        peak = self.prompt + self._output - 1
        too_big = np.flatnonzero(peak > self.C_admit[0])
        if len(too_big):
            i = int(too_big[0])
            raise ConfigError(
                f"Request {i} of workload {workload.name!r} needs {int(peak[i])} KV tokens at its last "
                f"step, more than the {int(self.C_admit[0])} a worker admits (cluster.kv_capacity_tokens="
                f"{cluster.kv_capacity_tokens} less cluster.kv_watermark={cluster.kv_watermark}); "
                f"{len(too_big)} request(s) do. Raise cluster.kv_capacity_tokens or filter the trace.")

        # per-request state
        self.req_worker = np.full(N, -1, np.int64)
        self.req_placed_step = np.full(N, -1, np.int64)
        self.req_admit_step = np.full(N, -1, np.int64)
        self.req_first_token_s = np.full(N, np.nan)
        self.req_finish_s = np.full(N, np.nan)
        self.req_preemptions = np.zeros(N, np.int64)
        self._done = [0] * N  # tokens decoded before the current running stint
        self._finish_step = [-1] * N
        self._in_pool = np.zeros(N, bool)

        # router and workers
        self.pool = np.empty(0, np.int64)
        self.local_queues: list[deque[int]] = [deque() for _ in range(G)]
        self.qlen = np.zeros(G, np.int64)
        self.queued_tokens = np.zeros(G, np.int64)
        self.prefill_queues: list[deque[list[int]]] = [deque() for _ in range(G)]
        self.n_prefill = np.zeros(G, np.int64)
        self._q_total = 0  # sum of qlen, kept as a Python int: cheaper than .any() in the step loop
        self._pf_total = 0  # sum of n_prefill
        self._q_workers: set[int] = set()  # workers with a non-empty local queue
        self._pf_workers: set[int] = set()  # workers with requests in prefill
        self.reserved = np.zeros(G, np.int64)
        self.s = np.zeros(G, np.int64)
        self.n = np.zeros(G, np.int64)

        # running set, compact arrays with swap-remove
        self.act_id = np.zeros(N, np.int64)
        self.act_worker = np.zeros(N, np.int64)
        self.act_start = np.zeros(N, np.int64)
        self.act_done0 = np.zeros(N, np.int64)
        self.act_count = 0
        self._act_pos = np.full(N, -1, np.int64)

        self.schedule: dict[int, list[int]] = {}
        # optional policy hook on_complete(request_ids, workers): a router that keeps an exact in-flight
        # count (vLLM's per-front-end engine_inflight) learns of finished requests as a front-end does
        hook = getattr(policy, "on_complete", None)
        self._on_complete = hook if callable(hook) else None
        self.step = 0
        self.now_s = float(self.arrival[0])
        self.completed = 0

    def snapshot(self) -> ClusterState:
        """The router's view of the cluster now, as fresh arrays (no output lengths)."""
        c = self.act_count
        ids = self.pool.copy()
        rid = self.act_id[:c].copy()
        qlen = self.qlen.copy()
        return ClusterState(
            step=self.step, now_s=self.now_s, loads=self.s.copy(), running=self.n.copy(),
            prefilling=self.n_prefill.copy(), queued=qlen,
            committed_tokens=self.reserved + self.queued_tokens, kv_used=self.s + self.reserved,
            max_running=self.B.copy(), kv_capacity=self.C.copy(),
            free_slots=np.maximum(self.B - self.n - self.n_prefill - qlen, 0),
            free_kv=np.maximum(self.C_admit - self.s - self.reserved - self.queued_tokens, 0),
            waiting_ids=ids, waiting_arrival_s=self.arrival[ids], waiting_prompt=self.prompt[ids],
            running_ids=rid, running_worker=self.act_worker[:c].copy(), running_prompt=self.prompt[rid],
            running_decoded=self.act_done0[:c] + (self.step - self.act_start[:c]))

    # ------------------------------------------------------------------------------------------
    def _apply(self, placements, view: ClusterView) -> None:
        """Validate a policy's placements and put them into the workers' local queues."""
        req, wrk = validate_placements(placements, view.state, family=self.policy.family,
                                       policy=self.policy.name)
        if len(req) == 0:
            return
        req_l, wrk_l = req.tolist(), wrk.tolist()
        self._in_pool[req] = False
        self.pool = self.pool[self._in_pool[self.pool]]
        self.req_worker[req] = wrk
        self.req_placed_step[req] = self.step
        prompt = self._prompt_list
        lq = self.local_queues
        qt, ql = self.queued_tokens, self.qlen
        for r, g in zip(req_l, wrk_l):
            lq[g].append(r)
            qt[g] += prompt[r]
            ql[g] += 1
        self._q_total += len(req_l)
        self._q_workers.update(wrk_l)

    def _admit(self) -> None:
        """Each worker admits from its local queue, FCFS, while a slot and KV room are free."""
        prompt, done = self._prompt_list, self._done
        B, C, s, n, npf, res = self.B, self.C_admit, self.s, self.n, self.n_prefill, self.reserved
        for g in list(self._q_workers):
            q = self.local_queues[g]
            room_slots = int(B[g] - n[g] - npf[g])
            room_kv = int(C[g] - s[g] - res[g])
            admitted = tokens = 0
            pq = self.prefill_queues[g]
            while q and room_slots > 0:
                r = q[0]
                need = prompt[r] + done[r]
                if need > room_kv:
                    break
                q.popleft()
                room_slots -= 1
                room_kv -= need
                admitted += 1
                tokens += need
                pq.append([r, need, need])
            if not q:
                self._q_workers.discard(g)
            if admitted:
                self._pf_workers.add(g)
                self._q_total -= admitted
                self._pf_total += admitted
                self.qlen[g] -= admitted
                self.queued_tokens[g] -= tokens
                npf[g] += admitted
                res[g] += tokens

    def _prefill(self, P: np.ndarray) -> list[int]:
        """Run chunked prefill; return requests whose prefill completed (they decode this step)."""
        joined: list[int] = []
        chunk = self.chunk
        for g in list(self._pf_workers):
            pq = self.prefill_queues[g]
            budget = chunk if chunk is not None else 1 << 62
            used = 0
            while pq and budget > 0:
                item = pq[0]
                take = item[1] if item[1] < budget else budget
                item[1] -= take
                budget -= take
                used += take
                if item[1] == 0:
                    pq.popleft()
                    self._join(g, item[0], item[2])
                    joined.append(item[0])
            P[g] = used
            if not pq:
                self._pf_workers.discard(g)
        return joined

    def _join(self, g: int, r: int, need: int) -> None:
        k = self.step
        self.n_prefill[g] -= 1
        self._pf_total -= 1
        self.reserved[g] -= need
        self.s[g] += need
        self.n[g] += 1
        d0 = self._done[r]
        fin = k + self._output_list[r] - d0 - 1
        self._finish_step[r] = fin
        lst = self.schedule.get(fin)
        if lst is None:
            self.schedule[fin] = [r]
        else:
            lst.append(r)
        if self.req_admit_step[r] < 0:
            self.req_admit_step[r] = k
        c = self.act_count
        self.act_id[c] = r
        self.act_worker[c] = g
        self.act_start[c] = k
        self.act_done0[c] = d0
        self._act_pos[r] = c
        self.act_count = c + 1

    def _remove_active(self, r: int) -> None:
        i = int(self._act_pos[r])
        last = self.act_count - 1
        if i != last:
            m = int(self.act_id[last])
            self.act_id[i] = m
            self.act_worker[i] = self.act_worker[last]
            self.act_start[i] = self.act_start[last]
            self.act_done0[i] = self.act_done0[last]
            self._act_pos[m] = i
        self._act_pos[r] = -1
        self.act_count = last

    def _complete(self, t_end: float) -> None:
        lst = self.schedule.pop(self.step, None)
        if not lst:
            return
        k = self.step
        prompt, output, fs = self._prompt_list, self._output_list, self._finish_step
        s, n, rw = self.s, self.n, self.req_worker
        finished: list[int] | None = [] if self._on_complete is not None else None
        for r in lst:
            if fs[r] != k:  # stale entry of a preempted request
                continue
            g = rw[r]
            s[g] -= prompt[r] + output[r] - 1
            n[g] -= 1
            fs[r] = -2
            self._remove_active(r)
            self.req_finish_s[r] = t_end
            self.completed += 1
            if finished is not None:
                finished.append(r)
        if finished:
            ids = np.asarray(finished, np.int64)
            self._on_complete(ids, rw[ids])

    def _preempt_overflow(self) -> None:
        """After growth, a worker over its KV capacity preempts its newest requests (sticky)."""
        over = np.flatnonzero(self.s + self.reserved > self.C)
        for g in over.tolist():
            while self.s[g] + self.reserved[g] > self.C[g]:
                c = self.act_count
                mine = np.flatnonzero(self.act_worker[:c] == g)
                if len(mine) == 0:  # only prefill reservations left; they fit by construction
                    break
                # newest first: latest decode start, then latest request id (vLLM pops the tail)
                key = self.act_start[mine] * self.N + self.act_id[mine]
                i = int(mine[np.argmax(key)])
                r = int(self.act_id[i])
                decoded = int(self.act_done0[i] + (self.step + 1 - self.act_start[i]))
                load = self._prompt_list[r] + decoded
                self.s[g] -= load
                self.n[g] -= 1
                self._remove_active(r)
                self._finish_step[r] = -1
                self._done[r] = decoded
                self.req_preemptions[r] += 1
                self.local_queues[g].appendleft(r)
                self._q_workers.add(g)
                self.qlen[g] += 1
                self._q_total += 1
                self.queued_tokens[g] += load

    # ------------------------------------------------------------------------------------------
    def _check_invariants(self, k: int, tg: np.ndarray, T: float) -> None:
        c = self.act_count
        ids = self.act_id[:c]
        if len(np.unique(ids)) != c:
            raise InvariantError(f"step {k}: a request is running twice")
        loads = self.prompt[ids] + self.act_done0[:c] + (k - self.act_start[:c])
        s_chk = np.bincount(self.act_worker[:c], weights=loads, minlength=self.G).astype(np.int64)
        n_chk = np.bincount(self.act_worker[:c], minlength=self.G)
        if not np.array_equal(s_chk, self.s):
            raise InvariantError(f"step {k}: s_g {self.s.tolist()} != sum of contexts {s_chk.tolist()}")
        if not np.array_equal(n_chk, self.n):
            raise InvariantError(f"step {k}: n_g {self.n.tolist()} != running count {n_chk.tolist()}")
        if not np.array_equal(self.req_worker[ids], self.act_worker[:c]):
            raise InvariantError(f"step {k}: a running request sits on a worker it was not placed on")
        if np.any(self.s + self.reserved > self.C):
            raise InvariantError(f"step {k}: KV capacity exceeded: {(self.s + self.reserved).tolist()}")
        if np.any(self.n + self.n_prefill > self.B):
            raise InvariantError(f"step {k}: max_running exceeded")
        if not np.isclose(T, tg.max() + self.c_sync, rtol=0, atol=1e-12):
            raise InvariantError(f"step {k}: T={T} != max t_g + c_sync")
        if self._q_total != int(self.qlen.sum()) or self._pf_total != int(self.n_prefill.sum()):
            raise InvariantError(f"step {k}: queue/prefill counters out of sync")
        if self._q_workers != {g for g in range(self.G) if self.local_queues[g]} or \
                self._pf_workers != {g for g in range(self.G) if self.prefill_queues[g]}:
            raise InvariantError(f"step {k}: active-worker sets out of sync")
        if np.any(self.s < 0) or np.any(self.n < 0):
            raise InvariantError(f"step {k}: negative load")

    def run(self) -> SimResult:
        """Simulate until every request has finished."""
        G, N = self.G, self.N
        cap = 1024
        rec_t = np.empty(cap)
        rec_T = np.empty(cap)
        rec_s = np.empty((cap, G), np.int64)
        rec_n = np.empty((cap, G), np.int64)
        rec_P = np.zeros((cap, G), np.int64)
        rec_tg = np.empty((cap, G)) if not self.fixed_cost else None
        decisions: list[int] = []
        arr = self._arrival_list
        ptr = 0
        dispatch = self.policy.family == DISPATCH
        policy = self.policy
        c0, c_seq, c_kv, c_pf, c_sync = self.c0, self.c_seq, self.c_kv, self.c_pf, self.c_sync
        fixed = self.fixed_cost
        tg_fixed = np.full(G, c0)
        T_fixed = c0 + c_sync
        kv_can_bind = bool(np.any(self.C < np.inf))
        idle_hold = 0
        request_steps = 0
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=N, unit="req", desc=f"simulate {policy.name}", mininterval=0.5,
                       leave=False, dynamic_ncols=True)
        wall0 = time.perf_counter()
        t = self.now_s
        k = 0
        last_done = 0
        while self.completed < N:
            self.step = k
            self.now_s = t
            # 1. arrivals
            if ptr < N and arr[ptr] <= t:
                j = bisect_right(arr, t, ptr)
                new = np.arange(ptr, j, dtype=np.int64)
                self._in_pool[new] = True
                self.pool = np.concatenate((self.pool, new)) if len(self.pool) else new
                ptr = j
            busy = self.act_count or self._pf_total or self._q_total
            # 2. decision
            if len(self.pool) and (dispatch or bool(
                    ((self.B - self.n - self.n_prefill - self.qlen) > 0).any())):
                view = ClusterView(self.snapshot())
                t0 = time.perf_counter_ns()
                pl = policy.decide(view)
                decisions.append(time.perf_counter_ns() - t0)
                self._apply(pl, view)
            if not busy and not self._q_total:
                if len(self.pool):
                    idle_hold += 1
                    if idle_hold > self.max_idle_hold_steps:
                        raise PlacementError(
                            f"Policy {policy.name!r} held {len(self.pool)} request(s) for "
                            f"{idle_hold} steps while the whole cluster was idle; a pool policy must "
                            "eventually admit (check its hold limit).")
                elif ptr < N:  # whole cluster idle: jump to the next arrival
                    t = max(t, arr[ptr])
                    continue
                else:  # pragma: no cover - completed < N with nothing anywhere is a bug
                    raise InvariantError("requests vanished: nothing waiting, queued or running")
            else:
                idle_hold = 0
            # 3-4. admission and prefill
            if self._q_total:
                self._admit()
            P = np.zeros(G, np.int64)
            if self._pf_total:
                joined = self._prefill(P)
            else:
                joined = ()
            # 5. barrier step time
            if fixed:
                tg, T = tg_fixed, T_fixed
            else:
                tg = c0 + c_seq * self.n + c_kv * self.s + c_pf * P
                T = float(tg.max()) + c_sync
            if k >= cap:
                cap *= 2
                rec_t = np.resize(rec_t, cap)
                rec_T = np.resize(rec_T, cap)
                rec_s = np.resize(rec_s, (cap, G))
                rec_n = np.resize(rec_n, (cap, G))
                grow = np.zeros((cap, G), np.int64)
                grow[:k] = rec_P[:k]
                rec_P = grow
                if rec_tg is not None:
                    rec_tg = np.resize(rec_tg, (cap, G))
            rec_t[k] = t
            rec_T[k] = T
            rec_s[k] = self.s
            rec_n[k] = self.n
            if joined:
                rec_P[k] = P
            if rec_tg is not None:
                rec_tg[k] = tg
            request_steps += self.act_count
            if self.check:
                self._check_invariants(k, tg, T)
            t_end = t + T
            for r in joined:
                if np.isnan(self.req_first_token_s[r]):
                    self.req_first_token_s[r] = t_end
            # 6. completions, then growth
            self._complete(t_end)
            self.s += self.n
            # 7. preemption on KV overflow
            if kv_can_bind and self.act_count:
                if (self.s + self.reserved > self.C).any():
                    self._preempt_overflow()
            t = t_end
            k += 1
            if k >= self.max_steps:
                raise ConfigError(f"Simulation passed max_steps={self.max_steps} with "
                                  f"{N - self.completed} requests unfinished; raise max_steps.")
            if bar is not None and (k & 1023) == 0:
                bar.update(self.completed - last_done)
                last_done = self.completed
        wall = time.perf_counter() - wall0
        if bar is not None:
            bar.update(self.completed - last_done)
            bar.close()
        K = k
        if rec_tg is None:
            rec_tg = np.broadcast_to(tg_fixed, (K, G))
        return SimResult(
            workers=G, step_t_start=rec_t[:K].copy(), step_duration=rec_T[:K].copy(),
            step_load=rec_s[:K].copy(), step_running=rec_n[:K].copy(), step_compute=np.array(rec_tg[:K]),
            step_prefill=rec_P[:K].copy(), req_worker=self.req_worker, req_placed_step=self.req_placed_step,
            req_admit_step=self.req_admit_step, req_first_token_s=self.req_first_token_s,
            req_finish_s=self.req_finish_s, req_preemptions=self.req_preemptions,
            decision_ns=np.asarray(decisions, np.int64), wall_s=wall, request_steps=int(request_steps))
