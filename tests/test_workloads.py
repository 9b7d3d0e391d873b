"""Workload sources: Azure 2023/2024 CSV (streamed), Mooncake jsonl, lengths tables, synthetic arrivals,
and the errors bad input files give (configs: test_workload_configs.py; presets: test_workload_presets.py).

Expected values are worked out by hand or by an independent pure-Python parse of the timestamps.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from framework.workloads import WorkloadConfig, workload_config
from framework.errors import ConfigError, TraceFormatError, UserError
from framework.workload import split_train
from framework.workloads import load_workload, presets
from framework.workloads.arrivals import arrival_times
from framework.workloads.azure import read_azure_csv
from framework.workloads.lengths import read_lengths_table, sample_rows
from framework.workloads.mooncake import read_mooncake
from framework.workloads.synthetic import synthetic_lengths
from framework.workloads.window import Window, row_cap

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BALANCEROUTE_DATA") or REPO.parent / "shared" / "data")
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
needs_data = pytest.mark.skipif(not (DATA / "AzureLLMInferenceTrace_conv.csv").is_file(),
                                reason="shared trace data folder not found (set BALANCEROUTE_DATA)")


# ---------------------------------------------------------------------------------------------------
# helpers: write small trace files and parse their timestamps independently (pure Python)

def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def parse_ns(ts: str) -> int:
    """Independent oracle: nanoseconds since the epoch (UTC) of an Azure timestamp string."""
    ts = ts.strip()
    offset = timedelta(0)
    if ts[-6] in "+-" and ts[-3] == ":":
        sign = 1 if ts[-6] == "+" else -1
        offset = sign * timedelta(hours=int(ts[-5:-3]), minutes=int(ts[-2:]))
        ts = ts[:-6]
    base, _, frac = ts.partition(".")
    dt = datetime.strptime(base, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc) - offset
    whole = int(dt.timestamp())
    return whole * 10**9 + (int(frac.ljust(9, "0")) if frac else 0)


def azure_2024_text(n: int, seed: int, gap_s: float = 0.05) -> tuple[str, list[int], np.ndarray, np.ndarray]:
    """A 2024-format trace: +00:00 offsets and 0-9 fractional digits, varying per row."""
    rng = np.random.default_rng(seed)
    offs = np.cumsum(rng.integers(0, int(gap_s * 2e9), n))  # ns since the base, ties possible
    digits = rng.choice([0, 1, 3, 6, 7, 9], n)
    p = rng.integers(1, 9000, n)
    o = rng.integers(1, 2000, n)
    # truncating to fewer digits can move a row before its predecessor: sort the truncated times, as
    # the published files are sorted
    trunc = sorted((off - off % 10 ** (9 - d), d) for off, d in zip(offs.tolist(), digits.tolist()))
    base = datetime(2024, 5, 10)
    lines, ns = [HEADER], []
    for (off, d), pi, oi in zip(trunc, p.tolist(), o.tolist()):
        sec, frac = divmod(off, 10**9)
        stamp = (base + timedelta(seconds=sec)).strftime("%Y-%m-%d %H:%M:%S")
        if d:
            stamp += f".{frac // 10 ** (9 - d):0{d}d}"
        stamp += "+00:00"
        ns.append(parse_ns(stamp))
        lines.append(f"{stamp},{pi},{oi}\n")
    return "".join(lines), ns, p, o


def oracle_window(ns: list[int], window: Window) -> np.ndarray:
    """Indices of the rows a window keeps, by brute force."""
    t = (np.asarray(ns, dtype=np.int64) - ns[0]) / 1e9
    idx = np.flatnonzero((t >= window.start_s) & (t < window.end_s))
    return idx if window.cap is None else idx[: window.cap]


def trace_cfg(path: Path, **kw) -> WorkloadConfig:
    return workload_config(name="t", kind="trace", path=str(path), **kw)


# ---------------------------------------------------------------------------------------------------
# Azure formats

def test_2023_format_hand_computed(tmp_path):
    f = write(tmp_path, "a.csv", HEADER + "2023-11-16 18:15:46.6805900,374,44\n"
              "2023-11-16 18:15:50.9951690,396,109\n"
              "2023-11-16 18:15:51.2224670,879,55\n"
              "2023-11-16 18:16:46.6805901,91,16\n")
    r = read_azure_csv(f)
    np.testing.assert_allclose(r.t_s, [0.0, 4.314579, 4.541877, 60.0000001], rtol=0, atol=1e-9)
    assert r.prompt.tolist() == [374, 396, 879, 91]
    assert r.output.tolist() == [44, 109, 55, 16]
    assert r.meta["timestamp_format"] == "naive" and r.meta["sorted_by_loader"] is False


def test_2024_format_offsets_and_mixed_precision(tmp_path):
    f = write(tmp_path, "b.csv", HEADER + "2024-05-10 00:00:00.0093910+00:00,10,1\n"
              "2024-05-10 00:00:01+00:00,20,2\n"
              "2024-05-10 00:00:01.5+00:00,30,3\n"
              "2024-05-10 02:00:02.123456789+02:00,40,4\n")  # = 00:00:02.123456789 UTC
    r = read_azure_csv(f)
    np.testing.assert_allclose(r.t_s, [0.0, 0.990609, 1.490609, 2.114065789], rtol=0, atol=1e-9)
    assert r.prompt.tolist() == [10, 20, 30, 40] and r.output.tolist() == [1, 2, 3, 4]
    assert r.meta["timestamp_format"] == "utc_offset"
    assert r.meta["first_timestamp"].startswith("2024-05-10T00:00:00.00939100")


def test_bom_crlf_and_iso_t_z(tmp_path):
    f = tmp_path / "w.csv"
    f.write_bytes(b"\xef\xbb\xbfTIMESTAMP,ContextTokens,GeneratedTokens\r\n"
                  b"2024-05-10T00:00:00Z,5,6\r\n2024-05-10T00:00:02.25Z,7,8\r\n")
    r = read_azure_csv(f)
    np.testing.assert_allclose(r.t_s, [0.0, 2.25])
    assert r.prompt.tolist() == [5, 7] and r.output.tolist() == [6, 8]


def test_2024_generated_matches_python_parse(tmp_path):
    text, ns, p, o = azure_2024_text(3000, seed=1)
    r = read_azure_csv(write(tmp_path, "c.csv", text))
    expected = (np.asarray(ns) - ns[0]) / 1e9
    np.testing.assert_array_equal(r.t_s, expected)
    np.testing.assert_array_equal(r.prompt, p)
    np.testing.assert_array_equal(r.output, o)


@pytest.mark.parametrize("block", [64, 100, 1000, 1 << 20])
def test_chunked_read_equals_one_shot(tmp_path, block):
    text, ns, p, o = azure_2024_text(2000, seed=2)
    f = write(tmp_path, "d.csv", text)
    one = read_azure_csv(f, block_size=1 << 26)
    chunked = read_azure_csv(f, block_size=block)
    for a, b in ((one.t_s, chunked.t_s), (one.prompt, chunked.prompt), (one.output, chunked.output)):
        np.testing.assert_array_equal(a, b)
    assert one.meta["rows_read"] == chunked.meta["rows_read"] == 2000


@pytest.fixture(scope="module")
def window_file(tmp_path_factory):
    text, ns, p, _ = azure_2024_text(600, seed=3, gap_s=0.2)  # ~60 s of rows
    path = tmp_path_factory.mktemp("win") / "w.csv"
    path.write_text(text)
    return path, ns, p


@settings(max_examples=25, deadline=None)
@given(start=st.floats(0, 60), dur=st.one_of(st.none(), st.floats(0.01, 60)),
       cap=st.one_of(st.none(), st.integers(1, 300)), block=st.sampled_from([64, 333, 4096, 1 << 22]))
def test_window_and_cap_streaming_match_brute_force(window_file, start, dur, cap, block):
    f, ns, p = window_file
    w = Window(start, start + dur if dur is not None else math.inf, cap)
    r = read_azure_csv(f, w, block_size=block)
    idx = oracle_window(ns, w)
    t = (np.asarray(ns) - ns[0]) / 1e9
    np.testing.assert_array_equal(r.t_s, t[idx])
    np.testing.assert_array_equal(r.prompt, p[idx])
    # reading stops once the window or the cap is complete, whatever the chunk size
    if cap is not None and len(idx) == cap:
        assert r.meta["stopped_early"] and r.meta["rows_read"] == idx[-1] + 1
    elif np.any(t >= w.end_s):
        assert r.meta["stopped_early"] and r.meta["rows_read"] == int(np.argmax(t >= w.end_s))
    else:
        assert not r.meta["stopped_early"] and r.meta["rows_read"] == len(t)


def test_bad_row_after_the_window_is_not_read(tmp_path):
    """Reading stops at the window's end, so a bad row beyond it never matters, for any chunk size."""
    rows = [f"2023-11-16 18:00:{s:02d}.0000000,{s + 1},5\n" for s in range(40)]
    rows[30] = "2023-11-16 18:00:30.0000000,oops,5\n"
    f = write(tmp_path, "late.csv", HEADER + "".join(rows))
    for block in (64, 1 << 20):
        w = load_workload(trace_cfg(f, start_s=5, duration_s=10), 0)
        assert w.prompt_tokens.tolist() == list(range(6, 16))
        r = read_azure_csv(f, Window(5, 15), block_size=block)
        assert r.meta["rows_read"] == 15
    with pytest.raises(TraceFormatError, match=r"line 32 .*ContextTokens is 'oops'"):
        load_workload(trace_cfg(f), 0)


