"""Typed Hydra configs (structured-config schema) for the runner: workload/, cluster/, policy/.

YAML presets in conf/ are merged onto these dataclasses, so a misspelt key or a wrong type is rejected by
Hydra with the key's name. Policy configs are registered by ``framework.policy.register_policy``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from framework.cluster import ClusterConfig


@dataclass
class WorkloadConfig:
    """Where requests come from and which part of them to simulate."""

    name: str = "default"
    kind: str = field(default="synthetic", metadata={
        "help": "synthetic (embedded, no file) | trace (Azure CSV) | mooncake (jsonl) | lengths (table + arrivals)"})
    preset: Optional[str] = field(default=None, metadata={
        "help": "azure_conv_2023 | azure_code_2023 | azure_conv_2024 | azure_code_2024 | sharegpt"})
    path: Optional[str] = field(default=None, metadata={"help": "file to read (overrides preset lookup)"})
    sha256: Optional[str] = field(default=None, metadata={"help": "expected hash of path, if checked"})
    rate_scale: float = field(default=1.0, metadata={"help": "compress time: arrivals at t / rate_scale"})
    start_s: float = field(default=0.0, metadata={"help": "window start, seconds into the trace"})
    duration_s: Optional[float] = field(default=None, metadata={"help": "window length (trace seconds)"})
    max_requests: Optional[int] = field(default=None, metadata={"help": "simulate at most this many"})
    train_fraction: float = field(default=0.1, metadata={
        "help": "head of the trace kept as history for learned classifiers, never simulated"})
    # arrival process for synthetic and lengths-only workloads
    arrival: str = field(default="poisson", metadata={"help": "poisson | gamma | varying"})
    rate_rps: float = field(default=40.0, metadata={"help": "mean arrival rate (requests/s)"})
    burst_cv: float = field(default=3.0, metadata={"help": "gamma: coefficient of variation of gaps"})
    rate_period_s: float = field(default=60.0, metadata={"help": "varying: period of the rate sinusoid"})
    rate_amplitude: float = field(default=0.5, metadata={"help": "varying: relative amplitude in [0,1)"})
    num_requests: int = field(default=3000, metadata={"help": "synthetic / lengths: requests generated"})
    seed: Optional[int] = field(default=None, metadata={"help": "defaults to the run's seed"})

    def validate(self) -> None:
        """ConfigError naming the first invalid value (the checks, general and per source, are in
        framework.workloads.loader.check_config, beside the source registry they consult)."""
        from framework.workloads.loader import check_config

        check_config(self)


@dataclass
class RunConfig:
    """Top-level config of one simulation run (``balanceroute ...``)."""

    policy: Any = MISSING
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    seed: int = 0
    progress: bool = field(default=True, metadata={"help": "progress bar on stderr"})
    check_invariants: bool = field(default=False, metadata={"help": "verify bookkeeping every step (slow)"})
    max_steps: int = 100_000_000
    debug: bool = field(default=False, metadata={"help": "show tracebacks on errors"})


def register_configs() -> None:
    """Store the schema nodes; YAML presets extend them via their defaults lists."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    # schemas live outside the selectable groups so they do not show up as options
    cs.store(group="schema/workload", name="workload", node=WorkloadConfig)
    cs.store(group="schema/cluster", name="cluster", node=ClusterConfig)
