"""Run a figure's grid through Hydra (``balanceroute --multirun experiment=NAME``) and collect it.

The figure scripts call exactly the command a user would type, so a figure's data can be regenerated,
resumed or sent to a cluster (hydra/launcher=...) without the figure code. The resume sweeper skips
every run the sweep folder already holds, so calling a figure twice reruns nothing.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.collect import collect, write_collected
from framework.errors import UserError


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
    df = collect(sweep_dir, only_grid=True)
    if df.empty:
        raise SweepFailed(f"sweep experiment={experiment} left no complete run in {sweep_dir}.")
    write_collected(sweep_dir, df)
    print(f"{who}: {len(df)} runs of experiment={experiment} in {time.perf_counter() - t0:.0f} s "
          f"({sweep_dir})", file=sys.stderr, flush=True)
    return df
