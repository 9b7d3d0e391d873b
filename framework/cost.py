"""Step cost models: the registry that turns ``cluster.cost`` into per-worker step times t_g.

A cost model is chosen by ``cluster.cost.model`` (``auto`` picks ``fixed`` when every load coefficient
is zero, else ``linear``). Each model has a numeric ``kind`` that the compiled step core
(framework.simcore) switches on, a parameter vector it reads, and a numpy ``step_times`` used by
tests and by anyone calibrating a model against measured steps. A new model is one registered class
here plus one branch in ``simcore.step_times``; nothing else changes.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from framework.cluster import CostConfig
from framework.errors import ConfigError
from framework.registry import Registry

FIXED, LINEAR = 0, 1  # kinds understood by framework.simcore.step_times


class CostModel:
    """t_g for one step of every worker, and the barrier step time T = max_g t_g + c_sync."""

    name: ClassVar[str] = ""
    kind: ClassVar[int] = -1

    def __init__(self, cfg: CostConfig) -> None:
        self.cfg = cfg
        self.c_sync = float(cfg.c_sync)

    def params(self) -> np.ndarray:
        """Coefficients in the order the compiled core reads them: c0, c_seq, c_kv, c_pf, c_sync."""
        c = self.cfg
        return np.array([c.c0, c.c_seq, c.c_kv, c.c_pf, c.c_sync], np.float64)

    def step_times(self, n: np.ndarray, s: np.ndarray, P: np.ndarray) -> np.ndarray:
        raise NotImplementedError


COST_MODELS: Registry[type[CostModel]] = Registry(
    "cost model", hint="Choose one with cluster.cost.model=NAME (auto: fixed when no load term, else linear).")


def register_cost_model(name: str):
    """Class decorator: register a CostModel subclass under ``name``."""
    def deco(cls: type[CostModel]) -> type[CostModel]:
        cls.name = name
        return COST_MODELS.register(name, cls)
    return deco


@register_cost_model("fixed")
class FixedCost(CostModel):
    """Every step lasts c0 (+ c_sync) whatever the loads: imbalance is pure load accounting."""

    kind = FIXED

    def __init__(self, cfg: CostConfig) -> None:
        super().__init__(cfg)
        if not cfg.is_fixed:
            raise ConfigError(f"cluster.cost.model=fixed ignores load, but c_seq={cfg.c_seq}, c_kv={cfg.c_kv}, "
                              f"c_pf={cfg.c_pf} are not all 0; set them to 0 or use cluster.cost.model=linear.")

    def step_times(self, n: np.ndarray, s: np.ndarray, P: np.ndarray) -> np.ndarray:
        return np.full(len(n), float(self.cfg.c0))


@register_cost_model("linear")
class LinearCost(CostModel):
    """t_g = c0 + c_seq*n_g + c_kv*s_g + c_pf*P_g (DESIGN.md section 6)."""

    kind = LINEAR

    def step_times(self, n: np.ndarray, s: np.ndarray, P: np.ndarray) -> np.ndarray:
        c = self.cfg
        return c.c0 + c.c_seq * np.asarray(n) + c.c_kv * np.asarray(s) + c.c_pf * np.asarray(P)


def make_cost_model(cfg: CostConfig) -> CostModel:
    """The registered model ``cfg.model`` names (``auto``: fixed if no load term, else linear)."""
    cfg.validate()
    name = cfg.model
    if name == "auto":
        name = "fixed" if cfg.is_fixed else "linear"
    return COST_MODELS.get(name)(cfg)
