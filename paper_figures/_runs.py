"""Per-run tables a figure needs beyond summary.json (steps.parquet, requests.parquet)."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd


def loads(sweep_dir: Path, run_dir: str) -> np.ndarray:
    """(K, G) worker loads in KV tokens, one row per step."""
    st = pd.read_parquet(Path(sweep_dir) / run_dir / "steps.parquet", columns=["step", "worker", "load_tokens"])
    G = int(st["worker"].max()) + 1
    return st.sort_values(["step", "worker"])["load_tokens"].to_numpy().reshape(-1, G)


def requests(sweep_dir: Path, run_dir: str) -> pd.DataFrame:
    return pd.read_parquet(Path(sweep_dir) / run_dir / "requests.parquet")


def safe_share(sweep_dir: Path, run_dir: str) -> float:
    """Share of admitted requests whose worker took, in that step, at most its margin m_g (the safe regime
    of the F-score), margins from the loads of the step before (growth within a step ignored)."""
    L = loads(sweep_dir, run_dir)
    r = requests(sweep_dir, run_dir)
    r = r[r["admit_step"] >= 1]
    g = r.groupby(["admit_step", "worker"])["prompt_tokens"].agg(["sum", "size"]).reset_index()
    k, w = g["admit_step"].to_numpy() - 1, g["worker"].to_numpy()
    m = L[k].max(axis=1) - L[k, w]
    safe = g["sum"].to_numpy() <= m
    return float(g["size"].to_numpy()[safe].sum() / max(1, g["size"].sum()))


def metric(df: pd.DataFrame, key: str) -> pd.Series:
    """A summary key, derived from today's keys where a run predates it (imbalance means per step)."""
    if key in df.columns and df[key].notna().all():
        return df[key].astype(float)
    if key == "imbalance_tokens_mean":
        return df["imbalance_tokens"] / df["steps_with_load"].clip(lower=1)
    if key == "max_min_tokens_mean":
        return pd.Series(np.nan, index=df.index)
    raise KeyError(f"summary key {key!r} is in none of the runs")


def tpot_p95_ms(sweep_dir: Path, run_dir: str) -> float:
    """95th percentile of time per output token over completed requests with more than one token."""
    r = requests(sweep_dir, run_dir)
    r = r[np.isfinite(r["finish_s"]) & (r["output_tokens"] > 1)]
    tpot = (r["finish_s"] - r["first_token_s"]) / (r["output_tokens"] - 1)
    return float(np.percentile(tpot, 95) * 1e3) if len(tpot) else float("nan")


class Setting(NamedTuple):
    """What every run of a figure's grid shares, for its caption."""

    requests: int
    rate_rps: float
    cluster: str
    workers: int


def setting(sweep_dir: Path, df: pd.DataFrame) -> Setting:
    """The setting of the grid's first run (requests simulated, arrival rate, preset, G)."""
    rate = float(run_config(sweep_dir, df["run_dir"].iloc[0]).workload.rate_rps)
    return Setting(int(df["requests_total"].iloc[0]), rate, str(df["cluster"].iloc[0]), int(df["workers"].iloc[0]))


def run_config(sweep_dir: Path, run_dir: str):
    """The run's resolved config as Hydra saved it (for captions: what rate, which preset)."""
    from omegaconf import OmegaConf

    return OmegaConf.load(Path(sweep_dir) / run_dir / ".hydra" / "config.yaml")
