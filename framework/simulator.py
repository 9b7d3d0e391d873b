"""Discrete-step DP decode simulator with the barrier (DESIGN.md sections 2 and 4).

One tick is one decode step of the whole cluster. Per step:
  1. arrivals up to the clock join the router's waiting pool;
  2. the policy places waiting requests (dispatch: all of them into local queues; pool: some of them
     into free capacity); framework.placement validates every placement;
  3. each worker admits from its local FCFS queue while a slot and KV room are free;
  4. chunked prefill runs within the per-worker token budget; a request whose prefill completes joins
     the running set with load p_i (+ tokens already decoded, after a preemption);
  5. the step lasts T = max_g t_g + c_sync (framework.cost; idle workers run a dummy step t_g = c0),
     plus the decision's wall time when cluster.charge_decision_time is set;
  6. requests whose last token is produced this step finish (a policy that defines
     on_complete(request_ids, workers, output_tokens) is told, before its next decision, as a front-end
     learns of finished streams and their token counts); every other running request's context grows by one token (s_g += n_g);
  7. a worker whose KV would overflow preempts its newest requests back to the head of its own queue
     (vLLM's recompute preemption; assignments stay sticky).
When nothing is running, queued or waiting, the clock jumps to the next arrival.

Steps 1 and 3-7 run compiled (framework.simcore, framework.simloop); Python runs only the policy, and
only on steps where a decision is possible. Output lengths stay in the simulator's arrays; the policy
sees a fresh ClusterState (framework.state) per decision. What is kept of the steps is the recorder's
business (framework.recorder), of the requests the request log's (framework.requestlog); requests are
read through a sliding window that pulls the workload chunk by chunk (framework.simwindow).
"""
from __future__ import annotations

import sys
import time
from array import array
from dataclasses import dataclass, field

import numpy as np

from framework import simcore as sc
from framework.cluster import ClusterConfig
from framework.cost import make_cost_model
from framework.errors import ConfigError, PlacementError
from framework.placement import placement_arrays, validate_placements
from framework.policy import DISPATCH, Policy
from framework.recorder import Recorder, StepTable, estimate_steps, resolve_mode
from framework.requestlog import RequestLog
from framework.simdecide import OK, W_ROWS, fill_snapshot, place_checked
from framework.simloop import advance
from framework.simwindow import RequestWindow
from framework.state import ClusterState
from framework.view import ClusterView
from framework.workload import Workload, WorkloadStream

INVARIANTS = {1: "a request is running twice (or its position map is stale)",
              2: "s_g differs from the sum of its running contexts", 3: "n_g differs from its running count",
              4: "a running request sits on a worker it was not placed on", 5: "KV capacity exceeded",
              6: "max_running exceeded", 7: "T != max t_g + c_sync", 8: "queue/prefill counters out of sync",
              9: "negative load", 10: "a request was lost or duplicated (waiting + queued + prefilling + "
                                       "running + finished != arrived)"}


class InvariantError(AssertionError):
    """The simulator's own bookkeeping broke; always a bug, never a user error."""


