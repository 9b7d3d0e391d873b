"""Config-driven tests: every option of every group composes and runs; the CLI contract; bad inputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from framework.cli import CONF_DIR, run_from_config
from framework.policy import available_policies

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "balanceroute"
SMALL = ["workload.num_requests=300", "workload.rate_rps=60", "cluster.workers=4", "progress=false"]
SUMMARY_KEYS = {"policy", "workers", "requests_total", "requests_completed", "steps", "avg_dp_imbalance",
                "balance_ratio", "idle_fraction", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s",
                "tpot_p50_s", "tpot_p99_s", "decision_ms_p50", "decision_ms_p99", "oracle_used", "seed"}
STEP_COLS = {"step", "t_start_s", "duration_s", "worker", "load_tokens", "running", "compute_s"}
REQ_COLS = {"request_id", "arrival_s", "prompt_tokens", "output_tokens", "worker", "admit_step",
            "first_token_s", "finish_s"}


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose("config", overrides=overrides)


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))


PUBLIC_POLICIES = [p for p in available_policies() if not p.startswith("_")]


@pytest.mark.parametrize("policy", PUBLIC_POLICIES)
def test_every_registered_policy_runs_from_config(policy, tmp_path):
    overrides = [f"policy={policy}", *SMALL]
    if policy in ("bfio",):
        overrides.append("workload.num_requests=120")
    s = run_from_config(compose_cfg(overrides), tmp_path)
    assert s["requests_completed"] == s["requests_total"] > 0
    assert SUMMARY_KEYS <= set(s)
    assert set(pd.read_parquet(tmp_path / "steps.parquet").columns) >= STEP_COLS
    assert set(pd.read_parquet(tmp_path / "requests.parquet").columns) >= REQ_COLS


@pytest.mark.parametrize("cluster", group_options("cluster"))
def test_every_cluster_preset_composes_and_runs(cluster, tmp_path):
    s = run_from_config(compose_cfg([f"cluster={cluster}", "policy=round_robin", *SMALL]), tmp_path)
    assert s["cluster"] == cluster and s["requests_completed"] == s["requests_total"] == 270  # 10% trains


@pytest.mark.parametrize("workload", group_options("workload"))
def test_every_workload_preset_composes(workload):
    cfg = compose_cfg([f"workload={workload}"])
    assert cfg.workload.name == workload


def run_cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    env.pop("BALANCEROUTE_DEBUG", None)
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=cwd or ROOT,
                          timeout=300)


def test_cli_contract_writes_run_folder(tmp_path):
    p = run_cli("policy=round_robin", *SMALL, f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 0, p.stderr
    run = tmp_path / "run"
    s = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(s) and s["policy"] == "round_robin" and s["workers"] == 4
    assert (run / ".hydra" / "config.yaml").exists()
    steps = pd.read_parquet(run / "steps.parquet")
    assert len(steps) == s["steps"] * 4
    assert str(run) in p.stdout and "avg_dp_imbalance" in p.stdout
    assert not list(run.glob("*.partial"))


def test_cli_help_lists_registered_policies():
    p = run_cli("--help")
    assert p.returncode == 0
    for name in PUBLIC_POLICIES:
        assert name in p.stdout


@pytest.mark.parametrize("args,needle", [
    (["policy=br00"], "br0"),
    (["cluster=nope"], "fixed"),
    (["workload=nope"], "azure_conv_2023"),
    (["cluster.wrkers=3"], "wrkers"),
    (["cluster.workers=0"], "cluster.workers"),
    (["workload=trace", "workload.path=/nonexistent/trace.csv"], "/nonexistent/trace.csv"),
])
def test_bad_input_exits_nonzero_with_message_and_no_traceback(args, needle, tmp_path):
    p = run_cli(*args, "progress=false", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode != 0
    assert needle in p.stderr + p.stdout
    assert "Traceback" not in p.stderr


def test_bad_trace_rows_are_reported(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                   "2023-11-16 18:15:46.6805900,100,20\n2023-11-16 18:15:47.0,-3,20\n")
    p = run_cli("workload=trace", f"workload.path={bad}", "progress=false", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "bad.csv" in p.stderr and "ContextTokens" in p.stderr
    missing = tmp_path / "missing_col.csv"
    missing.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,100\n")
    p = run_cli("workload=trace", f"workload.path={missing}", "progress=false", f"hydra.run.dir={tmp_path}/r2")
    assert p.returncode != 0 and "GeneratedTokens" in p.stderr and "Traceback" not in p.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    p = run_cli("workload=trace", f"workload.path={empty}", "progress=false", f"hydra.run.dir={tmp_path}/r3")
    assert p.returncode != 0 and "empty.csv" in p.stderr and "Traceback" not in p.stderr


def test_multirun_sweep_smoke(tmp_path):
    p = run_cli("--multirun", "policy=round_robin,least_kv", "seed=0,1", *SMALL,
                f"hydra.sweep.dir={tmp_path}/sweep")
    assert p.returncode == 0, p.stderr
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert len(summaries) == 4
    got = {(json.loads(f.read_text())["policy"], json.loads(f.read_text())["seed"]) for f in summaries}
    assert got == {("round_robin", 0), ("round_robin", 1), ("least_kv", 0), ("least_kv", 1)}
    assert all("policy=" in f.parent.name for f in summaries)
