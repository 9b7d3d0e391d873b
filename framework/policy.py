"""Policy interface and the one-line registry (``@register_policy("name")``).

Registering a policy also stores its dataclass config in Hydra's ConfigStore under ``policy/NAME``, so
``policy=NAME`` works on the command line, shows in ``balanceroute --help`` and in sweeps, with no YAML
file and no other edit. Every module in the ``algorithms`` package is imported by ``load_all`` so a new
policy is one new file.
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, is_dataclass
from collections.abc import Iterator
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np

from framework.errors import OracleAccessError
from framework.registry import Checks, Registry, validate_config
from framework.oracle import OracleChannel
from framework.view import ClusterView, Placements, StaleView
from framework.workload import Workload

DISPATCH = "dispatch"  # every arrival is placed at once into a worker's local FCFS queue
POOL = "pool"  # requests wait at the router, which admits some into free capacity each step


@dataclass
class PolicyConfig(Checks):
    """Base of every policy's config; ``name`` selects the registered class.

    A subclass checks its options in ``validate`` (raise ``self.invalid(key, why)``), which
    ``make_policy`` runs before the policy is built, so every option check of a policy is in one place.
    ``stale_s`` is every policy's: the staleness of what the router knows is a property of the router's
    information path (vLLM's front-end reads counts every 100 ms, SGLang's every 20 ms), so it sits
    with the policy, and a sweep can give each arm its own (not a cluster.* key, which describes
    engines). Policy.__init__ checks it, so a subclass's validate need not.
    """

    name: str = ""
    stale_s: float = field(default=0.0, metadata={
        "help": "stale view: engines' counters refreshed every this many s (simulated) plus the "
                "router's own placements since; 0 = fresh"})

    check_prefix: ClassVar[str] = "policy"

    def check_owner(self) -> str:
        return self.name

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid option (none here)."""


@dataclass
class PolicyContext:
    """What a policy may know at construction: cluster shape, seed, history; oracle only on request."""

    workers: int
    max_running: np.ndarray
    kv_capacity: np.ndarray
    seed: int = 0
    training: Workload | None = None
    oracle_channel: OracleChannel | None = field(default=None, repr=False)
    oracle_users: list[str] = field(default_factory=list)

    @classmethod
    def for_cluster(cls, cluster: Any, seed: int = 0, training: Workload | None = None,
                    oracle_channel: OracleChannel | None = None) -> "PolicyContext":
        """The context of a run on ``cluster`` (a ClusterConfig): its shape and limits."""
        G = int(cluster.workers)
        return cls(workers=G, max_running=np.full(G, cluster.max_running, np.int64),
                   kv_capacity=np.full(G, cluster.kv_capacity_tokens, np.int64), seed=seed,
                   training=training, oracle_channel=oracle_channel)

    def rng(self, stream: int = 0) -> np.random.Generator:
        """An independent, reproducible random stream for a component."""
        return np.random.default_rng([self.seed, stream])

    def request_oracle(self, component: object) -> OracleChannel:
        """Grant ground truth to a component that is an oracle by name and flag; record the grant."""
        cls = type(component)
        if not getattr(cls, "is_oracle", False):
            raise OracleAccessError(
                f"{cls.__name__} asked for true output lengths but is not an oracle component. Only "
                "classes marked is_oracle = True (e.g. the 'oracle' and 'noisy_oracle' classifiers) may "
                "read them, and runs that do are flagged oracle_used=true.")
        if self.oracle_channel is None:
            raise OracleAccessError(f"{cls.__name__} needs the oracle channel but this run has none "
                                    "(the live backend cannot know output lengths in advance).")
        label = getattr(component, "oracle_label", cls.__name__)
        if label not in self.oracle_users:
            self.oracle_users.append(label)
        return self.oracle_channel

    @property
    def oracle_used(self) -> bool:
        return bool(self.oracle_users)


