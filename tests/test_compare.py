"""The comparison command (issue 3) in its quick form: grid, aggregation, reuse of finished runs."""
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
    a = json.loads((tmp_path / "runs/conv__fixed/br0/seed0/summary.json").read_text())
    b = json.loads((tmp_path / "runs/conv__fixed/br0/seed1/summary.json").read_text())
    assert a["requests_total"] == b["requests_total"] == 300 and a["imbalance_tokens"] != b["imbalance_tokens"]
    mtime = (tmp_path / "runs/conv__fixed/br0/seed0/summary.json").stat().st_mtime_ns
    compare.main(args)  # second call reuses every finished run
    assert (tmp_path / "runs/conv__fixed/br0/seed0/summary.json").stat().st_mtime_ns == mtime
    assert "4 runs (4 reused)" in capsys.readouterr().err


def test_unknown_label_is_rejected(tmp_path):
    with pytest.raises(SystemExit, match="unknown policy label"):
        compare.main(["--policies", "br9", "--out", str(tmp_path)])


def test_default_jobs_follows_affinity_and_cap(monkeypatch):
    from framework import cpus

    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert cpus.usable_cpus() == 6 and cpus.default_jobs() == 2 and cpus.default_jobs(cap=4) == 4
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert cpus.default_jobs() == 1  # a machine with many CPUs, but this process may use one
    monkeypatch.delattr(cpus.os, "sched_getaffinity", raising=False)  # not Linux
    monkeypatch.setattr(cpus.os, "cpu_count", lambda: None)
    assert cpus.usable_cpus() == 1 and cpus.default_jobs() == 1
