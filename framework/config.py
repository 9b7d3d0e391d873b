"""Typed Hydra configs (structured-config schema) for the runner: workload/, cluster/, policy/.

YAML presets in conf/ are merged onto these dataclasses, so a misspelt key or a wrong type is rejected by
Hydra with the key's name. Policy configs are registered by ``framework.policy.register_policy``; each
workload kind's config (framework.workloads.config) by ``framework.workloads.loader.register_source``.
"""
from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from framework.cluster import ClusterConfig
from framework.errors import ConfigError, unknown_key_message
from framework.workloads.config import WorkloadConfig


@dataclass
class RunConfig:
    """Top-level config of one simulation run (``balanceroute ...``)."""

    policy: Any = MISSING
    # the base of every kind's config: workload=NAME merges that kind's subclass here (OmegaConf takes the
    # subclass's type, so the kind's own keys are the only ones accepted)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    seed: int = field(default=0, metadata={
        "help": "drives every random choice: synthetic and sharegpt draws, random/p2c, noisy_oracle; "
                "a trace (trace, mooncake, azure_*) has the same requests for every seed"})
    progress: bool = field(default=True, metadata={"help": "progress bar on stderr"})
    check_invariants: bool = field(default=False, metadata={"help": "verify bookkeeping every step (slow)"})
    max_steps: int = field(default=100_000_000, metadata={"help": "stop the simulation after this many steps"})
    record: str = field(default="auto", metadata={
        "help": "auto | full | steps | sampled | summary: what is kept of the steps (docs/simulator.md)"})
    record_every: int = field(default=100, metadata={"help": "record=sampled: keep every K-th step"})
    stream: str = field(default="auto", metadata={
        "help": "auto | true | false: feed a trace file to the simulator chunk by chunk (auto: files over "
                "64 MiB without workload.max_requests), so a week-long trace is never all in memory"})
    debug: bool = field(default=False, metadata={"help": "show tracebacks on errors"})
    backend: Any = field(default_factory=lambda: {"name": "sim"}, metadata={
        "help": "sim (simulate) | live (a real deployment: framework/live, docs/live.md)"})


def register_configs() -> None:
    """Store the schema nodes; YAML presets extend them via their defaults lists."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    # schemas live outside the selectable groups so they do not show up as options; each workload kind's
    # schema (schema/workload/KIND) is stored by its registration in the source registry
    import framework.workloads.loader  # noqa: F401
    cs.store(group="schema/cluster", name="cluster", node=ClusterConfig)
    from framework.live.config import register_backend_configs  # backend=sim|live schemas

    register_backend_configs()


# keys that change how a run reports, never what it computes: left out of the config hash
_NOT_HASHED = ("progress", "debug", "check_invariants", "stream")  # stream: same requests either way


def check_keys(cfg: DictConfig) -> None:
    """Reject every key the schema does not define, including ones added with Hydra's ``+`` prefix.

    Hydra's ``+key=value`` (and ``++``) switches the struct check off for that key, so a misspelt
    ``+workload.max_request=100`` would otherwise run, silently ignoring the option it meant to set.
    """
    from framework.policy import get_policy_class

    schemas: dict[str, type] = {"cluster": ClusterConfig}
    kind = OmegaConf.get_type(cfg.workload) if isinstance(cfg.get("workload"), DictConfig) else None
    if isinstance(kind, type) and issubclass(kind, WorkloadConfig):
        schemas["workload"] = kind  # the composed kind's config: its keys only
    if isinstance(cfg.get("policy"), DictConfig) and cfg.policy.get("name"):
        schemas["policy"] = get_policy_class(str(cfg.policy.name)).config_class
    _check_node(cfg, RunConfig, "", schemas)


def _check_node(node: DictConfig, schema: type, prefix: str, overrides: dict[str, type]) -> None:
    known = {f.name: f for f in fields(schema)}
    types = _field_types(schema)
    for key in node.keys():
        key = str(key)
        full = prefix + key
        if key not in known:
            hook = getattr(schema, "unknown_option", None)  # a schema's own message (workload kinds)
            raise ConfigError(hook(full) if callable(hook) else unknown_key_message(full, known))
        sub = overrides.get(full) or types.get(key)
        value = node._get_node(key)
        if isinstance(value, DictConfig) and not (isinstance(sub, type) and is_dataclass(sub)):
            sub = OmegaConf.get_type(value)  # a field typed Any (backend) holding a structured node
        if isinstance(value, DictConfig) and isinstance(sub, type) and is_dataclass(sub):
            _check_node(value, sub, full + ".", overrides)


def _field_types(schema: type) -> dict[str, Any]:
    """Field types with string annotations (``from __future__ import annotations``) resolved."""
    try:
        return typing.get_type_hints(schema)
    except Exception:  # an annotation that cannot be resolved here: check this level only
        return {f.name: f.type for f in fields(schema) if isinstance(f.type, type)}


def config_hash(cfg: DictConfig) -> str:
    """A short hash of the resolved config, stored in summary.json so a finished run can be matched
    against the run a tool asks for (same folder name is not enough: --quick and full runs differ)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    for k in (*_NOT_HASHED, "hydra"):
        data.pop(k, None)
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
