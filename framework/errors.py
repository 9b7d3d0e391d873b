"""User-facing errors: one paragraph that names the culprit and the fix, no traceback.

Every error a user can cause (bad trace, unknown preset, invalid placement, config typo) is raised as a
``UserError`` subclass; the CLI prints its message and exits non-zero. Set ``debug=true`` (or the
environment variable ``BALANCEROUTE_DEBUG=1``) to see the traceback as well.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """An error caused by input the user controls; its message says what and how to fix it."""

    exit_code = 2


class TraceFormatError(UserError):
    """A trace file is missing, empty, or has a bad column/value."""


class ConfigError(UserError):
    """An unknown name or an invalid value in the configuration."""


class PlacementError(UserError):
    """A policy returned a placement the cluster cannot accept."""


class OracleAccessError(UserError):
    """A non-oracle component asked for ground-truth output lengths."""


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """A 'did you mean' suffix (Gymnasium-style) listing the closest known names."""
    opts = sorted(options)
    close = difflib.get_close_matches(name, opts, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{hint} Known: {', '.join(opts)}."
