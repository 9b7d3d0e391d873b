"""Sweep aggregation: collect the summary.json of every run folder under a directory into one table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import TraceFormatError


def find_runs(root: str | Path) -> list[Path]:
    """Complete run folders under root: those holding a summary.json (written last, so it marks
    completeness). The one run-folder discovery of every tool that walks a sweep."""
    r = Path(root)
    if not r.is_dir():
        raise TraceFormatError(f"sweep folder {str(r)!r} does not exist or is not a folder.")
    return sorted(f.parent for f in r.rglob("summary.json"))


def load_summaries(root: Path) -> pd.DataFrame:
    """One row per complete run folder."""
    rows = []
    for d in find_runs(root):
        s = json.loads((d / "summary.json").read_text())
        s["run_dir"] = str(d)
        rows.append(s)
    return pd.DataFrame(rows)


def mean_spread(df: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and sample standard deviation of each metric per group (std is 0 for a single run)."""
    g = df.groupby(by, sort=False)[metrics]
    mean = g.mean()
    std = g.std(ddof=1).fillna(0.0)
    n = g.size().rename("runs")
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{m}_{stat}" for stat, m in out.columns]
    return out.join(n).reset_index()


def fmt_mean_std(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)
