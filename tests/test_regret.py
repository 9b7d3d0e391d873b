"""Regret of run folders against the offline optimum: hand-built folders, atomic writes, sweep table."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from analysis import regret as rg
from analysis.offline.solve import SOLVER_REVISION
from analysis.objective import objective
from framework.errors import TraceFormatError


def make_run(d, admit, prompt, output, worker, G, preemptions=None, policy="p", workload="w", seed=0):
    """A run folder with exactly the runner's request columns (times are consistent with 1 s steps)."""
    d.mkdir(parents=True, exist_ok=True)
    n = len(admit)
    admit = np.asarray(admit, np.int64)
    output = np.asarray(output, np.int64)
    req = pd.DataFrame({
        "request_id": np.arange(n, dtype=np.int64), "arrival_s": admit.astype(float),
        "prompt_tokens": np.asarray(prompt, np.int64), "output_tokens": output,
        "worker": np.asarray(worker, np.int64), "admit_step": admit,
        "first_token_s": admit + 1.0, "finish_s": (admit + output).astype(float),
        "preemptions": np.zeros(n, np.int64) if preemptions is None else np.asarray(preemptions, np.int64),
    })
    req.to_parquet(d / "requests.parquet", index=False)
    pd.DataFrame({"step": [0], "worker": [0], "load_tokens": [0]}).to_parquet(d / "steps.parquet", index=False)
    (d / "summary.json").write_text(json.dumps({"policy": policy, "workload": workload, "workers": G,
                                                "seed": seed}))
    return d


def test_regret_zero_when_online_is_optimal(tmp_path):
    # identical pairs on different workers: every step balanced, J_online = J* = 0
    d = make_run(tmp_path / "run", [0, 0, 3, 3], [10, 10, 7, 7], [4, 4, 2, 2], [0, 1, 1, 0], G=2)
    out = rg.regret_of_run(d, time_limit=10)
    assert out["j_online"] == 0 and out["j_opt_low"] == out["j_opt_high"] == 0
    assert out["regret"] == out["regret_high"] == 0 and out["status"] == "optimal"
    assert out["ratio"] == 1.0 and out["share_of_compute"] == 0.0


def test_regret_by_hand(tmp_path):
    # G = 2: r0 (10, 11, 12 on steps 0-2) and r1 (10, 11 on steps 0-1) both on worker 0, r2 (3 at step 3)
    # online: steps 0..3 loads [20,0] [22,0] [12,0] [3,0] -> J = 20 + 22 + 12 + 3 = 57,
    #         total compute 2 * (20 + 22 + 12 + 3) = 114
    # optimum: r0, r1 apart -> steps 0-1 balanced, step 2: 12 alone, step 3: 3 alone -> J* = 15
    d = make_run(tmp_path / "run", [0, 0, 3], [10, 10, 3], [3, 2, 1], [0, 0, 0], G=2)
    out = rg.regret_of_run(d, time_limit=10)
    assert out["j_online"] == objective([0, 0, 3], [10, 10, 3], [3, 2, 1], [0, 0, 0], 2) == 57
    assert out["j_opt_low"] == out["j_opt_high"] == 15 and out["status"] == "optimal"
    assert out["regret"] == out["regret_high"] == 42
    assert out["share_of_compute"] == pytest.approx(42 / 114)
    assert out["ratio"] == pytest.approx(57 / 15)
    assert out["approximate"] is False and out["preempted_requests"] == 0
    steps = pd.read_parquet(d / "regret_steps.parquet")
    assert steps["step"].tolist() == [0, 1, 2, 3]
    assert steps["imbalance_online"].tolist() == [20, 22, 12, 3]
    assert steps["imbalance_offline"].tolist() == [0, 0, 12, 3]
    assert steps["cumulative_regret"].tolist() == [20, 42, 42, 42]
    on_disk = json.loads((d / "regret.json").read_text())
    assert on_disk == json.loads(json.dumps(out))


def test_preempted_requests_make_the_regret_approximate(tmp_path):
    d = make_run(tmp_path / "run", [0, 0, 1], [5, 6, 7], [3, 3, 3], [0, 1, 0], G=2, preemptions=[0, 2, 1])
    out = rg.regret_of_run(d, time_limit=10)
    assert out["preempted_requests"] == 2 and out["approximate"] is True
    assert "approximate" in out["note"]