# ---------------------------------------------------------------------------------------------------
# window, rate_scale, row cap (hand-computed)

def _seconds_file(tmp_path: Path) -> Path:
    # rows at t = 0, 1, ..., 9 s (+0.25 s on odd seconds), prompt = 100 + t
    lines = [f"2023-11-16 18:00:{s:02d}.{2500000 if s % 2 else 0:07d},{100 + s},{1 + s}\n" for s in range(10)]
    return write(tmp_path, "s.csv", HEADER + "".join(lines))


def test_window_and_rate_scale_by_hand(tmp_path):
    f = _seconds_file(tmp_path)
    # t = 0, 1.25, 2, 3.25, 4, 5.25, 6, 7.25, 8, 9.25 ; window [2.5, 6.5) keeps 3.25, 4, 5.25, 6
    w = load_workload(trace_cfg(f, start_s=2.5, duration_s=4.0, rate_scale=2.0), seed=0)
    np.testing.assert_allclose(w.arrival_s, [0.0, 0.375, 1.0, 1.375], atol=1e-12)
    assert w.prompt_tokens.tolist() == [103, 104, 105, 106]
    assert w.meta["trace_offset_s"] == pytest.approx(3.25)
    # boundaries: start inclusive, end exclusive
    w = load_workload(trace_cfg(f, start_s=4.0, duration_s=2.0), seed=0)
    assert w.prompt_tokens.tolist() == [104, 105]
    np.testing.assert_allclose(w.arrival_s, [0.0, 1.25], atol=1e-12)
    # rate_scale 0.5 stretches time
    w = load_workload(trace_cfg(f, rate_scale=0.5), seed=0)
    np.testing.assert_allclose(w.arrival_s[:3], [0.0, 2.5, 4.0], atol=1e-12)


