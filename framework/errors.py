"""User-facing errors: one paragraph that names the culprit and the fix, no traceback.

Every error a user can cause (bad trace, unknown preset, invalid placement, config typo) is raised as a
``UserError`` subclass; the CLI prints its message and exits non-zero. Set ``debug=true`` (or the
environment variable ``BALANCEROUTE_DEBUG=1``) to see the traceback as well.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


USER_ERROR_EXIT = 2  # the exit status of every user error, the project's and Hydra's alike


class UserError(Exception):
    """An error caused by input the user controls; its message says what and how to fix it."""

    exit_code = USER_ERROR_EXIT


class TraceFormatError(UserError):
    """A trace file is missing, empty, or has a bad column/value."""


class ConfigError(UserError):
    """An unknown name or an invalid value in the configuration."""


class PlacementError(UserError):
    """A policy returned a placement the cluster cannot accept."""


class OracleAccessError(UserError):
    """A non-oracle component asked for ground-truth output lengths."""


def did_you_mean(name: str, options: Iterable[str], prefix: str = "", cutoff: float = 0.5) -> str:
    """A 'did you mean' suffix (Gymnasium-style) listing the closest known names.

    ``prefix`` (e.g. ``"workload."``) is shown before each name but left out of the matching, where a
    shared prefix would make every key look alike.
    """
    opts = sorted(options)
    close = difflib.get_close_matches(name, opts, n=3, cutoff=cutoff)
    hint = f" Did you mean {', '.join(repr(prefix + c) for c in close)}?" if close else ""
    return f"{hint} Known: {', '.join(prefix + o for o in opts)}."


def user_message(exc: BaseException) -> str | None:
    """The one-paragraph message for an error the user caused, or None for a bug (keep its traceback).

    Hydra reports composition errors in its own style (search path, "use +key to append", a pointer to
    HYDRA_FULL_ERROR); they are rewritten here so every user error reads alike and names the fix.
    """
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, MissingConfigException) and exc.options is not None and exc.missing_cfg_file:
        group, _, name = str(exc.missing_cfg_file).rpartition("/")
        return (f"Unknown {group or 'config'} {name!r}." + did_you_mean(name, exc.options)
                + f" Choose one with {group}=NAME (balanceroute --help lists them).")
    chain: list[BaseException] = [exc]
    while len(chain) < 20:  # bounded: a chain never needs more, and a cycle must not hang the report
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
    for e in chain:
        if isinstance(e, (ConfigKeyError, AttributeError)) and isinstance(e, OmegaConfBaseException):
            return _unknown_key(e)
    for e in chain:
        if isinstance(e, OmegaConfBaseException) and getattr(e, "full_key", None):
            first = str(e).splitlines()[0]
            return f"Invalid value for {e.full_key}: {first}"
    if isinstance(exc, HydraException):
        return _strip_hydra_noise(str(exc))
    return None


def _unknown_key(e: Exception) -> str:
    full = str(getattr(e, "full_key", "") or getattr(e, "key", ""))
    prefix, _, key = full.rpartition(".")
    schema = getattr(e, "object_type", None)
    hook = getattr(schema, "unknown_option", None)  # a schema's own message (a workload kind's keys)
    if callable(hook):
        return hook(full) + " (balanceroute --help lists every kind's keys.)"
    known = list(getattr(schema, "__dataclass_fields__", {}))
    return unknown_key_message(full, known)


def unknown_key_message(full_key: str, siblings: Iterable[str]) -> str:
    """'Unknown key' with the closest of the keys that exist at that level (``siblings``, bare names)."""
    prefix, _, key = full_key.rpartition(".")
    known = list(siblings)
    hint = did_you_mean(key, known, prefix=prefix + "." if prefix else "", cutoff=0.6) if known else ""
    return (f"Unknown key {full_key!r}.{hint} A '+' prefix does not add keys to this program: every key "
            "it reads is in its schema (balanceroute --help lists them).")


def _strip_hydra_noise(text: str) -> str:
    keep = []
    for line in text.splitlines():
        if line.startswith("Config search path") or "HYDRA_FULL_ERROR" in line:
            break
        if line.startswith("To append to your config use +"):
            continue
        keep.append(line.strip())
    return " ".join(ln for ln in keep if ln)


def report(prog: str, exc: UserError) -> int:
    """Print a user error the one way every tool does (``prog: error: message`` on stderr) and return
    its exit status, so a tool's main ends in ``return report("prog", e)``."""
    import sys

    print(f"{prog}: error: {exc}", file=sys.stderr)
    return exc.exit_code
