"""Shared fixtures: configs composed with Hydra's compose API (run folders under tmp_path), and the
test-only policies, registered only for the tests that ask for them."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from framework.cli import CONF_DIR
from framework.policy import scoped_policy


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The primary config with ``overrides``, as ``balanceroute`` would compose it (no run)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg(overrides)``: a composed config whose ``run_dir`` (added) is a fresh folder under
    tmp_path, so a test can hand it to framework.cli.run_from_config and read the run folder back."""
    count = iter(range(1_000_000))

    def make(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
        cfg = compose_config(overrides)
        run_dir = tmp_path / f"run{next(count)}"
        with open_dict(cfg):
            cfg.run_dir = str(run_dir)
        return cfg

    return make


@pytest.fixture(scope="module")
def test_policies():
    """Register tests/_policies.py's policies for one test module; unregistered afterwards."""
    from tests._policies import TEST_POLICIES

    with contextlib.ExitStack() as stack:
        for name, (cls, cfg) in TEST_POLICIES.items():
            stack.enter_context(scoped_policy(name, cls, cfg))
        yield sorted(TEST_POLICIES)