def test_max_requests_cap(tmp_path):
    f = _seconds_file(tmp_path)
    # cap = ceil(2 / (1 - 0.5)) + 1 = 5 rows of the window [1, inf): t = 1.25 .. 5.25
    w = load_workload(trace_cfg(f, start_s=1.0, max_requests=2, train_fraction=0.5), seed=0)
    assert w.prompt_tokens.tolist() == [101, 102, 103, 104, 105]
    assert w.meta["row_cap"] == 5 and w.meta["stopped_early"]
    train, sim = split_train(w, 0.5)
    assert len(sim) >= 2


@given(m=st.integers(1, 5000), f=st.floats(0.0, 0.95))
def test_row_cap_leaves_max_requests_after_split(m, f):
    n = row_cap(m, f)
    assert n - int(n * f) >= m  # split_train keeps n - int(n * f) rows to simulate
    assert n <= math.ceil(m / (1 - f)) + 1


def test_empty_window(tmp_path):
    f = _seconds_file(tmp_path)
    with pytest.raises(TraceFormatError, match=r"window.*start_s=50.*0 to 9\.2 s"):
        load_workload(trace_cfg(f, start_s=50.0), 0)
    with pytest.raises(TraceFormatError, match="window"):
        load_workload(trace_cfg(f, start_s=1.5, duration_s=0.4), 0)  # between rows at 1.25 and 2


# ---------------------------------------------------------------------------------------------------
# real 2023 files and presets from the data folder

@needs_data
@pytest.mark.parametrize("preset,rows,minutes,sha", [
    ("azure_conv_2023", 19_366, 58.362, "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"),
    ("azure_code_2023", 8_819, 57.266, "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6"),
])
def test_real_2023_traces(preset, rows, minutes, sha, monkeypatch):
    monkeypatch.setenv("BALANCEROUTE_DATA", str(DATA))
    w = load_workload(workload_config(name=preset, kind="trace", preset=preset), 0)
    assert len(w) == rows
    assert w.arrival_s[0] == 0.0 and w.arrival_s[-1] / 60 == pytest.approx(minutes, abs=0.001)
    assert w.meta["found_in"] == "data_dir" and w.meta["sha256"] == sha
    assert presets.sha256_of(Path(w.source)) == sha
    assert np.all(np.diff(w.arrival_s) >= 0) and w.meta["sorted_by_loader"] is False


