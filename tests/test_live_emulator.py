"""backend=live end to end against the emulator: the HTTP API, every request once, pinning checked
against the emulator's per-engine counters, and the live summary against the simulator's."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from framework.cluster import ClusterConfig
from framework.live import launch
from framework.live.config import LiveBackendConfig
from framework.live.metrics import parse_engine_metrics
from framework.live.run import run_live
from framework.policy import load_all
from framework.runner import run_policy
from framework.workload import Workload

load_all()
SCALE = 0.5  # wall seconds per workload second: 30 ms steps run in 15 ms


def small_workload(n: int = 60, rate: float = 40.0, seed: int = 1, prompt=(50, 400), output=(5, 60)) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload("live-test", np.cumsum(rng.exponential(1 / rate, n)) - 0.0,
                    rng.integers(*prompt, n), rng.integers(*output, n))


@pytest.fixture(scope="module")
def emu4():
    with launch.emulator(4, "--time-scale", str(SCALE)) as srv:
        yield srv


def _post(url: str, body: dict, headers: dict | None = None):
    req = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json", **(headers or {})})
    return urllib.request.urlopen(req, timeout=30)


def _metrics(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        return parse_engine_metrics(r.read().decode())


def test_emulator_speaks_the_streaming_api_and_counts_per_engine(emu4):
    before = _metrics(emu4.url)
    with _post(emu4.url, {"prompt": list(range(7)), "max_tokens": 3, "stream": True,
                          "stream_options": {"include_usage": True}}, {"X-data-parallel-rank": "2"}) as r:
        lines = [ln for ln in r.read().decode().split("\n\n") if ln]
    assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "length"]
    assert chunks[3]["choices"] == [] and chunks[3]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3,
                                                                  "total_tokens": 10}
    after = _metrics(emu4.url)
    assert sorted(after) == [0, 1, 2, 3]
    for g in range(4):
        d_prompt = after[g]["prompt_tokens"] - before[g]["prompt_tokens"]
        d_gen = after[g]["generation_tokens"] - before[g]["generation_tokens"]
        assert (d_prompt, d_gen) == ((7, 3) if g == 2 else (0, 0))
    assert set(after[0]) == {"running", "waiting", "kv_usage", "prompt_tokens", "generation_tokens"}


@pytest.mark.parametrize("body,header,status", [
    ({"prompt": [1, 2], "max_tokens": 2}, {"X-data-parallel-rank": "4"}, 400),  # rank out of range
    ({"prompt": [1, 2], "max_tokens": 2}, {"X-data-parallel-rank": "x"}, 400),
    ({"prompt": [], "max_tokens": 2}, {}, 400),
    ({"prompt": [1], "max_tokens": 0}, {}, 400),
])
def test_emulator_rejects_what_vllm_rejects(emu4, body, header, status):
    with pytest.raises(urllib.error.HTTPError) as e:
        _post(emu4.url, body, header)
    assert e.value.code == status


def _backend(url: str, **kw) -> LiveBackendConfig:
    return LiveBackendConfig(url=url, time_scale=SCALE, **kw)


@pytest.mark.parametrize("policy", ["round_robin", "br0"])
def test_every_request_completes_once_where_the_policy_placed_it(emu4, policy):
    w = small_workload()
    out = run_live(_backend(emu4.url), policy, w, ClusterConfig(workers=4), seed=0)
    s, rq = out.summary, out.requests
    assert s["requests_completed"] == s["requests_total"] == len(w) and s["requests_failed"] == 0
    assert (rq.status == "done").all() and (rq.attempts == 1).all() and rq.request_id.is_unique
    assert np.isfinite(rq.first_token_s).all() and (rq.finish_s > rq.first_token_s).all()
    assert (rq.first_token_s >= rq.arrival_s).all()
    # the emulator's own per-engine counters moved by exactly what the router sent each rank
    per_rank = rq.groupby("worker").prompt_tokens.sum().reindex(range(4), fill_value=0).tolist()
    assert s["server_prompt_tokens"] == per_rank and s["pinning_verified"] is True
    assert s["server_generation_tokens"] == rq.groupby("worker").output_tokens.sum().reindex(
        range(4), fill_value=0).tolist()
    st = out.steps
    assert len(st) == s["steps"] * 4 and st.load_tokens.min() >= 0
    assert st.decode_tokens.sum() == w.output_tokens.sum()  # every streamed token counted once


def test_live_summary_is_within_10pct_of_the_simulator_on_the_same_preset(emu4):
    """round_robin places identically (its rule ignores state); the loads it sees then evolve as in the
    simulator, up to the wall clock's jitter."""
    w = small_workload(n=80, rate=30.0, seed=3)
    cl = ClusterConfig(workers=4)
    live = run_live(_backend(emu4.url), "round_robin", w, cl, seed=0)
    sim = run_policy("round_robin", w, cl, seed=0)
    assert (live.requests.worker.to_numpy() == sim.result.req_worker).all()
    for k in ("avg_dp_imbalance", "throughput_tokens_per_s", "tpot_p50_s", "makespan_s", "balance_ratio"):
        a, b = live.summary[k], sim.summary[k]
        assert abs(a - b) <= 0.10 * abs(b), (k, a, b)
