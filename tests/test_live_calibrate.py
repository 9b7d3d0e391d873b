"""analysis.calibrate: cutting a token log into steps (by hand), and recovering the emulator's own cost
constants from a live run against it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis.calibrate import calibrate, fit, step_events
from framework.cluster import ClusterConfig, CostConfig
from framework.live import launch
from framework.live.config import LiveBackendConfig
from framework.live.run import run_live
from framework.results import write_parquet_atomic, write_run
from framework.workload import Workload

COST = dict(c0=0.010, c_seq=4e-4, c_kv=3e-6, c_pf=1e-5)


def test_step_events_by_hand():
    """Two ranks; request 0 (prompt 10) on rank 0 from step 1, request 1 (prompt 5) on rank 1 from step 2."""
    rows = [(0.030, 0, 0, 1), (0.060, 0, 0, 2), (0.061, 1, 1, 1), (0.100, 0, 0, 3), (0.101, 1, 1, 2)]
    tokens = pd.DataFrame(rows, columns=["t_s", "worker", "request_id", "tokens_so_far"])
    reqs = pd.DataFrame({"request_id": [0, 1], "prompt_tokens": [10, 5]})
    X, y = step_events(tokens, reqs, 2, gap=0.01)
    # step 0 has no predecessor; steps 1 and 2 are kept: durations between median arrivals
    np.testing.assert_allclose(y, [0.0605 - 0.030, 0.1005 - 0.0605])
    # step 1: rank 0 runs request 0 at load 10 + 2 - 1; rank 1 prefills request 1 (n 1, s 5, P 5)
    np.testing.assert_allclose(X[0], [[1, 1, 11, 0], [1, 1, 5, 5]])
    np.testing.assert_allclose(X[1], [[1, 1, 12, 0], [1, 1, 6, 0]])


def test_fit_recovers_exact_constants_of_a_barrier_model():
    rng = np.random.default_rng(0)
    X = np.concatenate([np.ones((300, 3, 1)), rng.integers(0, 40, (300, 3, 1)),
                        rng.integers(0, 50_000, (300, 3, 1)), rng.integers(0, 3000, (300, 3, 1))], axis=2)
    c = np.array([COST[k] for k in ("c0", "c_seq", "c_kv", "c_pf")])
    r = fit(X, (X @ c).max(axis=1))
    np.testing.assert_allclose([r[k] for k in COST], c, rtol=1e-4)
    assert r["rms_error_s"] < 1e-7 and r["r2"] > 0.999999


def calibration_workload(n: int = 160) -> Workload:
    """Long and short prompts mixed, so running count, load and prefill vary independently."""
    rng = np.random.default_rng(0)
    long = rng.random(n) < 0.3
    arr = np.cumsum(rng.exponential(1 / 12.0, n))
    return Workload("calibration", arr - arr[0], np.where(long, rng.integers(1500, 3000, n),
                                                          rng.integers(20, 100, n)), rng.integers(30, 150, n))


@pytest.mark.slow
def test_calibration_on_an_emulator_run_recovers_its_constants_within_10pct(tmp_path):
    args = [a for k, v in COST.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    with launch.emulator(2, "--time-scale", "1.0", *args) as srv:
        cl = ClusterConfig(workers=2, cost=CostConfig(name="calibration", **COST))
        out = run_live(LiveBackendConfig(url=srv.url, time_scale=1.0), "round_robin", calibration_workload(), cl, 0)
    write_parquet_atomic(tmp_path / "tokens.parquet", out.tokens)
    write_run(tmp_path, out.summary, out.steps, out.requests)
    r = calibrate(tmp_path)
    for k, v in COST.items():
        assert abs(r[k] / v - 1) <= 0.10, (k, r[k], v, r)
    assert r["mean_rel_error"] < 0.10 and r["steps"] >= 100
    p = subprocess.run([sys.executable, "-m", "analysis.calibrate", str(tmp_path), "--json", str(tmp_path / "fit.json")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "R^2" in p.stdout
    assert json.loads((tmp_path / "fit.json").read_text())["c0"] == pytest.approx(r["c0"])


def test_calibrate_says_what_is_missing(tmp_path):
    p = subprocess.run([sys.executable, "-m", "analysis.calibrate", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "no tokens.parquet" in p.stderr
