"""Every option of every config group composes, builds its typed objects and passes their checks.

Groups are discovered (conf/ folders and ConfigStore groups), so a new group or option is covered
without editing this file; a misspelt key must fail with or without YAML.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from framework.cli import CONF_DIR
from framework.policy import PolicyContext, make_policy
from framework.registry import validate_config
from framework.workload import Workload
from tests.conftest import compose_config

# options that need a value no preset can carry (a file of the user's)
EXTRA = {("workload", "trace"): ["workload.path=user_trace.csv"],
         ("workload", "mooncake"): ["workload.path=user_trace.jsonl"]}


def group_options() -> list[tuple[str, str]]:
    found = set()
    for d in Path(CONF_DIR).iterdir():
        if d.is_dir():
            found |= {(d.name, f.stem) for f in d.glob("*.yaml")}
    repo = ConfigStore.instance().repo
    for group, nodes in repo.items():
        if isinstance(nodes, dict) and group not in ("schema", "hydra"):
            found |= {(group, n.removesuffix(".yaml")) for n in nodes if n.endswith(".yaml")}
    return sorted(found)


OPTIONS = group_options()


def test_the_known_groups_are_discovered():
    groups = {g for g, _ in OPTIONS}
    assert {"policy", "workload", "cluster"} <= groups
    assert ("policy", "br0") in OPTIONS and ("cluster", "fixed") in OPTIONS


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_of_every_group_instantiates(group, option, compose_cfg):
    cfg = compose_cfg([f"{group}={option}", *EXTRA.get((group, option), [])])
    run = OmegaConf.to_object(cfg)  # every typed node (workload, cluster, ...) built as its dataclass
    validate_config(run.workload)
    validate_config(run.cluster)
    train = Workload("train", [0.0, 0.1, 0.2], [10, 20, 30], [5, 6, 7])
    policy = make_policy(cfg.policy, PolicyContext.for_cluster(run.cluster, 0, training=train))
    assert policy.name == cfg.policy.name
    if group == "policy":
        assert policy.name == option


@pytest.mark.parametrize("override", ["workload.max_request=100", "cluster.worker=4", "policy.windw=3"])
def test_a_misspelt_key_fails(override):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        cfg = compose_config(["policy=br0", override])
        make_policy(cfg.policy, PolicyContext(workers=1, max_running=[1], kv_capacity=[10]))
