"""Which code made a result: package version, git commit and whether the tree had local changes.

Stored in every summary.json so a figure can be traced back to the code that produced it. Outside a git
checkout (an installed wheel, a copied tree, no git binary) the git fields are None rather than an error:
a run must never fail for want of provenance.
"""
from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str, cwd: Path) -> Optional[str]:
    try:
        p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


@lru_cache(maxsize=None)
def code_provenance(root: Path = ROOT) -> dict[str, object]:
    """``code_version``, ``git_commit`` and ``git_dirty`` for the tree at ``root`` (cached per process)."""
    try:
        version: Optional[str] = metadata.version("balanceroute")
    except metadata.PackageNotFoundError:
        version = None
    commit = _git("rev-parse", "--verify", "HEAD", cwd=root)
    # the tree must be this checkout's top level, not some repository that happens to contain it
    top = _git("rev-parse", "--show-toplevel", cwd=root)
    if commit is None or top is None or Path(top.strip()).resolve() != root.resolve():
        return {"code_version": version, "git_commit": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=normal", cwd=root)
    return {"code_version": version, "git_commit": commit.strip(),
            "git_dirty": None if status is None else bool(status.strip())}
