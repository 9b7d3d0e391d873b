"""The 2024-schema generator: exact row count, the published format, lengths from the source table,
diurnal and weekend shape, determinism, and a round trip through the trace reader and the simulator."""
from __future__ import annotations

import numpy as np
import pytest

from framework.cluster import ClusterConfig
from framework.workloads import workload_config
from framework.errors import ConfigError
from framework.runner import prepare_workload, run_policy
from framework.workloads.generate import generate, hour_weights, load_lengths, rate_shape

P = np.array([10, 200, 3000, 45])
O = np.array([1, 20, 300, 7])


def read(path):
    _, w = prepare_workload(workload_config(kind="trace", path=str(path), train_fraction=0.0), 0)
    return w


def test_rows_format_and_lengths(tmp_path):
    f = tmp_path / "g.csv"
    info = generate(f, 5000, days=1.0, lengths=(P, O), seed=1)
    assert info["rows"] == 5000
    lines = f.read_text().splitlines()
    assert lines[0] == "TIMESTAMP,ContextTokens,GeneratedTokens" and len(lines) == 5001
    assert all(ln.split(",")[0].endswith("+00:00") and ln.startswith("2024-05-12 ") for ln in lines[1:])
    digits = {len(ln.split(",")[0][:-6].partition(".")[2]) for ln in lines[1:]}
    assert len(digits) > 1 and max(digits) <= 6  # precision varies row to row, as in the real files
    w = read(f)
    assert len(w) == 5000 and np.all(np.diff(w.arrival_s) >= 0) and w.arrival_s[-1] < 86400
    pairs = set(zip(P.tolist(), O.tolist()))
    assert set(zip(w.prompt_tokens.tolist(), w.output_tokens.tolist())) <= pairs


def test_diurnal_and_weekend_shape(tmp_path):
    f = tmp_path / "w.csv"
    generate(f, 40000, days=7.0, lengths=(P, O), seed=2, diurnal=0.5, weekend=0.5)
    t = read(f).arrival_s + 0.0  # arrivals are re-based to the first one, which is within seconds of 0
    hour = (t // 3600).astype(int) % 24
    day = (t // 86400).astype(int)
    busy, quiet = np.isin(hour, [13, 14, 15, 16]).sum(), np.isin(hour, [1, 2, 3, 4]).sum()
    assert busy > 2.2 * quiet  # (1 + 0.5 sin) averaged over the two 4-hour windows: ratio ~2.7
    per_day = np.bincount(day, minlength=7)
    weekend, weekdays = per_day[[0, 6]].mean(), per_day[1:6].mean()  # day 0 is Sunday 2024-05-12
    assert weekend == pytest.approx(0.5 * weekdays, rel=0.1)
    # hour weights are the normalised integral of the rate
    hw = hour_weights(24, 0.5, 1.0)
    assert hw.sum() == pytest.approx(1.0) and hw.argmax() in (14, 15) and hw.argmin() in (2, 3)
    assert rate_shape(np.array([15 * 3600.0]), 0.5, 1.0)[0] == pytest.approx(1.5)


def test_same_seed_same_file_and_bad_arguments(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    generate(a, 300, days=0.1, lengths=(P, O), seed=5)
    generate(b, 300, days=0.1, lengths=(P, O), seed=5)
    generate(c, 300, days=0.1, lengths=(P, O), seed=6)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert read(a).arrival_s[-1] < 0.1 * 86400
    with pytest.raises(ConfigError, match="rows=0"):
        generate(a, 0, lengths=(P, O))
    with pytest.raises(ConfigError, match="diurnal"):
        generate(a, 10, lengths=(P, O), diurnal=1.5)


def test_shared_trace_lengths_and_a_simulated_slice(tmp_path):
    p, o = load_lengths("conv")
    assert len(p) == 19366  # the shared 2023 conversation trace
    f = tmp_path / "conv.csv"
    generate(f, 3000, days=0.02, lengths=(p, o), seed=3)  # ~29 minutes at ~1.7 req/s
    w = read(f)
    cl = ClusterConfig(workers=4, max_running=32, kv_capacity_tokens=200_000)
    full = run_policy("least_kv", w, cl, 0, check_invariants=True).summary
    summ = run_policy("least_kv", w, cl, 0, record="summary").summary
    assert full["requests_completed"] == summ["requests_completed"] == 3000
    assert summ["avg_dp_imbalance"] == pytest.approx(full["avg_dp_imbalance"], rel=1e-12)