class Policy(ABC):
    """A router. Subclasses implement ``decide`` and set ``family``.

    Must implement:
      decide(view) -> Placements: for family DISPATCH, place every waiting request (they are the new
      arrivals) on some worker; for family POOL, place any subset of the waiting requests within each
      worker's free slots and free KV (the simulator validates and raises PlacementError otherwise).
    May define:
      on_complete(request_ids, workers, output_tokens): called once per step with the requests that
      finished and the tokens each produced, as a front-end learns of finished streams (vLLM's exact
      in-flight counter needs it; so does a predictor that learns from completed requests). A finished
      request's length is history, not foresight. Not defined on this base class so policies without
      it cost nothing.
      describe() for extra summary fields.
    The framework calls ``route(view)``, which hands ``decide`` a stale view when ``config.stale_s`` > 0
    (framework.view.StaleView: what is stale and what is the router's own is listed there);
    ``stale_schedule`` says when that view refreshes ("publish": on a grid of stale_s, "read": stale_s
    after the last refresh). Calling ``decide`` directly applies the rule to the view given, as is.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = DISPATCH
    config_class: ClassVar[type] = PolicyConfig
    is_oracle: ClassVar[bool] = False
    stale_schedule: ClassVar[str] = "publish"

    def __init__(self, config: Any, context: PolicyContext) -> None:
        self.config = validate_config(config)  # (make_policy has run it too; a direct call must not skip it)
        self.context = context
        self.G = context.workers
        stale = getattr(config, "stale_s", 0.0)
        if isinstance(config, Checks):
            config.require_number("stale_s", 0, ">= 0 seconds")
        self.stale_view = StaleView(stale, self.stale_schedule) if stale > 0 else None

    def route(self, view: ClusterView) -> Placements:
        """One decision as the framework makes it: ``decide`` on the view this router can know."""
        sv = self.stale_view
        if sv is None:
            return self.decide(view)
        seen = sv.view(view)
        pl = self.decide(seen)
        sv.placed(seen, pl)
        return pl

    @abstractmethod
    def decide(self, view: ClusterView) -> Placements:
        """Return placements for this step."""

    def describe(self) -> dict[str, Any]:
        """Extra fields for summary.json (e.g. a classifier's name)."""
        return {}


def load_all() -> None:
    """Import every module of the ``algorithms`` package so their decorators run (once)."""
    POLICIES.names()


def _discover() -> None:
    import algorithms

    for mod in pkgutil.iter_modules(algorithms.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"algorithms.{mod.name}")


POLICIES: Registry[type[Policy]] = Registry("policy", "Choose one with policy=NAME.", group="policy",
                                            discover=_discover)
P = TypeVar("P", bound=type[Policy])


def register_policy(name: str, config: type | None = None) -> Callable[[P], P]:
    """Class decorator: register a policy under ``name`` with its dataclass ``config``."""

    def deco(cls: P) -> P:
        cfg_cls = config or PolicyConfig
        if not is_dataclass(cfg_cls) or "name" not in {f.name for f in fields(cfg_cls)}:
            raise TypeError(f"config of policy {name!r} must be a dataclass deriving from PolicyConfig")
        POLICIES.register(name, cls, cfg_cls)
        cls.name = name
        cls.config_class = cfg_cls
        return cls

    return deco


@contextlib.contextmanager
def scoped_policy(name: str, cls: P, config: type | None = None) -> Iterator[P]:
    """Register ``cls`` as ``name`` inside a ``with`` block only (test-only policies), then remove it."""
    register_policy(name, config)(cls)
    try:
        yield cls
    finally:
        POLICIES.unregister(name)


def available_policies() -> list[str]:
    return POLICIES.names()


def get_policy_class(name: str) -> type[Policy]:
    return POLICIES.get(name)


def make_policy(config: Any, context: PolicyContext) -> Policy:
    """Build a policy from its config (a dataclass, a DictConfig, a dict, or just a name), validated."""
    if isinstance(config, str):
        config = {"name": config}
    name = config.get("name", "") if hasattr(config, "get") else config.name
    cls = get_policy_class(name)
    return cls(POLICIES.make_config(name, config), context)
