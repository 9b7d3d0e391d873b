"""Turn (policy, workload, cluster, seed) into a finished run: simulator result, tables, summary."""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from framework.metrics import (decision_metrics, imbalance_from_accumulators, imbalance_metrics,
                               paper_imbalance_metrics)
from framework.cluster import ClusterConfig
from framework.config import WorkloadConfig
from framework.errors import ConfigError
from framework.oracle import OracleChannel
from framework.policy import PolicyContext, make_policy
from framework.results import requests_frame, steps_frame
from framework.simulator import SimResult, Simulator
from framework.workload import Workload, WorkloadStream, split_train


@dataclass
class RunOutput:
    result: SimResult
    summary: dict[str, Any]
    workload: Workload

    @property
    def steps(self) -> pd.DataFrame | None:
        """The step table as recorded (None for record=summary)."""
        return steps_frame(self.result)

    @property
    def requests(self) -> pd.DataFrame | None:
        """One row per request (None for record=summary)."""
        if self.result.table is None:
            return None
        return requests_frame(self.result, self.workload)


@dataclass
class RunInputs:
    """What a composed config describes, built once for either backend (sim or live)."""

    workload_config: WorkloadConfig
    cluster: ClusterConfig
    train: Workload | None
    workload: Workload | WorkloadStream
    t0: float  # perf_counter at the start, for the summary's wall_s


def run_inputs(cfg: Any) -> RunInputs:
    """The workload (split into training head and simulated part) and cluster of a composed config."""
    from omegaconf import OmegaConf

    t0 = time.perf_counter()
    wcfg: WorkloadConfig = OmegaConf.to_object(cfg.workload)
    ccfg: ClusterConfig = OmegaConf.to_object(cfg.cluster)
    live = cfg.get("backend", {}).get("name", "sim") == "live"  # a live run replays a Workload in memory
    train, workload = prepare_workload(wcfg, int(cfg.seed), stream="false" if live else str(cfg.get("stream", "auto")))
    return RunInputs(wcfg, ccfg, train, workload, t0)


def run_fields(cfg: Any, inputs: RunInputs) -> dict[str, Any]:
    """What every summary.json records about the run itself, whichever backend ran it: the cluster
    preset, the workload's kind and split, the config hash (what resumable sweeps match on), the code's
    provenance and the wall time."""
    from framework.config import config_hash
    from framework.provenance import code_provenance

    w = inputs.workload_config
    return {"cluster": inputs.cluster.name, "workload_kind": w.kind, "train_fraction": w.train_fraction,
            "train_requests": 0 if inputs.train is None else len(inputs.train), "max_requests": w.max_requests,
            "config_hash": config_hash(cfg), **code_provenance(), "wall_s": time.perf_counter() - inputs.t0}


def prepare_workload(cfg: WorkloadConfig, seed: int,
                     stream: str = "false") -> tuple[Workload | None, Workload | WorkloadStream]:
    """Load the workload, split off its training head, truncate the simulated part.

    ``stream`` (auto | true | false, framework.workloads.stream): read a trace file chunk by chunk
    into the simulator instead; the requests are the same.
    """
    from framework.workloads.loader import load_workload, workload_seed
    from framework.workloads.stream import open_stream, should_stream

    if should_stream(cfg, stream):
        return open_stream(cfg)
    full = load_workload(cfg, workload_seed(cfg, seed))
    train, sim = split_train(full, cfg.train_fraction)
    if cfg.max_requests is not None:
        if cfg.max_requests < 1:
            raise ConfigError(f"workload.max_requests={cfg.max_requests} must be >= 1 (or null for all).")
        if cfg.max_requests < len(sim):
            sim = sim.take(slice(0, cfg.max_requests))
    return train, sim


def run_policy(policy: Any, workload: Workload | WorkloadStream, cluster: ClusterConfig, seed: int = 0, *,
               training: Workload | None = None, check_invariants: bool = False,
               progress: bool = False, max_steps: int = 100_000_000, record: str = "full",
               record_every: int = 100) -> RunOutput:
    """Simulate one policy on one workload and summarise it."""
    cluster.validate()
    sims: list[Simulator] = []  # a stream's lengths live only in the simulator's window
    channel = (OracleChannel(workload.output_tokens) if isinstance(workload, Workload)
               else OracleChannel(lookup=lambda ids: sims[0].output_tokens(ids)))
    context = PolicyContext.for_cluster(cluster, seed, training=training, oracle_channel=channel)
    pol = make_policy(policy, context)
    sim = Simulator(workload, cluster, pol, check_invariants=check_invariants, progress=progress,
                    max_steps=max_steps, record=record, record_every=record_every)
    sims.append(sim)
    res = sim.run()
    summary = summarize(res, workload, pol.name, context, seed, extra=pol.describe())
    return RunOutput(res, summary, workload)


def summarize(res: SimResult, workload: Workload | WorkloadStream, policy: str, context: PolicyContext, seed: int,
              extra: dict | None = None) -> dict[str, Any]:
    """The summary.json contract (see README, 'Run folder')."""
    req = res.request_figures(workload)
    s: dict[str, Any] = {
        "policy": policy, "workers": res.workers, "requests_total": req.pop("requests_total"),
        "requests_completed": req.pop("requests_completed"), "steps": res.steps,
    }
    if res.table is not None and res.table.mode == "full":  # exact, from the table (as always)
        s.update(imbalance_metrics(res.step_load, res.step_compute, res.step_duration))
        s.update(paper_imbalance_metrics(res.step_load, int(res.req_admit_step.max())))
    else:  # streaming sums; the paper's per-step forms need the full table
        s.update(imbalance_from_accumulators(res.accum, res.workers))
    preemptions = req.pop("preemptions")
    s.update(req)  # latency figures
    s.update(decision_metrics(res.decision_ns))
    s.update({
        "oracle_used": context.oracle_used, "oracle_components": list(context.oracle_users),
        "seed": seed, "preemptions": preemptions,
        "request_steps": res.request_steps, "sim_wall_s": res.wall_s,
        "request_steps_per_s": res.request_steps / res.wall_s if res.wall_s > 0 else math.nan,
        "workload": workload.name, "python": platform.python_version(),
        "record": "summary" if res.table is None else res.table.mode,
    })
    if extra:
        s.update(extra)
    return s
