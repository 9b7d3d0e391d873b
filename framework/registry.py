"""One registry mechanism for everything chosen by name: policies, classifiers, workload sources, cost models.

Why one: a user types ``policy=br0``, ``workload.kind=trace`` or ``cluster.cost.model=linear`` and expects
the same things from each (a typed config that rejects a misspelt option, a "did you mean" for a misspelt
name, a list in ``--help``); a contributor expects to add an entry by decorating one class in one file.

An entry is a string key, the registered object (usually a class) and, optionally, a dataclass config.
When the registry has a Hydra ``group`` the config is stored in Hydra's ConfigStore under
``group/name`` (so ``group=name`` works on the command line with no YAML). A config class may define
``validate(self)``, raising ConfigError naming the first bad field (use ``config_error``); ``make_config``
calls it, so option checks live in one place per entry and run before anything is built.

``unregister`` removes an entry and its ConfigStore node, so a test-only entry can be scoped to a test
(framework.policy.scoped_policy) and nothing test-only stays in the registry or the ConfigStore.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, Generic, TypeVar

from framework.errors import ConfigError, did_you_mean

T = TypeVar("T")


def config_error(prefix: str, key: str, value: Any, why: str, owner: str = "") -> ConfigError:
    """The one style of an invalid-option message: ``policy.window=0 (lp) must be >= 1.``"""
    who = f" ({owner})" if owner else ""
    return ConfigError(f"{prefix}.{key}={value!r}{who} {why}")


class Checks:
    """Mixin of config dataclasses: helpers for ``validate()`` that raise in the one message style.

    Set ``check_prefix`` (the config's key path, "policy", "workload") and, if the message should say
    whose option it is, override ``check_owner``.
    """

    check_prefix: ClassVar[str] = ""

    def check_owner(self) -> str:
        return ""

    def invalid(self, key: str, why: str) -> ConfigError:
        return config_error(self.check_prefix, key, getattr(self, key), why, self.check_owner())

    def require(self, ok: bool, key: str, why: str) -> None:
        """Raise ``invalid(key, why)`` unless ``ok``."""
        if not ok:
            raise self.invalid(key, why)

    def require_choice(self, key: str, options: Iterable[str]) -> None:
        opts = tuple(options)
        value = getattr(self, key)
        if value not in opts:
            raise self.invalid(key, f"must be one of {', '.join(opts)}." + did_you_mean(str(value), opts))

    def require_number(self, key: str, low: float, what: str = "", integer: bool = False,
                       strict: bool = False) -> None:
        """A finite number >= low (> low if ``strict``), whole if ``integer``; ``what`` words the rule."""
        v = getattr(self, key)
        ok = isinstance(v, (int, float)) and math.isfinite(v) and (v > low if strict else v >= low) \
            and (not integer or int(v) == v)
        if not ok:
            rule = what or f"{'an integer ' if integer else ''}{'>' if strict else '>='} {low}"
            raise self.invalid(key, f"must be {rule}.")


def validate_config(cfg: Any) -> Any:
    """Run ``cfg.validate()`` when the config defines one; return cfg."""
    check = getattr(cfg, "validate", None)
    if callable(check):
        check()
    return cfg


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: the object, its config class (or None) and a one-line description."""

    name: str
    obj: T
    config: type | None
    help: str


class Registry(Generic[T]):
    """String keys -> objects, with typed configs in Hydra's ConfigStore and "did you mean" errors.

    ``kind`` names the thing in messages ("policy", "classifier"); ``hint`` says how a user chooses one
    ("Choose one with policy=NAME."); ``group`` is the Hydra config group the configs go to (None: the
    configs are not command-line options of their own); ``discover`` imports the modules whose
    decorators fill the registry (called once, before the first lookup); ``key`` is the config key that
    names an entry ("workload.kind"), quoted in the unknown-name message.
    """

    def __init__(self, kind: str, hint: str = "", group: str | None = None,
                 discover: Callable[[], None] | None = None, key: str = "") -> None:
        self.kind = kind
        self.key = key
        self.hint = hint
        self.group = group
        self._discover = discover
        self._discovered = discover is None
        self._entries: dict[str, Entry[T]] = {}

    # --- registration ----------------------------------------------------------------------------
    def register(self, name: str, obj: T, config: type | None = None, help: str = "") -> T:
        """Register ``obj`` under ``name``; a second, different object under the same name is an error."""
        if not name or not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if config is not None and not is_dataclass(config):
            raise TypeError(f"config of {self.kind} {name!r} must be a dataclass, got {config!r}")
        old = self._entries.get(name)
        if old is not None and old.obj is not obj:
            where = getattr(old.obj, "__module__", "?"), getattr(obj, "__module__", "?")
            raise ValueError(f"{self.kind} name {name!r} is registered twice ({where[0]} and {where[1]})")
        text = help or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
        self._entries[name] = Entry(name, obj, config, text)
        if self.group and config is not None:
            self._store(name, config)
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (and its ConfigStore node); unknown names are ignored."""
        if self._entries.pop(name, None) is not None and self.group:
            from hydra.core.config_store import ConfigStore

            node: dict = ConfigStore.instance().repo
            for part in self.group.split("/"):  # the store nests groups: "schema/workload" -> [schema][workload]
                node = node.get(part, {})
            node.pop(f"{name}.yaml", None)

    def _store(self, name: str, config: type) -> None:
        from hydra.core.config_store import ConfigStore

        names = {f.name for f in fields(config)}
        node = config(name=name) if "name" in names else config()
        ConfigStore.instance().store(group=self.group, name=name, node=node)

    # --- lookup ----------------------------------------------------------------------------------
    def _load(self) -> None:
        if not self._discovered:
            self._discovered = True  # set first: discovery imports modules that register here
            assert self._discover is not None
            self._discover()

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def entry(self, name: str) -> Entry[T]:
        """The entry called ``name``, or a ConfigError with the closest names and how to choose."""
        self._load()
        if name not in self._entries:
            hint = f" {self.hint}" if self.hint else ""
            what = f"{self.key}={name!r} is not a known {self.kind}." if self.key else \
                f"Unknown {self.kind} {name!r}."
            raise ConfigError(what + did_you_mean(str(name), self._entries) + hint)
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    # --- configs ---------------------------------------------------------------------------------
    def make_config(self, name: str, values: Mapping[str, Any] | Any = None, prefix: str | None = None) -> Any:
        """The validated config of entry ``name`` from a mapping (a DictConfig is fine) or an instance.

        An unknown option is a ConfigError with "did you mean"; then the config's validate() runs.
        """
        entry = self.entry(name)
        cls = entry.config
        if cls is None:
            raise TypeError(f"{self.kind} {name!r} has no config class")
        if values is None:
            values = {}
        if not isinstance(values, cls):
            from omegaconf import DictConfig, OmegaConf

            if isinstance(values, DictConfig):
                values = OmegaConf.to_container(values, resolve=True)
            values = dict(values)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                where = prefix or self.kind
                raise ConfigError(f"{self.kind.capitalize()} {name!r} has no option(s) {', '.join(unknown)}."
                                  + did_you_mean(unknown[0], known)
                                  + f" (see {cls.__name__}; set options as {where}.KEY=VALUE)")
            if "name" in known:
                values.setdefault("name", name)
            values = cls(**values)
        return validate_config(values)
