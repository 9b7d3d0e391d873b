"""The live router's accounting, the /metrics parser and the SSE token counting, by hand; and the CLI's
backend=live contract."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework.cluster import ClusterConfig
from framework.live import launch
from framework.live.client import _tokens_in
from framework.live.metrics import MetricsFormatError, parse_engine_metrics
from framework.live.state import LiveState
from framework.workload import Workload

BIN = Path(sys.executable).parent / "balanceroute"


def test_accounting_by_hand():
    w = Workload("t", np.zeros(4), [10, 20, 30, 40], [2, 3, 1, 5])
    st = LiveState(w, ClusterConfig(workers=2, max_running=1, kv_capacity_tokens=1000, kv_watermark=0.0))
    st.arrive(np.arange(4))
    for r, g in ((0, 0), (1, 0), (2, 1)):
        st.send(r, g, tick=0)
    v = st.view(0, 0.0, np.zeros(2, bool))
    # rank 0 holds 0 (prefilling, its only slot) and 1 (queued); rank 1 prefills 2
    assert v.prefilling.tolist() == [1, 1] and v.queued.tolist() == [1, 0]
    assert v.committed_tokens.tolist() == [30, 30] and v.free_slots.tolist() == [0, 0]
    assert v.free_kv.tolist() == [970, 970] and v.waiting_ids.tolist() == [3] and v.loads.tolist() == [0, 0]
    st.tokens(0, 1, now_s=0.1, tick=1)  # first token of request 0: it decodes, load prompt + 1
    st.tokens(0, 2, now_s=0.2, tick=2)
    v = st.view(2, 0.2, np.zeros(2, bool))
    assert v.loads.tolist() == [12, 0] and v.running.tolist() == [1, 0]
    assert v.running_ids.tolist() == [0] and v.running_decoded.tolist() == [2] and v.running_prompt.tolist() == [10]
    assert v.prefilling.tolist() == [0, 1] and v.queued.tolist() == [1, 0]  # no slot left for request 1
    st.finish(0, 0.25)
    st.requeue(2)  # its rank went down before its first token
    v = st.view(3, 0.3, np.array([False, True]))
    assert v.loads.tolist() == [0, 0] and v.waiting_ids.tolist() == [2, 3]
    assert v.free_slots.tolist() == [0, 0] and v.free_kv.tolist() == [980, 0]  # rank 1 down: no room shown
    assert v.prefilling.tolist() == [1, 0]  # request 1 now has rank 0's slot
    st.fail(3)
    assert st.status.tolist() == [4, 2, 1, 5] and st.attempt_prompt_tokens.tolist() == [10, 0]


METRICS = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting{engine="1",model_name="m"} 2.0
vllm:gpu_cache_usage_perc{engine="1",model_name="m"} 0.25
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 1.5e+06
vllm:prompt_tokens_total{engine="0",model_name="n"} 10.0
vllm:other_thing{engine="0"} 7
"""


def test_metrics_parser_reads_engines_and_the_older_cache_gauge():
    m = parse_engine_metrics(METRICS)
    assert m == {0: {"running": 3.0, "prompt_tokens": 1_500_010.0},
                 1: {"running": 1.0, "waiting": 2.0, "kv_usage": 0.25}}
    with pytest.raises(MetricsFormatError):
        parse_engine_metrics("vllm:num_requests_running{engine=\"0\" 3\n")


def test_tokens_counted_from_usage_when_present_else_one_per_chunk():
    assert _tokens_in({"choices": [{"text": "a"}]}, 4) == (5, True)
    assert _tokens_in({"choices": [{"text": "ab"}], "usage": {"completion_tokens": 7}}, 4) == (7, True)
    assert _tokens_in({"choices": [], "usage": {"completion_tokens": 7}}, 7) == (7, False)
    with pytest.raises(ValueError):
        _tokens_in({"error": "x"}, 0)


def test_cli_backend_live_writes_the_simulation_contract_and_rejects_bad_keys(tmp_path):
    with launch.emulator(4, "--time-scale", "0.5") as srv:
        args = [f"backend.url={srv.url}", "backend.time_scale=0.5", "policy=jsq", "workload.max_requests=30",
                "cluster.workers=4", "progress=false"]
        p = subprocess.run([str(BIN), "backend=live", *args, f"hydra.run.dir={tmp_path}/run"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        s = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert s["backend"] == "live" and s["requests_completed"] == s["requests_total"] == 30
        assert s["pinning_verified"] is True
        # the same run fields as a simulated run (framework.runner.run_fields): what sweeps match on
        assert s["workload_kind"] == "synthetic" and s["max_requests"] == 30 and len(s["config_hash"]) == 16
        assert "git_commit" in s and "code_version" in s
        for f in ("steps.parquet", "requests.parquet", "tokens.parquet", ".hydra/config.yaml"):
            assert (tmp_path / "run" / f).exists()
        assert len(pd.read_parquet(tmp_path / "run" / "steps.parquet")) == 4 * s["steps"]
        bad = subprocess.run([str(BIN), "backend=live", *args, "backend.bogus=1", f"hydra.run.dir={tmp_path}/bad"],
                             capture_output=True, text=True, timeout=300)
        assert bad.returncode != 0 and "bogus" in bad.stderr
    nourl = subprocess.run([str(BIN), "backend=live", "progress=false", f"hydra.run.dir={tmp_path}/nourl"],
                           capture_output=True, text=True, timeout=300)
    assert nourl.returncode == 2 and "backend.url" in nourl.stderr
