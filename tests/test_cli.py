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
    # issue 9.13: the code that made it; issue 9.8 / 9.6: what was simulated and what the seed does
    assert {"code_version", "git_commit", "git_dirty", "config_hash"} <= set(s)
    assert s["train_fraction"] == 0.1 and s["train_requests"] == 30 and s["requests_total"] == 270
    assert "requests: 270 simulated, after 30 held out as classifier history (workload.train_fraction=0.1" in p.stdout
    assert "seed 0 draws the requests" in p.stdout


def test_headline_says_a_trace_ignores_the_seed_and_what_max_requests_took(tmp_path):
    from framework.cli import _headline

    s = {"policy": "br0", "workload": "azure_code_2023", "workers": 4, "requests_completed": 500,
         "requests_total": 500, "steps": 10, "oracle_used": False, "avg_dp_imbalance": 0.1,
         "balance_ratio": 0.9, "idle_fraction": 0.0, "throughput_tokens_per_s": 1.0, "ttft_p50_s": 0.0,
         "ttft_p99_s": 0.0, "tpot_p50_s": 0.0, "tpot_p99_s": 0.0, "decision_ms_p99": 0.0, "seed": 2,
         "workload_kind": "trace", "train_fraction": 0.1, "train_requests": 56, "max_requests": 500}
    h = _headline(s, tmp_path)
    assert "500 simulated (workload.max_requests=500), after 56 held out" in h
    assert "a trace has the same requests for every seed" in h
    h0 = _headline({**s, "train_fraction": 0.0, "train_requests": 0, "max_requests": None}, tmp_path)
    assert "500 simulated, none held out (workload.train_fraction=0)" in h0


def test_train_fraction_zero_simulates_every_request(tmp_path):
    s = run_from_config(compose_cfg(["policy=round_robin", *SMALL, "workload.train_fraction=0"]), tmp_path)
    assert s["requests_total"] == 300 and s["train_requests"] == 0
    s = run_from_config(compose_cfg(["policy=round_robin", *SMALL, "workload.max_requests=100"]), tmp_path)
    assert s["requests_total"] == 100 and s["train_requests"] == 11  # ceil(100 / 0.9) + 1 = 113 read, floor(11.3) train