@dataclass
class SimResult:
    """Everything a run produced, as columns (turned into tables by framework.results)."""

    workers: int
    steps: int
    table: StepTable | None
    accum: dict
    req_worker: np.ndarray | None  # the request columns are None for record=summary (see latency)
    req_placed_step: np.ndarray | None
    req_admit_step: np.ndarray | None  # first step the request's load counted (decode start, a_i)
    req_first_token_s: np.ndarray | None
    req_finish_s: np.ndarray | None
    req_preemptions: np.ndarray | None
    decision_ns: np.ndarray
    wall_s: float
    request_steps: int
    extra: dict = field(default_factory=dict)
    # the simulator's own arrival (closed loop: release) times and lengths; None: the workload's
    req_arrival_s: np.ndarray | None = None
    req_prompt: np.ndarray | None = None
    req_output: np.ndarray | None = None
    requests_total: int | None = None
    latency: dict | None = None  # record=summary: latency figures and counts from the compact log

    def request_figures(self, workload: Workload | WorkloadStream | None = None) -> dict:
        """requests_total / requests_completed, preemptions and the latency figures of the summary."""
        if self.latency is not None:
            return dict(self.latency)
        from framework.metrics import latency_metrics

        arr = self.req_arrival_s if self.req_arrival_s is not None else workload.arrival_s
        out = self.req_output if self.req_output is not None else workload.output_tokens
        return {"requests_total": len(arr), "requests_completed": int(np.isfinite(self.req_finish_s).sum()),
                "preemptions": int(self.req_preemptions.sum()),
                **latency_metrics(arr, self.req_first_token_s, self.req_finish_s, out)}

    # the per-(step, worker) columns of record=full
    def _full(self, name: str) -> np.ndarray:
        if self.table is None or self.table.mode != "full":
            raise AttributeError(f"SimResult.{name} needs record=full (this run recorded "
                                 f"{'summary' if self.table is None else self.table.mode})")
        return getattr(self.table, name)

    step_t_start = property(lambda self: self._full("t_start"))
    step_duration = property(lambda self: self._full("duration"))
    step_load = property(lambda self: self._full("load"))
    step_running = property(lambda self: self._full("running"))
    step_compute = property(lambda self: self._full("compute"))
    step_prefill = property(lambda self: self._full("prefill"))


