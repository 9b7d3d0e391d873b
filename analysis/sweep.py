"""Sweeps: run one through Hydra and collect it (run_sweep), and the aggregation helpers over run folders.

run_sweep calls exactly the command a user would type (``balanceroute --multirun experiment=NAME``), so
a figure's or the comparison's data can be regenerated, resumed or sent to a cluster
(hydra/launcher=...) without their code; the resume sweeper skips every run the sweep folder already
holds, so calling it twice reruns nothing.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from framework.errors import TraceFormatError, UserError


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


# --- running a sweep ------------------------------------------------------------------------------
class SweepFailed(UserError):
    """A figure's sweep exited non-zero (its log says which runs failed and why)."""


def balanceroute_cmd() -> list[str]:
    """The console script next to this interpreter, else the module (same app)."""
    exe = Path(sys.executable).with_name("balanceroute")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "framework.cli"]


def sweep_command(experiment: str, sweep_dir: Path, overrides: Sequence[str] = (),
                  launcher: str | None = None) -> list[str]:
    cmd = [*balanceroute_cmd(), "--multirun", f"experiment={experiment}", f"hydra.sweep.dir={sweep_dir}"]
    if launcher:
        cmd.append(f"hydra/launcher={launcher}")
    return cmd + list(overrides)


def run_sweep(experiment: str, sweep_dir: str | Path, overrides: Sequence[str] = (), *,
              launcher: str | None = None, jobs: int | None = None, quiet: bool = True,
              who: str = "figure") -> pd.DataFrame:
    """Run (or resume) the sweep and return collect's table of the grid's runs.

    The runs' headlines and Hydra's log go to SWEEP_DIR/sweep.log; progress lines and errors stay on stderr.
    """
    sweep_dir = Path(sweep_dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cmd = sweep_command(experiment, sweep_dir, overrides, launcher)
    env = dict(os.environ)
    if jobs is not None:
        env["BALANCEROUTE_JOBS"] = str(jobs)
    print(f"{who}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    log = sweep_dir / "sweep.log"
    with open(log, "a") as f:
        rc = subprocess.run(cmd, stdout=f if quiet else None, env=env).returncode
    if rc != 0:
        tail = "\n".join(log.read_text().splitlines()[-25:]) if quiet else ""
        raise SweepFailed(f"sweep experiment={experiment} exited {rc}; rerun it to finish only what is "
                          f"missing. Last lines of {log}:\n{tail}")
    from analysis.collect import collect, write_collected

    df = collect(sweep_dir, only_grid=True)
    if df.empty:
        raise SweepFailed(f"sweep experiment={experiment} left no complete run in {sweep_dir}.")
    write_collected(sweep_dir, df)
    print(f"{who}: {len(df)} runs of experiment={experiment} in {time.perf_counter() - t0:.0f} s "
          f"({sweep_dir})", file=sys.stderr, flush=True)
    return df
