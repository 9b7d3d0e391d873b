"""The ``balanceroute --help`` page, generated at startup from the policy registry and the typed schema.

conf/hydra/help/balanceroute.yaml is Hydra's help template; its ``${br_help:SECTION}`` interpolations
call ``help_section`` here. Nothing is hard-coded: a newly registered policy appears with the first line
of its docstring (the registry's entry help) and its options, and every option shows its field's
``metadata={"help": ...}``, so the page cannot drift from the code. The internal schema/* groups are not listed.
"""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("policy", "workload", "cluster", "backend")


def group_options(group: str) -> list[str]:
    """Selectable options of a group: every public registered policy, or the YAML presets in conf/."""
    if group == "policy":
        from framework.policy import available_policies

        return [p for p in available_policies() if not p.startswith("_")]
    from hydra.core.config_store import ConfigStore

    stored = ConfigStore.instance().repo.get(group, {})
    names = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    names |= {n.removesuffix(".yaml") for n in stored if isinstance(stored, dict)}
    return sorted(names)


def _fmt(value: Any) -> str:
    if isinstance(value, DictConfig):
        return "{...}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def option_lines(schema: type, prefix: str, values: DictConfig | None = None, indent: str = "  ") -> list[str]:
    """``prefix.key=value   help`` for each field of a dataclass (nested dataclasses expanded); the
    value is the composed one where ``values`` has it, else the field's default."""
    out: list[str] = []
    for f in dataclasses.fields(schema):
        if f.name == "name" and prefix.startswith("policy"):
            continue  # set by policy=NAME
        if isinstance(values, DictConfig) and f.name in values:  # the composed value
            cur = OmegaConf.select(values, f.name, default=None)
        elif f.default is not dataclasses.MISSING:
            cur = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            cur = f.default_factory()  # type: ignore[misc]
        else:
            cur = "???"
        sub = OmegaConf.get_type(cur) if isinstance(cur, DictConfig) else type(cur)
        if isinstance(sub, type) and dataclasses.is_dataclass(sub):
            out += option_lines(sub, f"{prefix}{f.name}.", cur if isinstance(cur, DictConfig) else None, indent)
            continue
        left = f"{indent}{prefix}{f.name}={_fmt(cur)}"
        help_text = f.metadata.get("help", "")
        out.append(f"{left:<44} {help_text}".rstrip() if help_text else left)
    return out


def policies_section() -> list[str]:
    from framework.policy import POLICIES

    out: list[str] = []
    for e in POLICIES.entries():
        if e.name.startswith("_"):
            continue
        out.append(f"  {e.name}  [{e.obj.family}]  {e.help}")
        out += option_lines(e.config or e.obj.config_class, "policy.", indent="      ")
    return out


def backend_lines() -> list[str]:
    """Each backend's keys, from the schemas stored under schema/backend (none: no backend group)."""
    from hydra.core.config_store import ConfigStore

    out: list[str] = []
    for fname, node in sorted(ConfigStore.instance().repo.get("schema", {}).get("backend", {}).items()):
        schema = OmegaConf.get_type(node.node)
        if isinstance(schema, type) and dataclasses.is_dataclass(schema):
            out.append(f"  backend={fname.removesuffix('.yaml')}  {(schema.__doc__ or '').strip().splitlines()[0]}")
            out += [ln for ln in option_lines(schema, "backend.", indent="      ")
                    if not ln.strip().startswith("backend.name=")]
    return out


def workload_lines(values: DictConfig | None) -> list[str]:
    """The keys every workload kind reads (composed values), then each kind's own keys and its presets."""
    from framework.workloads.config import WorkloadConfig
    from framework.workloads.loader import SOURCES

    now = OmegaConf.select(values, "kind", default=None) if isinstance(values, DictConfig) else None
    common = {f.name for f in dataclasses.fields(WorkloadConfig)}
    out = [f"  every kind (now: kind={now}):"]
    out += [ln for ln in option_lines(WorkloadConfig, "workload.", values, indent="      ")
            if not ln.strip().startswith("workload.kind=")]
    presets = {}
    for name in group_options("workload"):
        kind = _preset_kind(name)
        presets.setdefault(kind, []).append(name)
    for e in SOURCES.entries():
        cfg = e.config
        assert cfg is not None
        out.append(f"  kind={e.name}  {e.help}  (workload={', '.join(presets.get(e.name, [])) or '?'})")
        mine = option_lines(cfg, "workload.", values if e.name == now else None, indent="      ")
        out += [ln for ln in mine if ln.strip().split("=")[0].removeprefix("workload.") not in common]
    return out


def _preset_kind(name: str) -> str | None:
    """The kind a conf/workload preset composes (its schema in the defaults list)."""
    path = CONF_DIR / "workload" / f"{name}.yaml"
    for line in path.read_text().splitlines() if path.is_file() else []:
        if "/schema/workload/" in line:
            return line.split("/schema/workload/")[1].split("@")[0].strip()
    return None


def help_section(section: str, _root_: DictConfig) -> str:
    """One section of the help page (an OmegaConf resolver; ``$`` escaped for Hydra's string.Template)."""
    from framework.cluster import ClusterConfig
    from framework.config import RunConfig

    choices = OmegaConf.select(_root_, "hydra.runtime.choices", default=None) or {}
    if section == "groups":
        lines = [textwrap.fill(f"{', '.join(group_options(g))}   (now: {choices.get(g, '?')})", width=100,
                               initial_indent=f"  {g + ':':<10} ", subsequent_indent=" " * 13) for g in GROUPS]
    elif section == "policies":
        lines = policies_section()
    elif section == "run":
        top = {f.name for f in dataclasses.fields(RunConfig)} - set(GROUPS)
        lines = [ln for ln in option_lines(RunConfig, "", _root_) if ln.strip().split("=")[0] in top]
    elif section == "workload":
        lines = workload_lines(_root_.get("workload"))
    elif section == "cluster":
        lines = option_lines(ClusterConfig, "cluster.", _root_.get("cluster"))
    elif section == "backend":
        lines = backend_lines()
    else:
        raise ValueError(f"unknown help section {section!r}")
    return "\n".join(lines).replace("$", "$$")


def register_help_resolver() -> None:
    OmegaConf.register_new_resolver("br_help", help_section, replace=True)
