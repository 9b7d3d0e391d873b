"""A sweep finishes every job it can: a failing job is recorded in its folder, the others go on.

Each job runs inside ``record_failures``: an error is written to the job's folder as ``failed.json``
(instead of ending the whole sweep, as a raised SystemExit would under Hydra's basic launcher), and
``SweepReport`` (a Hydra callback, in the launching process) lists the failed jobs once the sweep is over
and makes the command exit non-zero. The record lives in the job folder, not in memory, so the report
also works when jobs run in other processes or on other machines (joblib, submitit launchers).
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from framework.errors import UserError

FAILED = "failed.json"
SUMMARY = "summary.json"


def record_failures(job: Callable[[], Any], job_dir: Path, overrides: list[str]) -> Any:
    """Run ``job``; on an error, write ``job_dir/failed.json`` and return None instead of raising."""
    try:
        return job()
    except Exception as e:  # a sweep goes on after any job's error, a bug's as well as a typo's
        from framework.results import write_json_atomic

        user = isinstance(e, UserError)
        write_json_atomic(job_dir / FAILED, {
            "overrides": list(overrides), "error": str(e), "type": type(e).__name__, "user_error": user,
            "traceback": None if user else traceback.format_exc()})
        print(f"balanceroute: error in job {' '.join(overrides) or '(no overrides)'}: {e}", file=sys.stderr)
        return None


def clear_previous(job_dir: Path) -> None:
    """A folder describes one run: drop an earlier run's completion marker or failure record."""
    for name in (SUMMARY, FAILED):
        (job_dir / name).unlink(missing_ok=True)


class SweepReport(Callback):
    """List a sweep's failed jobs when it ends and exit non-zero (2 if every failure is a user error)."""

    def __init__(self) -> None:
        self.t0 = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.t0 = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failed, done = sweep_outcome(sweep_dir, since=self.t0 - 1.0)
        if not failed:
            return
        lines = [f"  {' '.join(f['overrides']) or '(no overrides)'}: {f['error']}" for f in failed]
        print(f"balanceroute: error: {len(failed)} of {len(failed) + done} sweep job(s) failed "
              f"(the other {done} finished; folders under {sweep_dir}):\n" + "\n".join(lines),
              file=sys.stderr)
        sys.exit(2 if all(f["user_error"] for f in failed) else 1)


def sweep_outcome(sweep_dir: Path, since: float = 0.0) -> tuple[list[dict], int]:
    """The failure records and the count of finished runs written under ``sweep_dir`` since ``since``."""
    failed = [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob(FAILED)) if p.stat().st_mtime >= since]
    done = sum(1 for p in sweep_dir.rglob(SUMMARY) if p.stat().st_mtime >= since)
    return failed, done
