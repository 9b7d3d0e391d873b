"""The arrival-source seam: a workload fed in chunks simulates exactly as the same workload in memory,
while the simulator's window holds only a part of it; streamed trace files give the in-memory requests."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framework.cluster import ClusterConfig, CostConfig
from framework.workloads.config import workload_config
from framework.errors import ConfigError, TraceFormatError
from framework.policy import DISPATCH, Policy, PolicyContext, make_policy
from framework.oracle import OracleChannel
from framework.runner import prepare_workload, run_policy
from framework.simulator import Simulator
from framework.view import Placements
from framework.workload import Chunk, Workload, WorkloadStream
from framework.workloads.generate import generate
from framework.workloads.stream import open_stream, should_stream

TIMING = {"decision_ms_p50", "decision_ms_p99", "decision_ms_max", "sim_wall_s", "request_steps_per_s"}
KV_BOUND = ClusterConfig(workers=3, max_running=6, kv_capacity_tokens=3000, prefill_chunk_tokens=128,
                         cost=CostConfig(c0=0.02, c_seq=1e-4, c_kv=2e-7, c_pf=2e-5, c_sync=1e-3))


def _random_workload(n: int = 1500, seed: int = 3) -> Workload:
    rng = np.random.default_rng(seed)
    out = rng.integers(1, 40, n)
    out[n // 2:] = rng.integers(1, 400, n - n // 2)  # later chunks bring longer outputs: the calendar grows
    return Workload("w", np.cumsum(rng.exponential(0.004, n)), rng.integers(1, 600, n), out)


def _chunked(w: Workload, sizes: list[int]) -> WorkloadStream:
    cuts = np.cumsum(sizes)[:-1]

    def chunks():
        for a, p, o in zip(*(np.split(x, cuts) for x in (w.arrival_s, w.prompt_tokens, w.output_tokens))):
            yield Chunk(a, p, o)
    return WorkloadStream(w.name, chunks, total=len(w))


def _same(a, b, record: str) -> None:
    sa = {k: v for k, v in a.summary.items() if k not in TIMING}
    sb = {k: v for k, v in b.summary.items() if k not in TIMING}
    assert sa == sb
    if record != "summary":
        assert a.requests.equals(b.requests) and a.steps.equals(b.steps)


@pytest.mark.parametrize("policy", ["vllm", "br0", {"name": "brh", "classifier": "oracle"}])
@pytest.mark.parametrize("record", ["full", "summary"])
def test_chunked_equals_in_memory(policy, record):
    # vllm: completion callbacks; br0: a pool policy; brh[oracle]: the oracle reads the window
    w = _random_workload()
    mem = run_policy(policy, w, KV_BOUND, 0, record=record, check_invariants=True)
    rng = np.random.default_rng(1)
    sizes = list(rng.integers(1, 60, 40))  # the 41st chunk is the rest; some are empty
    sizes[5] = 0
    sizes.append(len(w) - sum(sizes))
    streamed = run_policy(policy, _chunked(w, sizes), KV_BOUND, 0, record=record, check_invariants=True)
    assert mem.summary["preemptions"] > 0  # the run exercises preemption across window moves
    _same(mem, streamed, record)


def test_the_window_holds_only_part_of_the_workload():
    w = _random_workload(3000)
    w = Workload("w", w.arrival_s * 10, w.prompt_tokens, w.output_tokens)  # 25 req/s: the cluster keeps up
    cl = ClusterConfig(workers=4, max_running=64, kv_capacity_tokens=10**6, cost=CostConfig(c0=0.02))
    ctx = PolicyContext.for_cluster(cl, 0, oracle_channel=OracleChannel(w.output_tokens))
    sim = Simulator(_chunked(w, [100] * 30), cl, make_policy("least_kv", ctx), record="summary")
    res = sim.run()
    assert res.requests_total == 3000 and res.latency["requests_completed"] == 3000
    assert sim.win.RQ.shape[1] <= 1024  # live requests plus a chunk, never the 3000


def test_unsorted_chunks_are_refused():
    w = _random_workload(200)
    bad = WorkloadStream("bad", lambda: iter([Chunk(w.arrival_s[100:], w.prompt_tokens[100:], w.output_tokens[100:]),
                                              Chunk(w.arrival_s[:100], w.prompt_tokens[:100], w.output_tokens[:100])]))
    with pytest.raises(TraceFormatError, match="back in time"):
        run_policy("least_kv", bad, KV_BOUND, 0)


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "t.csv"
    rng = np.random.default_rng(0)
    generate(path, 6000, days=0.02, lengths=(rng.integers(1, 500, 300), rng.integers(1, 200, 300)), seed=1)
    return path


@pytest.mark.parametrize("train,cap,low", [(0.0, None, None), (0.1, None, None), (0.1, 2000, None),
                                           (0.0, None, 30)])
def test_streamed_trace_gives_the_in_memory_requests(trace, train, cap, low):
    cfg = workload_config("trace", path=str(trace), train_fraction=train, max_requests=cap,
                          min_output_tokens=low, rate_scale=3.0)
    cl = ClusterConfig(workers=4, max_running=16, kv_capacity_tokens=60000, cost=CostConfig(c0=0.03))
    tr_mem, mem = prepare_workload(cfg, 0)
    tr_str, stream = open_stream(cfg, chunk_rows=700, block_size=1 << 14)
    assert stream.total == (len(mem) if train else None)  # counted only when the split needs it
    if train:
        for col in ("arrival_s", "prompt_tokens", "output_tokens"):
            np.testing.assert_array_equal(getattr(tr_mem, col), getattr(tr_str, col))
    _same(run_policy("least_kv", mem, cl, 0, training=tr_mem), run_policy("least_kv", stream, cl, 0,
                                                                          training=tr_str), "full")


def test_stream_choice(trace):
    cfg = workload_config("trace", path=str(trace))
    assert not should_stream(cfg, "auto")  # a small file is read into memory
    assert should_stream(cfg, "true") and not should_stream(cfg, "false")
    with pytest.raises(ConfigError, match="stream=true"):
        should_stream(workload_config("synthetic"), "true")
    with pytest.raises(ConfigError, match="stream='sometimes'"):
        should_stream(cfg, "sometimes")


def test_a_streamed_unsorted_file_names_the_line(tmp_path):
    path = tmp_path / "u.csv"
    rows = [f"2024-05-12 00:00:{s:02d}+00:00,10,5" for s in (1, 2, 3, 2)]
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n")
    _, stream = open_stream(workload_config("trace", path=str(path), train_fraction=0))
    with pytest.raises(TraceFormatError, match="line 5 .*stream=false"):
        run_policy("least_kv", stream, ClusterConfig(workers=2), 0)


def test_week_benchmark_quick_form(tmp_path):
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "week.py"), "--rows", "5000",
                          "--policies", "least_kv", "--cache", str(tmp_path)], capture_output=True, text=True,
                         cwd=root, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    run = res["runs"][0]
    assert run["requests"] == 5000 and run["steps"] > 0 and run["peak_rss_mb"] > 0 and run["user_cpu_s"] > 0
    assert res["rows"] / (res["days"] * 86400) == pytest.approx(27.3e6 / (7 * 86400))  # the week's rate
    assert (tmp_path / "week").is_dir()  # the generated file lives in the cache, not the repo


class _RecordKeys(Policy):
    """Dispatch round robin, remembering the prompt key the view showed for every request."""

    family = DISPATCH
    name = "_keys"

    def __init__(self, config, context):
        super().__init__(config, context)
        self.seen: dict[int, int] = {}

    def decide(self, view):
        self.seen.update(zip(view.waiting_ids.tolist(), view.waiting_key.tolist()))
        return Placements.of(view.waiting_ids, view.waiting_ids % self.G)


def test_prompt_keys_reach_the_view_through_the_stream(tmp_path):
    path = tmp_path / "k.csv"
    rows = [f"2024-05-12 00:00:{i // 10:02d}.{i % 10}+00:00,{10 + i % 7},{1 + i % 5},h{i % 13}" for i in range(300)]
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens,prompt_hash\n" + "\n".join(rows) + "\n")
    cfg = workload_config("trace", path=str(path), train_fraction=0)
    cl = ClusterConfig(workers=2)
    seen = []
    for w in (prepare_workload(cfg, 0)[1], open_stream(cfg, chunk_rows=40, block_size=1 << 10)[1]):
        pol = _RecordKeys(None, PolicyContext.for_cluster(cl, 0))
        Simulator(w, cl, pol).run()
        seen.append(pol.seen)
    assert seen[0] == seen[1] and len(seen[0]) == 300
    assert len(set(seen[0].values())) == 13 and min(seen[0].values()) >= 0  # 13 distinct prompts, all keyed
