"""Sweeps through Hydra: the resume sweeper, progress, analysis.collect, and the launcher configs."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.collect import collect, incomplete_runs, main as collect_main
from hydra_plugins.balanceroute_sweeper import state as st
from analysis.sweep import balanceroute_cmd

ROOT = Path(__file__).resolve().parents[1]
GRID = ["policy=jsq,br0", "workload.num_requests=40", "cluster.workers=4", "progress=false",
        "hydra/sweeper=resume", "+hydra.callbacks.progress._target_="
        "hydra_plugins.balanceroute_sweeper.progress.SweepProgress"]


def sweep(tmp: Path, *extra: str, launcher: str = "basic") -> subprocess.CompletedProcess:
    cmd = [*balanceroute_cmd(), "--multirun", f"hydra.sweep.dir={tmp}", f"hydra/launcher={launcher}", *GRID, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


def summaries(root: Path) -> dict[str, int]:
    return {str(f.parent.relative_to(root)): f.stat().st_mtime_ns for f in root.rglob("summary.json")}


def test_run_identity_ignores_order_progress_hydra_and_plus():
    a = st.run_identity(["policy=br0", "seed=1", "progress=false", "hydra.sweep.dir=/x"])
    b = st.run_identity(["seed=1", "+policy=br0", "hydra/launcher=joblib"])
    assert a == b == frozenset({"policy=br0", "seed=1"})
    assert st.run_identity(["seed=2", "policy=br0"]) != a


def test_progress_line_by_hand():
    state = {"total": 10, "done_at_start": 4, "started": 1000.0}
    # 2 runs finished in this session after 60 s: 30 s a run, 4 left -> 2 minutes
    assert st.progress_line(state, 2, now=1060.0) == "sweep: 6/10 runs done, 1m00s elapsed, ~2m00s left"
    assert st.progress_line(state, 0, now=1000.0) == "sweep: 4/10 runs done, 0m00s elapsed"


def test_sweep_resumes_and_collect_reads_overrides(tmp_path):
    r = sweep(tmp_path, "seed=0,1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "sweep: 4/4 runs done" in r.stderr
    first = summaries(tmp_path)
    assert len(first) == 4
    df = collect(tmp_path)
    assert len(df) == 4 and set(df["ov.policy"]) == {"jsq", "br0"} and set(df["ov.seed"]) == {0, 1}
    assert df["ov.seed"].dtype.kind == "i" and (df["requests_total"] == 36).all()  # 10% train split
    # the same grid again: nothing reruns
    r = sweep(tmp_path, "seed=0,1")
    assert r.returncode == 0 and "4 already complete" in (r.stdout + r.stderr)
    assert summaries(tmp_path) == first
    # a stored run made from another config under the same overrides (a preset or variant file edited
    # since) is not reused: its config_hash differs from what the job composes now, so it reruns
    stale = next(iter(sorted(first)))
    f = tmp_path / stale / "summary.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "config_hash": "0" * 16}))
    r = sweep(tmp_path, "seed=0,1")
    assert r.returncode == 0 and "3 already complete" in (r.stdout + r.stderr)
    assert json.loads(f.read_text())["config_hash"] != "0" * 16
    first = summaries(tmp_path)
    # a killed run: its folder lost summary.json; a wider grid reruns it and adds seed 2, nothing else
    victim = next(iter(sorted(first)))
    (tmp_path / victim / "summary.json").unlink()
    assert collect(tmp_path).shape[0] == 3 and len(incomplete_runs(tmp_path)) == 1
    r = sweep(tmp_path, "seed=0,1,2")
    assert r.returncode == 0 and "3 already complete" in (r.stdout + r.stderr)
    after = summaries(tmp_path)
    assert len(after) == 6 and after[victim] != first[victim]
    assert all(after[k] == v for k, v in first.items() if k != victim)
    # only_grid: the last grid's runs (seed 2 included); a narrower state keeps fewer
    assert len(collect(tmp_path, only_grid=True)) == 6


def test_collect_cli_writes_parquet_and_csv(tmp_path, capsys):
    run = tmp_path / "a"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- policy=br0\n- cluster.workers=8\n")
    (run / "summary.json").write_text(json.dumps({"policy": "br0", "imbalance_tokens": 5.0, "oracle_components": []}))
    (tmp_path / "killed" / ".hydra").mkdir(parents=True)  # started, never finished
    assert collect_main([str(tmp_path)]) == 0
    assert "1 incomplete" in capsys.readouterr().err
    pq = pd.read_parquet(tmp_path / "collected.parquet")
    csv = pd.read_csv(tmp_path / "collected.csv")
    assert list(pq["ov.cluster.workers"]) == [8] and list(csv["run_dir"]) == ["a"]
    assert pq["overrides"].iloc[0] == "cluster.workers=8 policy=br0"


def test_collect_rejects_a_missing_folder_and_broken_summary(tmp_path, capsys):
    assert collect_main([str(tmp_path / "nope")]) == 2
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "summary.json").write_text("{broken")
    assert collect_main([str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_launcher_configs_exist_and_compose():
    from hydra import compose, initialize_config_dir

    from framework.cli import CONF_DIR

    for name, target in [("joblib_local", "JoblibLauncher"), ("submitit_slurm_cluster", "SlurmLauncher"),
                         ("submitit_local_test", "LocalLauncher")]:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_.endswith(target)


@pytest.mark.slow
def test_submitit_local_executor_runs_a_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    r = sweep(tmp_path, "seed=0", launcher="submitit_local_test")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(collect(tmp_path)) == 2 and (tmp_path / ".submitit").is_dir()


@pytest.mark.slow
def test_ray_launcher_runs_a_sweep_on_a_local_ray(tmp_path, monkeypatch):
    """hydra/launcher=ray_local starts a local Ray instance and runs the grid's two jobs on it."""
    try:
        import hydra_plugins.hydra_ray_launcher  # noqa: F401
    except ImportError:
        pytest.skip("hydra-ray-launcher is not installed: an optional extra kept out of the project's venv "
                    "(it pins cloudpickle 2.2.1 and pulls ~45 packages); docs/figures.md, 'Ray', gives the "
                    "separate-venv install and the command that runs this test there")
    monkeypatch.setenv("BALANCEROUTE_JOBS", "2")  # ray.init(num_cpus=2)
    r = sweep(tmp_path, "seed=0", launcher="ray_local")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Ray Launcher is launching 2 jobs" in r.stdout + r.stderr
    df = collect(tmp_path)
    assert len(df) == 2 and set(df["ov.policy"]) == {"jsq", "br0"} and (df["requests_total"] == 36).all()


EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_at_every_swept_value(name):
    """Each experiment's grid names only keys and options that exist: compose it at every value of
    every swept key (the first value of the others), as the sweeper would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from framework.cli import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("config", overrides=[f"experiment={name}"], return_hydra_config=True)
        params = {k: str(v) for k, v in (cfg.hydra.sweeper.params or {}).items()}
        assert params, f"experiment {name} sweeps nothing"
        assert cfg.hydra.sweeper._target_.endswith("ResumeSweeper")
        parser = OverridesParser.create()
        values = {k: [str(x) for x in parser.parse_override(f"{k}={v}").sweep_string_iterator()]
                  for k, v in params.items()}
        first = {k: v[0] for k, v in values.items()}
        for k, vs in values.items():
            for v in vs:
                ov = [f"experiment={name}"] + [f"{kk}={v if kk == k else first[kk]}" for kk in values]
                job = compose("config", overrides=ov)
                assert job.policy.name  # the policy resolved (variant or default)
