"""Cluster shape and the step cost coefficients (DESIGN.md 2, 6); framework.cost turns them into t_g."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from framework.errors import ConfigError


@dataclass
class CostConfig:
    """Seconds per step: fixed part, per running sequence, per KV token read, per prefill token."""

    name: str = "fixed"
    model: str = field(default="auto", metadata={
        "help": "cost model (framework.cost): auto | fixed | linear; auto = fixed when c_seq=c_kv=c_pf=0"})
    c0: float = field(default=0.030, metadata={"help": "fixed step time: weight read + all-to-all (s)"})
    c_seq: float = field(default=0.0, metadata={"help": "per running sequence (s)"})
    c_kv: float = field(default=0.0, metadata={"help": "per KV token attended (s)"})
    c_pf: float = field(default=0.0, metadata={"help": "per prefill token processed (s)"})
    c_sync: float = field(default=0.0, metadata={"help": "barrier / collective overhead per step (s)"})

    def validate(self) -> None:
        for k in ("c0", "c_seq", "c_kv", "c_pf", "c_sync"):
            v = getattr(self, k)
            if not np.isfinite(v) or v < 0:
                raise ConfigError(f"cluster.cost.{k}={v} must be a finite number >= 0.")
        if self.c0 + self.c_sync <= 0:
            raise ConfigError("cluster.cost.c0 + cluster.cost.c_sync must be > 0, or time never advances.")

    @property
    def is_fixed(self) -> bool:
        return self.c_seq == 0 and self.c_kv == 0 and self.c_pf == 0


@dataclass
class ClusterConfig:
    """G data-parallel workers with identical limits, and their step cost model."""

    name: str = "fixed"
    workers: int = field(default=16, metadata={"help": "G, number of DP workers"})
    max_running: int = field(default=256, metadata={"help": "B_g, max requests running per worker"})
    kv_capacity_tokens: int = field(default=2_000_000, metadata={"help": "C_g, KV tokens per worker"})
    kv_watermark: float = field(default=0.01, metadata={
        "help": "share of C_g kept free at admission for growth (vLLM's watermark, 1%)"})
    prefill_chunk_tokens: int = field(default=8192,
                                      metadata={"help": "chunked-prefill budget per worker-step; 0 = unlimited"})
    cost: CostConfig = field(default_factory=CostConfig)
    charge_decision_time: bool = field(default=False, metadata={
        "help": "add the router's measured decision time to the simulated step it was made in "
                "(off: decisions take no simulated time; on: runs are no longer bit-reproducible)"})

    def validate(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"cluster.workers={self.workers} must be >= 1.")
        if self.max_running < 1:
            raise ConfigError(f"cluster.max_running={self.max_running} must be >= 1.")
        if self.kv_capacity_tokens < 1:
            raise ConfigError(f"cluster.kv_capacity_tokens={self.kv_capacity_tokens} must be >= 1.")
        if not 0.0 <= self.kv_watermark < 1.0:
            raise ConfigError(f"cluster.kv_watermark={self.kv_watermark} must be in [0, 1).")
        if self.prefill_chunk_tokens < 0:
            raise ConfigError(f"cluster.prefill_chunk_tokens={self.prefill_chunk_tokens} must be >= 0 "
                              "(0 = unlimited).")
        self.cost.validate()
