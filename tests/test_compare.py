"""The comparison command: experiment=compare sweeps, the table as a group-by of collect's rows, reuse, labels."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import compare
from analysis.sweep import mean_spread


def test_mean_spread_by_hand():
    df = pd.DataFrame({"p": ["a", "a", "b"], "x": [1.0, 3.0, 5.0]})
    out = mean_spread(df, ["p"], ["x"]).set_index("p")
    assert out.loc["a", "x_mean"] == 2.0 and out.loc["a", "x_std"] == pytest.approx(2 ** 0.5)
    assert out.loc["b", "x_std"] == 0.0 and out.loc["b", "runs"] == 1


def by_hand(rows: pd.DataFrame, metric: str, digits: int) -> dict[tuple[str, str], str]:
    """mean ± sample std per (ov.setting, ov.variant or policy), with plain Python arithmetic."""
    groups: dict[tuple[str, str], list[float]] = {}
    for _, r in rows.iterrows():
        variant = r["ov.variant"] if isinstance(r["ov.variant"], str) else f"{r['ov.policy']}[tie_break={r['ov.policy.tie_break']}]"
        groups.setdefault((r["ov.setting"], variant), []).append(float(r[metric]))
    out = {}
    for k, xs in groups.items():
        m = sum(xs) / len(xs)
        sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
        out[k] = f"{m:.{digits}f} ± {sd:.{digits}f}"
    return out


def test_table_is_a_group_by_of_the_collected_sweep_and_stale_runs_rerun(tmp_path, capsys):
    """burst/fixed needs no trace: 2 policies (a variant and a NAME[key=value] label) x 2 seeds."""
    args = ["--quick", "--jobs", "2", "--out", str(tmp_path), "--policies", "round_robin,jsq[tie_break=first]",
            "--settings", "burst/fixed"]
    compare.main(args)
    err = capsys.readouterr().err
    assert "4 runs (0 reused, 0 stale rerun)" in err
    rows = pd.concat([pd.read_csv(tmp_path / "runs" / "collected.csv"),
                      pd.read_csv(tmp_path / "runs-jsq_tie_break_first" / "collected.csv")], ignore_index=True)
    assert len(rows) == 4 and set(rows["ov.seed"]) == {0, 1} and (rows["requests_total"] == 300).all()
    assert rows.loc[rows["ov.seed"] == 0, "avg_dp_imbalance"].nunique() == 2  # the policies differ
    tab = pd.read_csv(tmp_path / "table.csv")
    assert list(tab["policy"]) == ["round_robin", "jsq[tie_break=first]"] and (tab["runs"] == 2).all()
    assert (tab["setting"] == "burst/fixed").all()
    for metric, digits in compare.DIGITS.items():
        want = by_hand(rows, metric, digits)
        for _, r in tab.iterrows():
            assert r[metric] == want[("burst_fixed", r["policy"])], (metric, r["policy"])
    # again: every run is reused
    first = {f: f.stat().st_mtime_ns for f in tmp_path.rglob("summary.json")}
    compare.main(args)
    assert "4 runs (4 reused, 0 stale rerun)" in capsys.readouterr().err
    assert {f: f.stat().st_mtime_ns for f in tmp_path.rglob("summary.json")} == first
    # a stored run whose config hash is not what its job composes now (another config under the same
    # overrides, e.g. a preset edited since) is rerun, and only that one
    f = sorted(first)[0]
    f.write_text(json.dumps({**json.loads(f.read_text()), "config_hash": "0" * 16}))
    compare.main(args)
    assert "4 runs (3 reused, 1 stale rerun)" in capsys.readouterr().err
    assert json.loads(f.read_text())["config_hash"] != "0" * 16


def test_quick_and_full_sweeps_differ_in_their_overrides(tmp_path):
    """Issue 9.1: a quick run must never be taken for a full one; the quick grid says max_requests."""
    (qd, quick, _), = compare.sweeps(tmp_path, True, 2, ["br0"], ["conv/fixed"])
    (fd, full, _), = compare.sweeps(tmp_path, False, 3, ["br0"], ["conv/fixed"])
    assert quick == ["setting=conv_fixed", "seed=0,1", "workload.max_requests=300", "variant=br0"]
    assert full == ["setting=conv_fixed", "seed=0,1,2", "variant=br0"]
    (_, custom, label), = compare.sweeps(tmp_path, False, 1, ["brh[horizon=4]"], ["burst/fixed"])
    assert label == "brh[horizon=4]"
    assert custom == ["setting=burst_fixed", "seed=0", "~hydra.sweeper.params.variant", "policy=brh",
                      "policy.horizon=4"]


@pytest.mark.parametrize("label,expected", [
    ("lp", ["policy=lp"]),
    ("bfio[time_limit_s=0.01]", ["policy=bfio", "policy.time_limit_s=0.01"]),
    ("brh[oracle]", ["variant=brh_oracle"]),  # a default label is its variant
    ("brh[survival]", ["policy=brh", "policy.classifier=survival"]),
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