def test_regret_json_written_atomically(tmp_path, monkeypatch):
    d = make_run(tmp_path / "run", [0, 0, 3], [10, 10, 3], [3, 2, 1], [0, 0, 0], G=2)
    (d / "regret.json").write_text('{"old": true}\n')
    import framework.results as fr

    real_dump = json.dump

    def crash(obj, f, **kw):
        f.write('{"partial": ')
        raise OSError("disk full")

    monkeypatch.setattr(fr.json, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        rg.regret_of_run(d, time_limit=10)
    monkeypatch.setattr(fr.json, "dump", real_dump)
    # the old file is intact and no temp file is left behind
    assert json.loads((d / "regret.json").read_text()) == {"old": True}
    assert sorted(os.listdir(d)) == ["regret.json", "regret_steps.parquet", "requests.parquet",
                                     "steps.parquet", "summary.json"]
    rg.regret_of_run(d, time_limit=10)
    assert json.loads((d / "regret.json").read_text())["regret"] == 42


def test_bad_run_folders(tmp_path):
    with pytest.raises(TraceFormatError, match="does not exist"):
        rg.load_run(tmp_path / "nope")
    d = tmp_path / "run"
    d.mkdir()
    with pytest.raises(TraceFormatError, match="no summary.json"):
        rg.load_run(d)
    make_run(d, [0], [1], [1], [0], G=2)
    pd.read_parquet(d / "requests.parquet").drop(columns=["admit_step"]).to_parquet(d / "requests.parquet")
    with pytest.raises(TraceFormatError, match="lacks column\\(s\\) admit_step"):
        rg.load_run(d)
    make_run(d, [0, 1], [1, 1], [1, 1], [0, 3], G=2)
    with pytest.raises(TraceFormatError, match="request 1 is on worker 3 but the run has 2 workers"):
        rg.load_run(d)


def test_sweep_table_and_cli(tmp_path, capsys):
    make_run(tmp_path / "sweep" / "a", [0, 0, 3], [10, 10, 3], [3, 2, 1], [0, 0, 0], G=2, policy="bad")
    make_run(tmp_path / "sweep" / "b", [0, 0, 3], [10, 10, 3], [3, 2, 1], [0, 1, 0], G=2, policy="good")
    assert rg.main(["--sweep", str(tmp_path / "sweep"), "--time-limit", "10"]) == 0
    md = capsys.readouterr().out
    assert "| policy |" in md and "bad" in md and "good" in md
    assert "Mean over seeds" in md and "| bad | w | 1 | 57 | 42 | 42 |" in md
    df = pd.read_csv(tmp_path / "sweep" / "regret_table.csv")
    assert df["policy"].tolist() == ["bad", "good"]
    assert df["j_online"].tolist() == [57, 15]
    assert df["regret"].tolist() == [42, 0]
    assert (tmp_path / "sweep" / "regret_table.md").read_text().startswith("| policy |")
    # per-run regret.json files were written and are reused on the next sweep, unless an older solver
    # revision made them (its bounds may be looser): marked files show which way it went
    f = tmp_path / "sweep" / "a" / "regret.json"
    stored = json.loads(f.read_text())
    assert stored["regret"] == 42 and stored["solver_revision"] == SOLVER_REVISION
    f.write_text(json.dumps({**stored, "regret": -1}))
    assert rg.sweep_table(tmp_path / "sweep", time_limit=10)["regret"].tolist() == [-1, 0]  # reused
    # proven optimal: reused under a longer limit too
    assert rg.sweep_table(tmp_path / "sweep", time_limit=20)["regret"].tolist() == [-1, 0]
    f.write_text(json.dumps({**stored, "regret": -1, "solver_revision": SOLVER_REVISION - 1}))
    assert rg.sweep_table(tmp_path / "sweep", time_limit=10)["regret"].tolist() == [42, 0]  # recomputed
    # single-run form prints the JSON it writes
    assert rg.main([str(tmp_path / "sweep" / "b"), "--time-limit", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["regret"] == 0
    assert rg.main(["--sweep", str(tmp_path / "empty_dir_missing")]) == 2


def test_end_to_end_with_the_runner(tmp_path):
    from framework.cluster import ClusterConfig
    from framework.results import write_run
    from framework.runner import run_policy
    from framework.workload import Workload

    rng = np.random.default_rng(0)
    n = 40
    wl = Workload("t", np.sort(rng.uniform(0, 1.0, n)), rng.integers(50, 400, n), rng.integers(5, 60, n))
    out = run_policy("round_robin", wl, ClusterConfig(workers=3), 0)
    write_run(tmp_path / "rr", out.summary, out.steps, out.requests)
    r = rg.regret_of_run(tmp_path / "rr", time_limit=3)
    assert r["preempted_requests"] == 0
    # the contiguous model reproduces the simulator's own imbalance exactly
    assert r["j_online"] == r["j_steps_table"] == out.summary["imbalance_tokens"]
    assert 0 <= r["j_opt_low"] <= r["j_opt_high"] <= r["j_online"]
    assert 0 <= r["regret"] <= r["regret_high"]
    steps = pd.read_parquet(tmp_path / "rr" / "regret_steps.parquet")
    assert steps["cumulative_regret"].iloc[-1] == r["regret"]
