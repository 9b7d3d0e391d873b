"""Run folder I/O: tables and summary written atomically (temp file + rename, summary last).

A crash leaves either a complete file or no file with the final name; summary.json appears only after
both tables are in place, so its presence marks a complete run.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from framework.simulator import SimResult
from framework.workload import Workload


def steps_frame(res: SimResult) -> pd.DataFrame | None:
    """The step table as recorded: one row per (step, worker) (full, sampled) or per step (steps)."""
    tab = res.table
    if tab is None:
        return None
    R = len(tab.step)
    if tab.mode == "steps":
        agg = tab.agg
        G = res.workers
        return pd.DataFrame({
            "step": tab.step, "t_start_s": tab.t_start, "duration_s": tab.duration,
            "load_max": agg[:, 0].astype(np.int64), "load_mean": agg[:, 1] / G,
            "load_min": agg[:, 2].astype(np.int64),
            "imbalance_tokens": (G * agg[:, 0] - agg[:, 1]).astype(np.int64),
            "running_max": agg[:, 3].astype(np.int64), "running_mean": agg[:, 4] / G,
            "running_min": agg[:, 5].astype(np.int64), "prefill_tokens": agg[:, 6].astype(np.int64),
            "compute_max_s": agg[:, 7], "compute_mean_s": agg[:, 8],
        })
    G = tab.load.shape[1]
    return pd.DataFrame({
        "step": np.repeat(tab.step, G),
        "t_start_s": np.repeat(tab.t_start, G),
        "duration_s": np.repeat(tab.duration, G),
        "worker": np.tile(np.arange(G, dtype=np.int64), R),
        "load_tokens": tab.load.reshape(-1),
        "running": tab.running.reshape(-1),
        "compute_s": tab.compute.reshape(-1),
        "prefill_tokens": tab.prefill.reshape(-1),
    })


def requests_frame(res: SimResult, workload: Workload | None = None) -> pd.DataFrame:
    """One row per request; arrival and lengths from the run (the workload's where it kept none)."""
    arr = res.req_arrival_s if res.req_arrival_s is not None else workload.arrival_s
    return pd.DataFrame({
        "request_id": np.arange(len(arr), dtype=np.int64),
        "arrival_s": arr,
        "prompt_tokens": res.req_prompt if res.req_prompt is not None else workload.prompt_tokens,
        "output_tokens": res.req_output if res.req_output is not None else workload.output_tokens,
        "worker": res.req_worker,
        "placed_step": res.req_placed_step,
        "admit_step": res.req_admit_step,
        "first_token_s": res.req_first_token_s,
        "finish_s": res.req_finish_s,
        "preemptions": res.req_preemptions,
    })


def _umask() -> int:
    """The process umask, read without changing it (os.umask can only set it) where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[str], Any]) -> None:
    """Write ``path`` through a temp file in the same folder, then rename it into place.

    mkstemp creates the temp file 0600 (so no other user can read it half written); before the rename
    it gets the mode a plain open() would have given it (0666 less the umask), so a colleague or a
    shared sweep folder can read the results as they can read Hydra's .hydra/.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)




def write_json_atomic(path: Path, obj: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=_jsonable)
            f.write("\n")
    write_atomic(Path(path), w)


def write_parquet_atomic(path: Path, df: pd.DataFrame) -> None:
    write_atomic(Path(path), lambda tmp: df.to_parquet(tmp, index=False))


def write_csv_atomic(path: Path, df: pd.DataFrame) -> None:
    write_atomic(Path(path), lambda tmp: df.to_csv(tmp, index=False))


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(Path(path), lambda tmp: Path(tmp).write_text(text))


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_run(run_dir: Path, summary: dict, steps: pd.DataFrame | None,
              requests: pd.DataFrame | None) -> None:
    """Write the run's tables (those it recorded), then its summary (the completion marker)."""
    run_dir = Path(run_dir)
    if steps is not None:
        write_parquet_atomic(run_dir / "steps.parquet", steps)
    if requests is not None:
        write_parquet_atomic(run_dir / "requests.parquet", requests)
    write_json_atomic(run_dir / "summary.json", summary)
