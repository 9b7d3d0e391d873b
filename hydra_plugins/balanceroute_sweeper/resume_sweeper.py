"""``hydra/sweeper=resume``: Hydra's basic (cartesian) sweeper that skips every run already complete.

Why a sweeper: resumption then holds for ``balanceroute --multirun`` itself and under every launcher
(joblib, submitit, ray), not only for the figure scripts. A job counts as done when a folder under the
sweep directory holds summary.json and its recorded overrides are the job's (state.run_identity); a
killed run has no summary.json, so it is simply run again. Unlike the basic sweeper, every job of a
batch runs even when one fails; the failures are listed together at the end (non-zero exit).
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict

from framework.config import config_hash
from hydra_plugins.balanceroute_sweeper import state as st

log = logging.getLogger(__name__)


@dataclass
class ResumeSweeperConf:
    _target_: str = "hydra_plugins.balanceroute_sweeper.resume_sweeper.ResumeSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="resume", node=ResumeSweeperConf,
                             provider="balanceroute")


class ResumeSweeper(BasicSweeper):
    """The basic sweeper's grid, minus the runs the sweep folder already holds."""

    def _reusable(self, run_dir: Path | None, job: List[str]) -> bool:
        """A stored run counts only if it ran the config this job composes now: the same overrides can
        mean another config once a preset or variant file changes (issue 9's stale-reuse defect)."""
        if run_dir is None:
            return False
        try:
            stored = json.loads((run_dir / "summary.json").read_text()).get("config_hash")
        except (OSError, ValueError):
            return False
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        with open_dict(cfg):
            del cfg["hydra"]  # runtime fields (output_dir, ...) exist only inside the job
        return stored is not None and stored == config_hash(cfg)

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params = self._parse_config() + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = [job for batch in self.split_arguments(parser.parse_overrides(params), None) for job in batch]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        done = st.complete_runs(sweep_dir)
        todo, stale = [], 0
        for j in jobs:
            stored = done.get(st.run_identity(j))
            if not self._reusable(stored, j):
                todo.append(j)
                stale += stored is not None  # complete, but made with another config: rerun
        st.write_state(sweep_dir, jobs, len(jobs) - len(todo), stale)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(f"sweep: {len(jobs)} runs, {len(jobs) - len(todo)} already complete in {sweep_dir}, "
                 f"{len(todo)} to run ({stale} of them stale: stored with another config)")
        self.overrides = list(self.split_overrides_to_chunks(todo, self.max_batch_size)) if todo else []
        returns, failed = [], []
        idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=idx)
            idx += len(batch)
            for ov, r in zip(batch, results):
                if r.status == JobStatus.FAILED:
                    failed.append(f"{' '.join(ov)}: {type(r._return_value).__name__}: {r._return_value}")
            returns.append(results)
        if failed:
            raise HydraException(f"{len(failed)} of {len(todo)} run(s) failed (the others completed):\n  "
                                 + "\n  ".join(failed))
        return returns