@needs_data
def test_real_conv_statistics(monkeypatch):
    monkeypatch.setenv("BALANCEROUTE_DATA", str(DATA))
    w = load_workload(workload_config(kind="trace", preset="azure_conv_2023"), 0)
    assert w.prompt_tokens.mean() == pytest.approx(1154.70, abs=0.01)
    assert np.median(w.prompt_tokens) == 1020 and np.median(w.output_tokens) == 129


@needs_data
def test_sharegpt_table_and_resampling(monkeypatch):
    monkeypatch.setenv("BALANCEROUTE_DATA", str(DATA))
    p, o = read_lengths_table(DATA / "sharegpt_8k_lengths_llama2_tokenizer.csv")
    assert len(p) == len(o) == 30_731
    assert (p[0], o[0]) == (74, 918)
    w = load_workload(workload_config(kind="lengths", preset="sharegpt", num_requests=5000, rate_rps=10.0), 3)
    table = set(zip(p.tolist(), o.tolist()))
    assert len(w) == 5000 and set(zip(w.prompt_tokens.tolist(), w.output_tokens.tolist())) <= table
    assert w.meta["arrival"] == "poisson"


def test_sample_rows_uses_rows_evenly():
    rng = np.random.default_rng(0)
    idx = sample_rows(100, 60, rng)
    assert len(set(idx.tolist())) == 60  # no repeat while the table lasts
    counts = np.bincount(sample_rows(100, 250, rng), minlength=100)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 250


def test_lengths_table_aliases_and_errors(tmp_path):
    f = write(tmp_path, "l.csv", "id,input_length,output_length\n1,10,3\n2,20,4\n")
    p, o = read_lengths_table(f)
    assert p.tolist() == [10, 20] and o.tolist() == [3, 4]
    with pytest.raises(TraceFormatError, match=r"no column .*num_prefill_tokens.*'id', 'foo'"):
        read_lengths_table(write(tmp_path, "m.csv", "id,foo\n1,2\n"))
    with pytest.raises(TraceFormatError, match=r"line 3 .*output_length is 0"):
        read_lengths_table(write(tmp_path, "n.csv", "input_length,output_length\n1,2\n3,0\n"))


# ---------------------------------------------------------------------------------------------------
# arrival processes and the synthetic workload

N_BIG = 200_000


def _gaps(t: np.ndarray) -> np.ndarray:
    return np.diff(np.concatenate(([0.0], t)))


def test_poisson_rate_and_cv():
    t = arrival_times("poisson", N_BIG, 25.0, np.random.default_rng(0))
    g = _gaps(t)
    assert N_BIG / t[-1] == pytest.approx(25.0, rel=0.01)
    assert g.std() / g.mean() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_gamma_rate_and_cv(cv):
    t = arrival_times("gamma", N_BIG, 40.0, np.random.default_rng(1), burst_cv=cv)
    g = _gaps(t)
    assert N_BIG / t[-1] == pytest.approx(40.0, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(cv, rel=0.05)


def test_varying_rate_follows_the_sinusoid():
    rate, period, amp = 50.0, 10.0, 0.8
    t = arrival_times("varying", N_BIG, rate, np.random.default_rng(2), period_s=period, amplitude=amp)
    assert np.all(np.diff(t) > 0) and len(t) == N_BIG
    whole = math.floor(t[-1] / period) * period
    assert np.sum(t < whole) / whole == pytest.approx(rate, rel=0.01)
    # fold onto one period: arrivals per phase bin vs the integral of the rate over the bin
    bins = 10
    counts = np.bincount(((t[t < whole] % period) / period * bins).astype(int), minlength=bins)
    edges = np.linspace(0, period, bins + 1)
    integral = rate * (np.diff(edges) - amp * period / (2 * math.pi)
                       * np.diff(np.cos(2 * math.pi * edges / period)))
    expected = integral * whole / period
    np.testing.assert_allclose(counts, expected, rtol=0.05)
    assert counts.max() / counts.min() > 5  # the peak bin really is much busier than the trough


def test_arrivals_and_lengths_are_seeded():
    cfg = workload_config(arrival="gamma", num_requests=500)
    a, b, c = load_workload(cfg, 7), load_workload(cfg, 7), load_workload(cfg, 8)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    np.testing.assert_array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.arrival_s, c.arrival_s)
    assert not np.array_equal(a.prompt_tokens, c.prompt_tokens)
    # cfg.seed overrides the run's seed
    d = load_workload(dataclasses.replace(cfg, seed=7), 123)
    np.testing.assert_array_equal(a.output_tokens, d.output_tokens)
    # the arrival process does not change the requests (independent streams)
    e = load_workload(dataclasses.replace(cfg, arrival="varying", rate_rps=5.0), 7)
    np.testing.assert_array_equal(a.prompt_tokens, e.prompt_tokens)
    assert not np.array_equal(a.arrival_s, e.arrival_s)


