"""The comparison command in its quick form: grid, aggregation, reuse of finished runs, policy labels."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import compare
from analysis.sweep import load_summaries, mean_spread
from tests.test_workloads import needs_data  # skips when the shared traces are absent


def test_mean_spread_by_hand():
    df = pd.DataFrame({"p": ["a", "a", "b"], "x": [1.0, 3.0, 5.0]})
    out = mean_spread(df, ["p"], ["x"]).set_index("p")
    assert out.loc["a", "x_mean"] == 2.0 and out.loc["a", "x_std"] == pytest.approx(2 ** 0.5)
    assert out.loc["b", "x_std"] == 0.0 and out.loc["b", "runs"] == 1


@needs_data
def test_quick_compare_grid_writes_table_and_reuses_runs(tmp_path, capsys):
    args = ["--quick", "--seeds", "2", "--jobs", "1", "--out", str(tmp_path),
            "--policies", "round_robin,br0", "--settings", "conv/fixed"]
    compare.main(args)
    tab = pd.read_csv(tmp_path / "table.csv")
    assert list(tab["policy"]) == ["round_robin", "br0"] and (tab["runs"] == 2).all()
    runs = load_summaries(tmp_path / "runs")
    assert len(runs) == 4 and set(runs["seed"]) == {0, 1}
    # the two seeds simulate different windows of the trace
    a = json.loads((tmp_path / "runs/conv__fixed/br0/seed0__max300/summary.json").read_text())
    b = json.loads((tmp_path / "runs/conv__fixed/br0/seed1__max300/summary.json").read_text())
    assert a["requests_total"] == b["requests_total"] == 300 and a["imbalance_tokens"] != b["imbalance_tokens"]
    mtime = (tmp_path / "runs/conv__fixed/br0/seed0__max300/summary.json").stat().st_mtime_ns
    compare.main(args)  # second call reuses every finished run
    assert (tmp_path / "runs/conv__fixed/br0/seed0__max300/summary.json").stat().st_mtime_ns == mtime
    assert "4 runs (4 reused, 0 stale rerun)" in capsys.readouterr().err


def test_quick_and_full_runs_never_share_a_folder(tmp_path):
    """Issue 9.1: a quick run used to sit in the full run's folder and be reused as if it were full."""
    quick = compare.grid(True, 1, ["br0"], ["conv/fixed"])[0]
    full = compare.grid(False, 1, ["br0"], ["conv/fixed"])[0]
    dq = compare.run_dir_of(tmp_path, "conv/fixed", "br0", 0, quick=True)
    df = compare.run_dir_of(tmp_path, "conv/fixed", "br0", 0, quick=False)
    assert dq != df
    from framework.config import config_hash

    assert config_hash(compare._compose(quick[3])) != config_hash(compare._compose(full[3]))


def test_reuse_checks_the_stored_config_not_the_folder_name(tmp_path):
    """Issue 9.1: a finished run in the asked-for folder is reused only if its config is the one asked."""
    small = ["workload=default", "workload.num_requests=200", "cluster.workers=4", "policy=round_robin",
             "progress=false"]
    d = tmp_path / "run"
    compare._run_one(small, str(d))
    stored = json.loads((d / "summary.json").read_text())
    assert compare.reusable(d, small) == stored
    # same folder, another config (e.g. the full form after a quick run): not reused
    assert compare.reusable(d, [*small[:1], "workload.num_requests=300", *small[2:]]) is None
    # a summary from before config hashes were stored is not trusted either
    (d / "summary.json").write_text(json.dumps({k: v for k, v in stored.items() if k != "config_hash"}))
    assert compare.reusable(d, small) is None


def test_stale_run_is_rerun_by_main(tmp_path, capsys, monkeypatch):
    """The full form finds a quick run's summary in its folder (as before the fix) and reruns it."""
    monkeypatch.setitem(compare.SETTINGS, "tiny", ["workload=default", "workload.num_requests=200",
                                                  "cluster.workers=4"])
    monkeypatch.setattr(compare, "UNWINDOWED", {"tiny"})
    args = ["--seeds", "1", "--jobs", "1", "--out", str(tmp_path), "--policies", "round_robin",
            "--settings", "tiny"]
    compare.main(args)
    f = tmp_path / "runs/tiny/round_robin/seed0/summary.json"
    s = json.loads(f.read_text())
    s["config_hash"] = "0" * 16  # what a run made with other overrides would carry
    f.write_text(json.dumps(s))
    compare.main(args)
    assert "1 runs (0 reused, 1 stale rerun)" in capsys.readouterr().err
    assert json.loads(f.read_text())["config_hash"] != "0" * 16


@pytest.mark.parametrize("label,expected", [
    ("lp", ["policy=lp"]),
    ("bfio[time_limit_s=0.01]", ["policy=bfio", "policy.time_limit_s=0.01"]),
    ("brh[oracle]", ["policy=brh", "policy.classifier=oracle"]),
    ("brh[horizon=4,classifier=none]", ["policy=brh", "policy.horizon=4", "policy.classifier=none"]),
    ("_test_pool_first_fit", ["policy=_test_pool_first_fit"]),  # a user-registered policy (tests/_policies)
])
def test_any_registered_policy_is_a_label(label, expected, test_policies):
    assert compare.label_overrides(label) == expected


def test_all_adds_every_registered_policy():
    from framework.policy import available_policies

    labels = compare.policy_labels("all")
    assert labels[:len(compare.POLICIES)] == list(compare.POLICIES)
    assert {"lp", "bfio"} <= set(labels)
    assert {p for p in available_policies() if not p.startswith("_")} <= {lab.split("[")[0] for lab in labels}
    assert compare.policy_labels("brh[horizon=4,gamma=0.5],br0") == ["brh[horizon=4,gamma=0.5]", "br0"]


def test_user_registered_policy_runs_through_compare(tmp_path, monkeypatch, test_policies):
    monkeypatch.setitem(compare.SETTINGS, "tiny", ["workload=default", "workload.num_requests=100",
                                                  "cluster.workers=2"])
    monkeypatch.setattr(compare, "UNWINDOWED", {"tiny"})
    compare.main(["--seeds", "1", "--jobs", "1", "--out", str(tmp_path), "--policies",
                  "_test_pool_first_fit", "--settings", "tiny"])
    tab = pd.read_csv(tmp_path / "table.csv")
    assert list(tab["policy"]) == ["_test_pool_first_fit"]
    assert "inflated" in (tmp_path / "table.md").read_text()


@pytest.mark.parametrize("label,needle", [("br9", "'br0'"), ("brh[horizn=3]", "'horizon'"),
                                          ("br0[oracle]", "no option 'classifier'")])
def test_bad_label_is_rejected_with_a_hint(tmp_path, capsys, label, needle):
    with pytest.raises(SystemExit) as e:
        compare.main(["--policies", label, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("compare: error:") and needle in err


def test_default_jobs_follows_affinity_and_cap(monkeypatch):
    from framework import cpus

    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert cpus.usable_cpus() == 6 and cpus.default_jobs() == 2 and cpus.default_jobs(cap=4) == 4
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert cpus.default_jobs() == 1  # a machine with many CPUs, but this process may use one
    monkeypatch.delattr(cpus.os, "sched_getaffinity", raising=False)  # not Linux
    monkeypatch.setattr(cpus.os, "cpu_count", lambda: None)
    assert cpus.usable_cpus() == 1 and cpus.default_jobs() == 1
