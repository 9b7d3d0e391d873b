"""Run-folder names: readable like the grid of a sweep, and never shared by two runs.

conf/config.yaml names a single run ``runs/<overrides>/<time>-p<pid>``: the overrides say what the run
is (``policy=brh,policy.classifier=oracle``), the time to the microsecond plus the process id make it
unique, so two runs started in the same second (or the same microsecond, by two processes) never write
into one folder. Both resolvers cache their value, so Hydra's launchers (which copy the config's
resolver cache to each job) see the same name in every process.
"""
from __future__ import annotations

import hashlib
import os
import re

from omegaconf import OmegaConf

MAX_NAME = 120  # a file name must stay well under the usual 255-byte limit
_UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+\-\[\]:@%]")


def dir_name(override_dirname: str, empty: str = "defaults") -> str:
    """A folder name from Hydra's ``override_dirname`` (``k=v,k2=v2``): safe characters, bounded length.

    A '/' in a value (``workload.path=/data/t.csv``) would make nested folders and is replaced; a name
    too long for a file system keeps its head and gets a hash of the whole, so it stays unique.
    """
    name = _UNSAFE.sub("_", override_dirname).lstrip(".") or empty
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:10]
        name = f"{name[:MAX_NAME - 12]}..{digest}"
    return name


def mul(*factors: float) -> float:
    """``${br_mul:a,b}``: a product in a config (a trace window's start from the seed, conf/setting/)."""
    out = 1.0
    for f in factors:
        out *= float(f)
    return out


def register_rundir_resolvers() -> None:
    OmegaConf.register_new_resolver("br_dirname", dir_name, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("br_pid", os.getpid, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("br_mul", mul, replace=True)
