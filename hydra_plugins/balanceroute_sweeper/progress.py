"""Progress of a sweep (runs done / total, time left), printed as each job ends.

A Hydra callback, so it runs where the job runs (in the joblib workers, or in a submitit job, whose log
then holds the line); the count is shared through the sweep folder (state.record_job_end).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from hydra_plugins.balanceroute_sweeper import state as st


class SweepProgress(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        try:
            sweep_dir = Path(config.hydra.sweep.dir)
        except Exception:  # a single run (no sweep): nothing to count
            return
        state = st.read_state(sweep_dir)
        if state is None:
            return
        ok = job_return.status == JobStatus.COMPLETED
        finished = st.record_job_end(sweep_dir, "ok" if ok else "failed")
        print(st.progress_line(state, finished), file=sys.stderr, flush=True)
