"""``hydra/sweeper=resume``: Hydra's basic (cartesian) sweeper that skips every run already complete.

Why a sweeper: resumption then holds for ``balanceroute --multirun`` itself and under every launcher
(joblib, submitit, ray), not only for the figure scripts. A job counts as done when a folder under the
sweep directory holds summary.json and its recorded overrides are the job's (state.run_identity); a
killed run has no summary.json, so it is simply run again. Unlike the basic sweeper, every job of a
batch runs even when one fails; the failures are listed together at the end (non-zero exit).
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from omegaconf import OmegaConf

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

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params = self._parse_config() + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = [job for batch in self.split_arguments(parser.parse_overrides(params), None) for job in batch]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        done = st.complete_runs(sweep_dir)
        todo = [j for j in jobs if st.run_identity(j) not in done]
        st.write_state(sweep_dir, jobs, len(jobs) - len(todo))
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(f"sweep: {len(jobs)} runs, {len(jobs) - len(todo)} already complete in {sweep_dir}, "
                 f"{len(todo)} to run")
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