def test_cli_help_is_the_projects_page_generated_from_the_registry():
    """Issue 9.9: groups, each policy's one-line description and options with their field help."""
    from dataclasses import fields

    from framework.policy import get_policy_class

    p = run_cli("--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "powered by Hydra" not in out and "schema/" not in out
    for name in PUBLIC_POLICIES:
        cls = get_policy_class(name)
        assert f"  {name}  [{cls.family}]  {cls.__doc__.strip().splitlines()[0]}" in out
        for f in fields(cls.config_class):
            if f.name != "name":
                assert f"policy.{f.name}=" in out
                if "help" in f.metadata:
                    assert f.metadata["help"] in out
    assert "workload.train_fraction=0.1" in out and "cluster.cost.c0=0.03" in out
    assert "G, number of DP workers" in out  # a field's metadata help
    # the values shown are the composed ones
    assert "cluster.workers=7 " in run_cli("cluster.workers=7", "--help").stdout


@pytest.mark.parametrize("args,needle", [
    (["policy=br00"], "br0"),
    (["cluster=nope"], "fixed"),
    (["workload=nope"], "azure_conv_2023"),
    (["cluster.wrkers=3"], "wrkers"),
    (["cluster.workers=0"], "cluster.workers"),
    (["workload=trace", "workload.path=/nonexistent/trace.csv"], "/nonexistent/trace.csv"),
])
def test_bad_input_exits_nonzero_with_message_and_no_traceback(args, needle, tmp_path):
    """Issue 9.10: Hydra's errors and the project's read alike and exit with the user-error code."""
    p = run_cli(*args, "progress=false", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 2
    assert needle in p.stderr
    assert p.stderr.startswith("balanceroute: error: ") and p.stderr.count("\n") == 1
    assert "Traceback" not in p.stderr and "HYDRA_FULL_ERROR" not in p.stderr
    assert "search path" not in p.stderr.lower()


@pytest.mark.parametrize("args,hint", [
    (["cluster.wrkers=3"], "Did you mean 'cluster.workers'?"),
    (["policy=brh", "policy.horizn=3"], "Did you mean 'policy.horizon'?"),
    (["policy=br00"], "Did you mean 'br0'"),
])
def test_hydra_level_errors_say_did_you_mean(args, hint, tmp_path):
    p = run_cli(*args, f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 2 and hint in p.stderr


def test_debug_true_shows_the_traceback(tmp_path):
    p = run_cli("policy=br00", "debug=true", f"hydra.run.dir={tmp_path}/run")
    assert p.returncode != 0 and "Traceback" in p.stderr
    p = run_cli("cluster.workers=0", "debug=true", f"hydra.run.dir={tmp_path}/run2")
    assert p.returncode != 0 and "Traceback" in p.stderr and "cluster.workers=0" in p.stderr


@pytest.mark.parametrize("args,needle", [
    (["+workload.max_request=100"], "Did you mean 'workload.max_requests'"),
    (["+foo=bar"], "Unknown key 'foo'"),
    (["++cluster.wrkers=3"], "Did you mean 'cluster.workers'"),
    (["policy=brh", "+policy.horizn=3"], "Did you mean 'policy.horizon'"),
    (["+cluster.cost.c00=1"], "Did you mean 'cluster.cost.c0'"),
])
def test_plus_prefixed_typo_fails(args, needle, tmp_path):
    """Issue 9.3: '+' used to switch the schema check off, so a misspelt key ran with exit 0."""
    p = run_cli(*args, *SMALL, f"hydra.run.dir={tmp_path}/run")
    assert p.returncode == 2, p.stdout
    assert p.stderr.startswith("balanceroute: error: Unknown key") and needle in p.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_plus_typo_fails_through_the_compose_api_too(tmp_path):
    from framework.errors import ConfigError

    with pytest.raises(ConfigError, match="workload.max_requests"):
        run_from_config(compose_cfg(["+workload.max_request=100", *SMALL]), tmp_path)


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


def _results_dir(stdout: str) -> Path:
    lines = [ln for ln in stdout.splitlines() if ln.strip().startswith("results: ")]
    assert len(lines) == 1, stdout
    return Path(lines[0].split("results: ", 1)[1].strip())


def test_runs_started_together_never_share_a_folder(tmp_path):
    """Issue 9.2: two runs started in the same second wrote one folder; the second overwrote the first."""
    env = dict(os.environ)
    env.pop("BALANCEROUTE_DEBUG", None)
    runs = [["policy=brh", "policy.classifier=none"], ["policy=brh", "policy.classifier=oracle"],
            ["policy=round_robin"], ["policy=round_robin"]]  # the same overrides twice, too
    procs = [subprocess.Popen([str(BIN), *r, *SMALL], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in runs]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    dirs = [_results_dir(o[0]) for o in outs]
    assert len(set(dirs)) == 4
    assert dirs[2].parent == dirs[3].parent and dirs[2].name != dirs[3].name
    for d, r in zip(dirs, runs):
        s = json.loads((d / "summary.json").read_text())
        assert s["policy"] == r[0].split("=")[1]
        if "brh" in r[0]:
            assert s["oracle_used"] == ("oracle" in r[1])
    # named by the overrides, so a set of runs reads like its grid
    assert dirs[0].parent.name == "cluster.workers=4,policy.classifier=none,policy=brh,workload.num_requests=300,workload.rate_rps=60"


def test_run_folder_names_differ_by_overrides_within_one_second():
    """Composed in one process (one clock second), two override sets still get two folders."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        a = compose("config", ["policy=brh", "policy.classifier=none"], return_hydra_config=True)
        b = compose("config", ["policy=brh", "policy.classifier=oracle"], return_hydra_config=True)
        assert a.hydra.run.dir != b.hydra.run.dir
        assert a.hydra.run.dir.split("/")[1] == "policy.classifier=none,policy=brh"


def test_dir_name_is_safe_and_bounded():
    from framework.rundir import MAX_NAME, dir_name

    assert dir_name("") == "defaults"
    assert dir_name("workload.path=/data/t.csv,seed=1") == "workload.path=_data_t.csv,seed=1"
    long_a, long_b = "x=" + "a" * 300, "x=" + "a" * 299 + "b"
    assert len(dir_name(long_a)) <= MAX_NAME and dir_name(long_a) != dir_name(long_b)


def test_multirun_finishes_valid_jobs_and_reports_failed_ones(tmp_path):
    """Issue 9.5: a sweep stopped at its first failing job; now every valid job runs and it exits 2."""
    p = run_cli("--multirun", "cluster.workers=0,4", "policy=round_robin,least_kv",
                "workload.num_requests=200", "progress=false", f"hydra.sweep.dir={tmp_path}/sweep")
    assert p.returncode == 2
    done = sorted((tmp_path / "sweep").glob("*/summary.json"))
    failed = sorted((tmp_path / "sweep").glob("*/failed.json"))
    assert [f.parent.name.split(",")[0] for f in done] == ["cluster.workers=4"] * 2
    assert [f.parent.name.split(",")[0] for f in failed] == ["cluster.workers=0"] * 2
    rec = json.loads(failed[0].read_text())
    assert rec["user_error"] is True and "cluster.workers=0 must be >= 1" in rec["error"]
    assert "2 of 4 sweep job(s) failed" in p.stderr
    assert p.stderr.count("cluster.workers=0 must be >= 1") == 4  # once as it happens, once in the report


def test_sweep_report_counts_only_this_sweep(tmp_path):
    from framework.multirun import sweep_outcome

    old = tmp_path / "a" / "failed.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"overrides": [], "error": "old", "user_error": True}))
    os.utime(old, (1000, 1000))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "summary.json").write_text("{}")
    failed, done = sweep_outcome(tmp_path, since=2000)
    assert failed == [] and done == 1


def test_multirun_sweep_smoke(tmp_path):
    p = run_cli("--multirun", "policy=round_robin,least_kv", "seed=0,1", *SMALL,
                f"hydra.sweep.dir={tmp_path}/sweep")
    assert p.returncode == 0, p.stderr
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert len(summaries) == 4
    got = {(json.loads(f.read_text())["policy"], json.loads(f.read_text())["seed"]) for f in summaries}
    assert got == {("round_robin", 0), ("round_robin", 1), ("least_kv", 0), ("least_kv", 1)}
    assert all("policy=" in f.parent.name for f in summaries)
