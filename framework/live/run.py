"""backend=live: one run of a registered policy against a deployment, written as a simulation's run folder.

The measured samples and requests are packed into the simulator's SimResult, so summary.json, steps.parquet
and requests.parquet come from the same code as a simulation's (framework.runner.summarize,
framework.results) and every analysis reads a live run unchanged. Live-only columns are appended
(steps: decode_tokens, server_*; requests: attempts, status), live-only summary fields added
(requests_failed, retries, reroutes, redirects, pinning_verified, ...), and tokens.parquet holds one row
per streamed token for analysis.calibrate.
"""
from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from framework.cluster import ClusterConfig
from framework.errors import ConfigError
from framework.live.config import LiveBackendConfig
from framework.live.router import LiveRouter
from framework.live.state import STATUS_NAMES, LiveState
from framework.oracle import OracleChannel
from framework.policy import PolicyContext, make_policy
from framework.results import requests_frame, steps_frame
from framework.runner import RunOutput, summarize
from framework.recorder import StepTable
from framework.simulator import SimResult
from framework.workload import Workload


def raise_fd_limit() -> None:
    """Thousands of concurrent streams need thousands of sockets; lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class LiveRunOutput(RunOutput):
    """A RunOutput whose tables carry the live-only columns as well."""

    def __init__(self, result: SimResult, summary: dict, workload: Workload, router: LiveRouter) -> None:
        super().__init__(result, summary, workload)
        self.router = router

    @property
    def steps(self) -> pd.DataFrame:
        df = steps_frame(self.result)
        a = self.result.extra["samples"]
        df["decode_tokens"] = a["tokens"].reshape(-1)
        for i, k in enumerate(("server_running", "server_waiting", "server_kv_usage")):
            df[k] = a["server"][:, i, :].reshape(-1)
        return df

    @property
    def requests(self) -> pd.DataFrame:
        df = requests_frame(self.result, self.workload)
        st = self.router.state
        df["attempts"] = st.attempts
        df["status"] = [STATUS_NAMES[s] for s in st.status]
        return df

    @property
    def tokens(self) -> pd.DataFrame:
        return pd.DataFrame(self.router.recorder.token_table())


def _result(router: LiveRouter) -> SimResult:
    a = router.recorder.arrays()
    st = router.state
    table = StepTable(mode="full", step=np.arange(len(a["t"]), dtype=np.int64), t_start=a["t"],
                      duration=a["duration"], load=a["load"], running=a["running"], prefill=a["prefill"],
                      compute=np.asarray(a["compute"]))
    return SimResult(
        workers=st.G, steps=len(a["t"]), table=table, accum={},
        req_worker=st.worker.copy(), req_placed_step=st.placed_tick.copy(), req_admit_step=st.admit_tick.copy(),
        req_first_token_s=st.first_token_s.copy(), req_finish_s=st.finish_s.copy(),
        req_preemptions=np.zeros(st.N, np.int64), decision_ns=np.asarray(router.decision_ns, np.int64),
        wall_s=router.wall_s, request_steps=int(st.generated_tokens.sum()), extra={"samples": a})


def _server_fields(router: LiveRouter) -> dict[str, Any]:
    """Per-rank counter deltas from /metrics and whether they agree with where the router pinned."""
    G, a, b = router.G, router.counters_start, router.counters_end
    prompt, gen = [None] * G, [None] * G
    for g in range(G):
        if g in a and g in b:
            prompt[g] = b[g].get("prompt_tokens", np.nan) - a[g].get("prompt_tokens", 0.0)
            gen[g] = b[g].get("generation_tokens", np.nan) - a[g].get("generation_tokens", 0.0)
    mine = router.state.attempt_prompt_tokens.tolist()
    seen = [g for g in range(G) if prompt[g] is not None and np.isfinite(prompt[g])]
    verified = bool(seen) and all(abs(prompt[g] - mine[g]) <= 1e-6 * max(1.0, mine[g]) for g in seen)
    return {"server_prompt_tokens": prompt, "server_generation_tokens": gen, "router_prompt_tokens": mine,
            "pinning_verified": verified if seen else None}


def run_live(backend: LiveBackendConfig, policy: Any, workload: Workload, cluster: ClusterConfig,
             seed: int = 0, *, training: Workload | None = None) -> LiveRunOutput:
    """Run ``policy`` on ``workload`` against the deployment ``backend`` points at."""
    cluster.validate()
    backend.validate(cluster.workers)
    if workload.closed_loop_waiting:
        raise ConfigError("workload.arrival=closed_loop is simulated only; a live run replays arrival "
                          "times (use workload.arrival=backlog or an arrival process).")
    # a trace replay: its lengths, flagged if read
    context = PolicyContext.for_cluster(cluster, seed, training=training,
                                        oracle_channel=OracleChannel(workload.output_tokens))
    pol = make_policy(policy, context)
    tick_s = backend.tick_s if backend.tick_s is not None else cluster.cost.c0 + cluster.cost.c_sync
    state = LiveState(workload, cluster)
    router = LiveRouter(workload, state, pol, backend, cluster.cost, tick_s, seed)
    asyncio.run(router.run())
    res = _result(router)
    summary = summarize(res, workload, pol.name, context, seed, extra=pol.describe())
    summary.update({
        "backend": "live", "pin": backend.pin_mode, "url": backend.url, "urls": backend.urls,
        "model": router.model, "max_model_len": router.max_model_len, "time_scale": backend.time_scale,
        "tick_s": tick_s, "requests_failed": int((state.status == 5).sum()), "retries": router.retries,
        "reroutes": router.reroutes, "redirects": router.redirects,
        "ranks_marked_down": router.health.marked_down, "first_error": router.first_error,
        "idle_fraction_source": "cost model of the cluster preset (a client cannot see compute time)",
    })
    summary.update(_server_fields(router))
    return LiveRunOutput(res, summary, workload, router)


def run_live_from_config(cfg, run_dir: Path) -> dict:
    """The CLI's backend=live branch: compose-time config -> run folder (framework.cli.run_from_config)."""
    from omegaconf import OmegaConf

    from framework.results import write_parquet_atomic, write_run
    from framework.runner import run_fields, run_inputs

    inp = run_inputs(cfg)
    backend: LiveBackendConfig = OmegaConf.to_object(cfg.backend)
    out = run_live(backend, cfg.policy, inp.workload, inp.cluster, int(cfg.seed), training=inp.train)
    summary = {**out.summary, **run_fields(cfg, inp)}
    if backend.record_tokens:
        write_parquet_atomic(Path(run_dir) / "tokens.parquet", out.tokens)
    write_run(run_dir, summary, out.steps, out.requests)
    if summary["requests_failed"]:
        print(f"balanceroute: warning: {summary['requests_failed']} request(s) failed "
              f"({summary['retries']} retries, {summary['reroutes']} re-routed); first error: "
              f"{summary['first_error']}", file=sys.stderr)
    return summary
