"""Typed configs of the ``backend`` group: ``sim`` (the default) and ``live`` (a real deployment).

``backend=live backend.url=URL`` pins every request with the X-data-parallel-rank header (vLLM
internal/hybrid DP); ``backend.urls=[URL0,URL1,...]`` pins by endpoint (one server per rank, vLLM
external DP). Times named ``*_s`` under "timeouts" are wall-clock seconds; ``time_scale`` maps the
workload's seconds onto the wall clock (0.5 replays twice as fast) and back for the results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from framework.errors import ConfigError

PIN_MODES = ("auto", "header", "endpoint", "sglang")


@dataclass
class SimBackendConfig:
    """Simulate (framework.simulator); no options."""

    name: str = "sim"


@dataclass
class LiveBackendConfig:
    """Drive an OpenAI-compatible data-parallel deployment in real time (framework.live)."""

    name: str = "live"
    url: Optional[str] = field(default=None, metadata={
        "help": "one endpoint for all ranks; a request is pinned by the X-data-parallel-rank header"})
    urls: Optional[list[str]] = field(default=None, metadata={
        "help": "one endpoint per rank (external DP); rank g is urls[g]"})
    pin: str = field(default="auto", metadata={
        "help": "auto | header (vLLM) | sglang (body routed_dp_rank + header) | endpoint"})
    model: Optional[str] = field(default=None, metadata={"help": "model name; null = first of /v1/models"})
    time_scale: float = field(default=1.0, metadata={
        "help": "wall seconds per workload second (0.5 = twice as fast); results are in workload seconds"})
    tick_s: Optional[float] = field(default=None, metadata={
        "help": "router decision and sampling period (workload seconds); null = cluster c0 + c_sync"})
    token_id_low: int = field(default=100, metadata={"help": "prompt token ids drawn from [low, high)"})
    token_id_high: int = field(default=1000)
    connect_timeout_s: float = field(default=5.0, metadata={"help": "TCP connect + response headers"})
    first_token_timeout_s: float = field(default=600.0, metadata={
        "help": "request sent -> first token (includes queueing at the rank)"})
    token_timeout_s: float = field(default=30.0, metadata={"help": "longest gap between two tokens"})
    max_attempts: int = field(default=3, metadata={
        "help": "tries per request (a broken stream is retried from scratch); then it is failed"})
    probe_interval_s: float = field(default=2.0, metadata={"help": "how often a down rank is probed"})
    give_up_s: float = field(default=60.0, metadata={
        "help": "with every rank down this long, the requests still waiting are failed"})
    scrape_metrics: bool = field(default=True, metadata={"help": "read the servers' /metrics (vllm:*)"})
    metrics_interval_s: float = field(default=1.0, metadata={"help": "period of /metrics scrapes"})
    record_tokens: bool = field(default=True, metadata={
        "help": "write tokens.parquet (one row per streamed token) for calibration"})
    max_run_s: float = field(default=86400.0, metadata={"help": "abort the run after this long"})

    def validate(self, workers: int) -> None:
        """Reject contradictory or impossible settings before anything is sent."""
        if (self.url is None) == (not self.urls):
            raise ConfigError("backend=live needs exactly one of backend.url=URL (one endpoint, pinned by "
                              "header) or backend.urls=[URL0,...] (one endpoint per rank).")
        if self.pin not in PIN_MODES:
            raise ConfigError(f"backend.pin={self.pin!r} is not one of {', '.join(PIN_MODES)}.")
        if self.urls and self.pin not in ("auto", "endpoint"):
            raise ConfigError(f"backend.pin={self.pin} needs backend.url; with backend.urls requests are "
                              "pinned by endpoint (backend.pin=endpoint).")
        if self.url and self.pin == "endpoint":
            raise ConfigError("backend.pin=endpoint needs backend.urls=[URL0,URL1,...], one per rank.")
        if self.urls and len(self.urls) != workers:
            raise ConfigError(f"backend.urls has {len(self.urls)} endpoint(s) but cluster.workers={workers}; "
                              "give one URL per rank or set cluster.workers.")
        for u in ([self.url] if self.url else list(self.urls or [])):
            if not str(u).startswith(("http://", "https://")):
                raise ConfigError(f"backend url {u!r} must start with http:// or https://.")
        for k in ("time_scale", "connect_timeout_s", "first_token_timeout_s", "token_timeout_s",
                  "probe_interval_s", "give_up_s", "metrics_interval_s", "max_run_s"):
            if not getattr(self, k) > 0:
                raise ConfigError(f"backend.{k}={getattr(self, k)} must be > 0.")
        if self.tick_s is not None and not self.tick_s > 0:
            raise ConfigError(f"backend.tick_s={self.tick_s} must be > 0 (or null).")
        if self.max_attempts < 1:
            raise ConfigError(f"backend.max_attempts={self.max_attempts} must be >= 1.")
        if not 0 <= self.token_id_low < self.token_id_high:
            raise ConfigError("backend.token_id_low must be >= 0 and below backend.token_id_high.")

    @property
    def pin_mode(self) -> str:
        if self.pin != "auto":
            return self.pin
        return "endpoint" if self.urls else "header"

    def endpoint(self, rank: int) -> str:
        base = self.urls[rank] if self.urls else self.url
        return str(base).rstrip("/")


def register_backend_configs() -> None:
    """Schemas of the backend group (conf/backend/*.yaml extend them)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="schema/backend", name="sim", node=SimBackendConfig)
    cs.store(group="schema/backend", name="live", node=LiveBackendConfig)