def test_synthetic_lengths_shape():
    p, o = synthetic_lengths(N_BIG, np.random.default_rng(0))
    assert p.min() >= 1 and p.max() <= 8192 and o.min() >= 1 and o.max() <= 2048
    assert np.median(p) == pytest.approx(1020, rel=0.02) and p.mean() == pytest.approx(1155, rel=0.02)
    assert np.median(o) == pytest.approx(129, rel=0.03) and o.mean() == pytest.approx(211, rel=0.03)
    assert np.percentile(o, 99) > 5 * np.median(o)  # heavy-ish output tail


def test_default_workload():
    w = load_workload(workload_config(), 0)
    assert w.name == "default" and len(w) == 3000 and w.arrival_s[0] == 0.0
    assert len(w) / w.arrival_s[-1] == pytest.approx(40.0, rel=0.1)
    # a window on generated arrivals counts from the process start
    x = load_workload(workload_config(start_s=10.0, duration_s=20.0, rate_scale=4.0), 0)
    full = load_workload(workload_config(), 0)
    t_proc = full.arrival_s + full.meta["trace_offset_s"]
    keep = (t_proc >= 10.0) & (t_proc < 30.0)
    np.testing.assert_array_equal(x.prompt_tokens, full.prompt_tokens[keep])
    np.testing.assert_allclose(x.arrival_s, (t_proc[keep] - t_proc[keep][0]) / 4.0, atol=1e-9)


# ---------------------------------------------------------------------------------------------------
# mooncake

def test_mooncake_reader(tmp_path):
    recs = [{"timestamp": 1000, "input_length": 10, "output_length": 2, "hash_ids": [1, 2]},
            {"timestamp": 1500, "input_length": 11, "output_length": 3, "hash_ids": [1]},
            {"timestamp": 1250, "input_length": 12, "output_length": 4, "hash_ids": []},
            {"timestamp": 1500, "input_length": 13, "output_length": 5, "hash_ids": []}]
    f = write(tmp_path, "m.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n\n")
    w = load_workload(workload_config(kind="mooncake", path=str(f), rate_scale=0.5), 0)
    np.testing.assert_allclose(w.arrival_s, [0.0, 0.5, 1.0, 1.0])
    assert w.prompt_tokens.tolist() == [10, 12, 11, 13]  # stable: 11 before 13 (equal times)
    assert w.meta["sorted_by_loader"] is True


@pytest.mark.parametrize("line,pattern", [
    ('{"timestamp": 1, "input_length": 5}', r"line 2 .*no field 'output_length'.*'timestamp', 'input_length'"),
    ('{"timestamp": 1, "input_length": 5, "output_length": 0}', r"line 2 .*output_length is 0"),
    ('{"timestamp": 1, "input_length": 5.5, "output_length": 1}', r"line 2 .*input_length is 5.5"),
    ('{"timestamp": "x", "input_length": 5, "output_length": 1}', r"line 2 .*timestamp is 'x'"),
    ('{"timestamp": 1, "input_length": 5,', r"line 2 .*not valid JSON"),
])
def test_mooncake_errors(tmp_path, line, pattern):
    f = write(tmp_path, "bad.jsonl", '{"timestamp": 0, "input_length": 1, "output_length": 1}\n' + line + "\n")
    with pytest.raises(TraceFormatError, match=pattern):
        read_mooncake(f)


# ---------------------------------------------------------------------------------------------------
# bad Azure input: every case names the file, the line or the column

GOOD = "2023-11-16 18:15:46.6805900,374,44\n"


