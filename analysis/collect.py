"""Gather a sweep into one table: every complete run's overrides and summary, one row per run.

    python -m analysis.collect SWEEP_DIR      writes SWEEP_DIR/collected.parquet and collected.csv

A run is complete when its folder holds summary.json (written last); folders without it (a killed run)
are counted and left out. Each override of a run (.hydra/overrides.yaml) becomes a column named
``ov.KEY`` (``ov.policy``, ``ov.cluster.workers``, ...), numbers parsed where every value is one, so a
figure selects rows by what it swept, never by folder names. ``run_dir`` is relative to SWEEP_DIR.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from analysis.sweep import find_runs
from framework.errors import TraceFormatError, UserError, report
from framework.results import write_parquet_atomic
from hydra_plugins.balanceroute_sweeper.state import read_overrides, read_state, run_identity

PREFIX = "ov."


def _row(summary_file: Path, root: Path) -> dict:
    try:
        s = json.loads(summary_file.read_text())
    except json.JSONDecodeError as e:
        raise TraceFormatError(f"{str(summary_file)!r} is not valid JSON ({e}); delete that run folder and "
                               "re-run the sweep (it re-runs only what is missing).") from None
    ov = read_overrides(summary_file.parent) or []
    row: dict = {PREFIX + o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] if "=" in o else None for o in ov}
    row["overrides"] = " ".join(sorted(run_identity(ov)))
    row["run_dir"] = str(summary_file.parent.relative_to(root))
    for k, v in s.items():
        row[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return row


def collect(sweep_dir: str | Path, only_grid: bool = False) -> pd.DataFrame:
    """One row per complete run under sweep_dir; with only_grid, only the runs of the sweep's last grid
    (as the resume sweeper recorded it), so stale runs of an earlier grid in the same folder drop out."""
    root = Path(sweep_dir)
    rows = [_row(d / "summary.json", root) for d in find_runs(root)]
    df = pd.DataFrame(rows)
    if only_grid and len(df):
        state = read_state(root)
        if state is not None:
            grid = {" ".join(sorted(j)) for j in state["jobs"]}
            df = df[df["overrides"].isin(grid)].reset_index(drop=True)
    for c in [c for c in df.columns if c.startswith(PREFIX)]:
        num = pd.to_numeric(df[c], errors="coerce")
        if num.notna().sum() == df[c].notna().sum():
            df[c] = num
    return df


def incomplete_runs(sweep_dir: str | Path) -> list[Path]:
    """Run folders Hydra started (they hold .hydra/) that never wrote summary.json."""
    return sorted(p.parent for p in Path(sweep_dir).rglob(".hydra") if not (p.parent / "summary.json").exists())


def write_collected(sweep_dir: str | Path, df: pd.DataFrame) -> tuple[Path, Path]:
    root = Path(sweep_dir)
    pq, csv = root / "collected.parquet", root / "collected.csv"
    write_parquet_atomic(pq, df)
    tmp = root / ".collected.csv.partial"
    df.to_csv(tmp, index=False)
    tmp.replace(csv)
    return pq, csv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.collect", description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("--only-grid", action="store_true", help="keep only the runs of the sweep's last grid")
    a = ap.parse_args(argv)
    try:
        df = collect(a.sweep_dir, only_grid=a.only_grid)
        if df.empty:
            raise TraceFormatError(f"no complete run (a folder with summary.json) under {a.sweep_dir!r}.")
        pq, csv = write_collected(a.sweep_dir, df)
    except UserError as e:
        return report("collect", e)
    bad = incomplete_runs(a.sweep_dir)
    note = f"; {len(bad)} incomplete run folder(s) left out (no summary.json)" if bad else ""
    print(f"collect: {len(df)} runs -> {pq}, {csv}{note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