class Simulator:
    """Runs one policy over one workload on one cluster; see the module docstring for the step."""

    def __init__(self, workload: Workload | WorkloadStream, cluster: ClusterConfig, policy: Policy, *,
                 check_invariants: bool = False, progress: bool = False,
                 max_steps: int = 100_000_000, max_idle_hold_steps: int = 100_000,
                 record: str = "full", record_every: int = 100) -> None:
        cluster.validate()
        self.workload, self.cluster, self.policy = workload, cluster, policy
        self.cost = make_cost_model(cluster.cost)
        self.G = G = int(cluster.workers)
        self.progress = progress
        self.charge = bool(cluster.charge_decision_time)
        C = int(cluster.kv_capacity_tokens)
        C_admit = C - int(np.floor(cluster.kv_watermark * C))
        if isinstance(workload, Workload):
            est = estimate_steps(float(workload.arrival_s[-1] - workload.arrival_s[0]),
                                 float(cluster.cost.c0 + cluster.cost.c_sync), float(workload.output_tokens.max()),
                                 work_steps=float(workload.output_tokens.sum()) / (G * int(cluster.max_running)))
        else:
            est = None  # a stream's length is unknown until read
        self.record = resolve_mode(record, est_steps=est, workers=G)
        self.recorder = Recorder(self.record, record_every, G)
        self.SC = np.zeros(sc.NSC, np.int64)
        self.log = RequestLog(table=self.record != "summary")
        self.win = RequestWindow(workload, cluster, C_admit, self.SC, self.log)
        self.WK = WK = np.zeros((sc.NWK, G), np.int64)
        WK[sc.BMAX], WK[sc.CAP], WK[sc.CADM] = int(cluster.max_running), C, C_admit
        WK[[sc.QHEAD, sc.QTAIL, sc.PFHEAD, sc.PFTAIL]] = sc.NOLINK
        capA = int(WK[sc.BMAX].sum())
        self.AC = np.zeros((4, capA), np.int64)
        self.JB = np.zeros(capA, np.int64)
        hook = getattr(policy, "on_complete", None)
        self._on_complete = hook if callable(hook) else None
        self.CB = np.zeros((2, 4 * capA if self._on_complete else 0), np.int64)
        self.SC[sc.STOPAT] = 4096 if progress else 2**62
        self.SF = np.array([self.win.t0, 0.0])
        self.PRM = self.cost.params()
        IP = np.zeros(sc.NIP, np.int64)
        IP[sc.DISPATCH_F] = self._dispatch = policy.family == DISPATCH
        IP[sc.CHECK_F] = bool(check_invariants)
        IP[sc.CHUNK] = int(cluster.prefill_chunk_tokens)
        IP[sc.MAXSTEPS], IP[sc.MAXIDLE] = int(max_steps), int(max_idle_hold_steps)
        IP[sc.HOOK_F] = self._on_complete is not None
        IP[sc.COSTKIND] = self.cost.kind
        IP[sc.CLOSEDW] = int(workload.closed_loop_waiting)
        IP[sc.RECMODE], IP[sc.RECEVERY] = self.recorder.code, self.recorder.every
        self.IP = IP
        self.max_steps = int(max_steps)
        self.tg = np.zeros(G)
        self.ACC = np.zeros(sc.NACC)

    @property
    def step(self) -> int:
        return int(self.SC[sc.K])

    @property
    def completed(self) -> int:
        return int(self.SC[sc.COMPLETED])

    @property
    def RQ(self) -> np.ndarray:
        return self.win.RQ

    @property
    def RF(self) -> np.ndarray:
        return self.win.RF

    def snapshot(self) -> ClusterState:
        """The router's view of the cluster now, as fresh read-only arrays (no output lengths)."""
        SC = self.SC
        W, R = int(SC[sc.NPOOL]), int(SC[sc.ACT])
        wk, wait_i = np.empty((W_ROWS, self.G), np.int64), np.empty((3, W), np.int64)
        wait_f, run_i = np.empty(W), np.empty((5, R), np.int64)
        w = self.win
        fill_snapshot(SC, self.WK, w.RQ, w.RF, w.KEY, self.AC, wk, wait_i, wait_f, run_i)
        return ClusterState.from_blocks(int(SC[sc.K]), float(self.SF[sc.TNOW]), wk, wait_i, wait_f, run_i)

    def output_tokens(self, ids: np.ndarray) -> np.ndarray:
        """True output lengths of arrived, unfinished requests (the oracle channel of a streamed run)."""
        return self.win.output_tokens(ids)

    def _flush_completions(self) -> None:
        n = int(self.SC[sc.CBN])
        if not n:
            return
        slots, steps = self.CB[0, :n].copy(), self.CB[1, :n]
        self.SC[sc.CBN] = 0
        cuts = np.flatnonzero(np.diff(steps)) + 1
        workers = self.win.RQ[sc.WORKER, slots].astype(np.int64)
        ids = slots + int(self.SC[sc.BASE])
        done = self.win.RQ[sc.OUTPUT, slots].astype(np.int64)  # tokens streamed by a finished request: observable
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, n]):  # one call per step, as a front-end sees them
            self._on_complete(ids[a:b], workers[a:b], done[a:b])

    def _decide(self, decisions: array) -> None:
        if self._on_complete is not None:
            self._flush_completions()
        state = self.snapshot()
        t0 = time.perf_counter_ns()
        pl = self.policy.route(ClusterView(state))
        dt = time.perf_counter_ns() - t0
        decisions.append(dt)
        req, wrk = placement_arrays(pl, state, self.policy.name)
        if place_checked(req, wrk, self._dispatch, self.SC, self.WK, self.win.RQ) != OK:
            validate_placements(pl, state, family=self.policy.family, policy=self.policy.name)  # raises
            raise InvariantError("the compiled placement check rejected a decision validate_placements "
                                 "accepts")
        if self.charge:
            self.SF[sc.EXTRA] += dt * 1e-9

    def _raise(self, rc: int) -> None:
        SC = self.SC
        if rc == sc.ERR_IDLE:
            raise PlacementError(
                f"Policy {self.policy.name!r} held {int(SC[sc.NPOOL])} request(s) for {int(SC[sc.IDLE])} "
                "steps while the whole cluster was idle; a pool policy must eventually admit (check its "
                "hold limit).")
        if rc == sc.ERR_MAXSTEPS:
            raise ConfigError(f"Simulation passed max_steps={self.max_steps} with "
                              f"{self.win.loaded - self.completed} loaded requests unfinished; raise max_steps.")
        if rc >= sc.ERR_INV:
            raise InvariantError(f"step {int(SC[sc.ERRSTEP])}: {INVARIANTS.get(rc - sc.ERR_INV, rc)}")
        raise InvariantError("requests vanished: nothing waiting, queued or running")

    def run(self) -> SimResult:
        """Simulate until every request has finished."""
        SC, rec, win = self.SC, self.recorder, self.win
        args = self._args()
        decisions = array("q")  # 8 bytes a decision (a list of ints: ~36); a week has ~20 M
        bar = self._bar()
        wall0 = time.perf_counter()
        decide_s = 0.0  # Python time of decisions (state, policy, validation), for the benchmarks
        phase = 0
        while True:
            rc = advance(phase, *args)
            phase = 0
            if rc == sc.DONE_RC:
                break
            if rc == sc.DECIDE:
                d0 = time.perf_counter()
                self._decide(decisions)
                decide_s += time.perf_counter() - d0
                phase = 1
            elif rc == sc.RECBUF:
                rec.flush(int(SC[sc.RECN]))
                SC[sc.RECN] = 0
            elif rc == sc.NEEDARR:
                if self._on_complete is not None:
                    self._flush_completions()  # the callback buffer holds slots, which are about to move
                if win.advance(self.WK, self.AC):
                    args = self._args()
            elif rc == sc.CBBUF:
                self._flush_completions()
            elif rc == sc.PROGRESS:
                SC[sc.STOPAT] = SC[sc.K] + 4096
                self._tick(bar, wall0)
            else:
                self._raise(rc)
        wall = time.perf_counter() - wall0
        if self._on_complete is not None:
            self._flush_completions()
        win.retire(everything=True)
        rec.flush(int(SC[sc.RECN]))
        SC[sc.RECN] = 0
        if bar is not None:
            self._tick(bar, wall0)
            bar.close()
        res = self._result(decisions, wall)
        res.extra["decide_wall_s"] = decide_s
        return res

    def _args(self) -> tuple:
        """The core's arguments (rebuilt when the request window replaces its arrays)."""
        w = self.win
        return (self.SC, self.SF, self.PRM, self.IP, self.WK, w.RQ, w.RF, self.AC, w.CH, w.CT,
                self.JB, self.CB, self.tg, *self.recorder.buffers(), self.ACC)

    def _bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        total = len(self.workload) if isinstance(self.workload, Workload) else self.workload.total
        return tqdm(total=total, unit="req", desc=f"simulate {self.policy.name}", mininterval=0.5,
                    leave=False, dynamic_ncols=True, file=sys.stderr)

    def _tick(self, bar, wall0: float) -> None:
        """Progress: requests done (and their rate, from tqdm), simulated time and its speed-up."""
        if bar is None:
            return
        t_sim = float(self.SF[sc.TNOW] - self.win.t0)
        bar.update(self.completed - bar.n)
        wall = max(time.perf_counter() - wall0, 1e-9)
        bar.set_postfix_str(f"sim {t_sim:,.0f}s ({t_sim / wall:,.0f}x real time), step {self.step:,}",
                            refresh=False)

    def _result(self, decisions: array, wall: float) -> SimResult:
        log = self.log
        cols = log.columns() if log.table else {}
        latency = None
        if not log.table:
            latency = {"requests_total": log.count, "requests_completed": log.count,
                       "preemptions": log.preemptions, **log.latency()}
        get = cols.get
        return SimResult(
            workers=self.G, steps=self.step, table=self.recorder.table(),
            accum=dict(zip(("steps_with_load", "sum_imbalance", "sum_balance", "imbalance_tokens",
                            "sum_GT", "sum_idle"), self.ACC.tolist())),
            req_worker=get("worker"), req_placed_step=get("placed_step"), req_admit_step=get("admit_step"),
            req_first_token_s=get("first_token_s"), req_finish_s=get("finish_s"),
            req_preemptions=get("preemptions"), decision_ns=np.frombuffer(decisions, np.int64).copy(), wall_s=wall,
            request_steps=int(self.SC[sc.REQSTEPS]), req_arrival_s=get("arrival_s"),
            req_prompt=get("prompt_tokens"), req_output=get("output_tokens"), requests_total=log.count,
            latency=latency)