@pytest.mark.parametrize("body,pattern", [
    ("2023-11-16 18:15:47.0,abc,5\n", r"line 3 of .*ContextTokens is 'abc', not a whole number"),
    ("2023-11-16 18:15:47.0,12,-3\n", r"line 3 of .*GeneratedTokens is -3; every request needs at least 1"),
    ("2023-11-16 18:15:47.0,0,3\n", r"line 3 of .*ContextTokens is 0"),
    ("2023-11-16 18:15:47.0,12.5,3\n", r"line 3 of .*ContextTokens is '12.5'"),
    ("2023-11-16 18:15:47.0,,3\n", r"line 3 of .*ContextTokens is ''"),
    ("2023-11-16 25:15:47.0,1,3\n", r"line 3 of .*TIMESTAMP '2023-11-16 25:15:47.0' is not a timestamp"),
    ("yesterday,1,3\n", r"line 3 of .*TIMESTAMP 'yesterday'"),
    ("2023-11-16 18:15:47.0+00:00,1,3\n", r"line 3 of .*has a UTC offset while the file's first .* none"),
    ("2023-11-16 18:15:47.0,1\n", r"line 3 of .*does not have the header's 3 fields"),
    ("\n\n2023-11-16 18:15:47.0,x,1\n", r"line 5 of .*ContextTokens is 'x'"),  # blank lines counted
])
@pytest.mark.parametrize("block", [64, 1 << 20])
def test_bad_values_name_the_line(tmp_path, body, pattern, block):
    f = write(tmp_path, "bad.csv", HEADER + GOOD + body + GOOD.replace("46.68", "59.68"))
    with pytest.raises(TraceFormatError, match=pattern) as e:
        read_azure_csv(f, block_size=block)
    assert str(f) in str(e.value)


def test_naive_row_in_2024_file(tmp_path):
    f = write(tmp_path, "mix.csv", HEADER + "2024-05-10 00:00:00.1+00:00,1,1\n2024-05-10 00:00:00.2,1,1\n")
    with pytest.raises(TraceFormatError, match=r"line 3 .*has no UTC offset"):
        read_azure_csv(f)


def test_missing_empty_and_headerless(tmp_path):
    with pytest.raises(TraceFormatError, match=r"nope\.csv' does not exist.*workload\.path"):
        load_workload(trace_cfg(tmp_path / "nope.csv"), 0)
    with pytest.raises(TraceFormatError, match=r"is empty \(0 bytes\)"):
        read_azure_csv(write(tmp_path, "empty.csv", ""))
    with pytest.raises(TraceFormatError, match="header but no data rows"):
        read_azure_csv(write(tmp_path, "h.csv", HEADER))
    with pytest.raises(TraceFormatError, match="not a file"):
        read_azure_csv(tmp_path)


def test_missing_column_is_named(tmp_path):
    f = write(tmp_path, "c.csv", "TIMESTAMP,ContextTokens,Generated\n" + GOOD)
    with pytest.raises(TraceFormatError, match=r"no column 'GeneratedTokens'.*'TIMESTAMP', 'ContextTokens', "
                                               r"'Generated'"):
        read_azure_csv(f)


def test_unsorted_file_is_sorted_stably_and_noted(tmp_path, caplog):
    f = write(tmp_path, "u.csv", HEADER + "2023-11-16 18:00:05.0,5,1\n"
              "2023-11-16 18:00:07.0,7,1\n"
              "2023-11-16 18:00:03.0,3,1\n"       # goes back: line 4, and is the earliest
              "2023-11-16 18:00:07.0,8,1\n"
              "2023-11-16 18:00:06.0,6,1\n")
    with caplog.at_level(logging.WARNING, logger="balanceroute.workloads"):
        for block in (48, 1 << 20):
            r = read_azure_csv(f, block_size=block)
            assert r.prompt.tolist() == [3, 5, 6, 7, 8]  # 7 before 8: equal times keep file order
            np.testing.assert_allclose(r.t_s, [0, 2, 3, 4, 4])
            assert r.meta["sorted_by_loader"] is True and r.meta["first_unsorted_line"] == 4
    assert "not sorted" in caplog.text or "back in time" in caplog.text
    # window and cap count on the sorted times
    r = read_azure_csv(f, Window(2.5, 10, cap=2))
    assert r.prompt.tolist() == [6, 7]
    # unsorted beyond the point where reading stops is not seen (documented)
    r = read_azure_csv(f, Window(0, 1.5))
    assert r.prompt.tolist() == [5] and r.meta["sorted_by_loader"] is False


def test_errors_are_user_errors():
    assert issubclass(TraceFormatError, UserError) and issubclass(ConfigError, UserError)
