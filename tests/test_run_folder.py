"""The run folder's files: readable by others as the umask allows, atomic, traceable to the code."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from framework.provenance import code_provenance
from framework.results import write_json_atomic, write_run

ROOT = Path(__file__).resolve().parent.parent


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_result_files_honour_the_umask(tmp_path, umask, expected):
    """Issue 9.4: mkstemp made every result file 0600, unreadable to a colleague or a shared sweep."""
    old = os.umask(umask)
    try:
        df = pd.DataFrame({"a": [1, 2]})
        write_run(tmp_path / "run", {"x": 1}, df, df)
        write_json_atomic(tmp_path / "run" / "extra.json", [1])
    finally:
        os.umask(old)
    for name in ("summary.json", "steps.parquet", "requests.parquet", "extra.json"):
        assert _mode(tmp_path / "run" / name) == expected, name
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "extra.json", "requests.parquet", "steps.parquet", "summary.json"]  # no temp file left


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    f = tmp_path / "s.json"
    write_json_atomic(f, {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(f, {"bad": object()})
    assert json.loads(f.read_text()) == {"old": True} and os.listdir(tmp_path) == ["s.json"]


def test_provenance_in_this_checkout():
    """Issue 9.13: the package version, the commit and whether the tree had local changes."""
    code_provenance.cache_clear()  # read now, next to git below: the cached value may predate a commit
    p = code_provenance()
    assert p["code_version"] == "0.1.0"  # pyproject.toml's version
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        assert p["git_commit"] == head.strip() and len(p["git_commit"]) == 40
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        assert p["git_dirty"] is bool(dirty.strip())


def test_provenance_outside_a_git_checkout(tmp_path, monkeypatch):
    code_provenance.cache_clear()
    try:
        assert code_provenance(tmp_path) == {"code_version": "0.1.0", "git_commit": None, "git_dirty": None}
        monkeypatch.setenv("PATH", str(tmp_path))  # no git binary at all
        code_provenance.cache_clear()
        assert code_provenance(ROOT)["git_commit"] is None
    finally:
        code_provenance.cache_clear()
