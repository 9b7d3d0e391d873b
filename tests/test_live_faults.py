"""Faults in a live run: a rank that refuses, hangs, drops or garbles streams, a rank killed mid-run, and
a deployment that fails everything. Every request ends completed or failed, exactly once, never lost."""
from __future__ import annotations

import json
import threading
import time
import urllib.request

import numpy as np
import pytest

from framework.cluster import ClusterConfig
from framework.errors import ConfigError
from framework.live import launch
from framework.live.config import LiveBackendConfig
from framework.live.metrics import parse_engine_metrics
from framework.live.run import run_live
from tests.test_live_emulator import SCALE, small_workload


@pytest.fixture(scope="module")
def _emu3():
    with launch.emulator(3, "--time-scale", str(SCALE)) as srv:
        yield srv


@pytest.fixture()
def emu3(_emu3):
    """One emulator for the module; every test starts and ends with no fault injected."""
    for g in range(3):
        fault(_emu3.url, g, "none")
    yield _emu3
    for g in range(3):
        fault(_emu3.url, g, "none")


def fault(url: str, rank: int, mode: str) -> None:
    req = urllib.request.Request(url + "/emulator/fault", json.dumps({"rank": rank, "mode": mode}).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


def accounted(out) -> None:
    """Each request is done xor failed, the summary's counts add up, nothing is left in flight."""
    s, rq = out.summary, out.requests
    assert set(rq.status) <= {"done", "failed"}
    assert s["requests_completed"] == (rq.status == "done").sum() == np.isfinite(rq.finish_s).sum()
    assert s["requests_completed"] + s["requests_failed"] == s["requests_total"] == len(rq)


@pytest.mark.parametrize("mode,cfg", [
    ("refuse", {}),
    ("hang", {"first_token_timeout_s": 0.5}),
    ("drop", {}),
    ("garbage", {}),
])
def test_a_faulty_rank_is_marked_down_and_its_requests_served_elsewhere(emu3, mode, cfg):
    fault(emu3.url, 1, mode)
    b = LiveBackendConfig(url=emu3.url, time_scale=SCALE, probe_interval_s=60, **cfg)
    out = run_live(b, "round_robin", small_workload(n=30), ClusterConfig(workers=3), seed=0)
    accounted(out)
    s, rq = out.summary, out.requests
    assert s["requests_completed"] == 30 and s["ranks_marked_down"] == 1
    assert (rq.worker != 1).all()  # finished elsewhere
    assert s["retries"] >= 1 and s["redirects"] >= 1  # round_robin kept choosing rank 1: redirected
    assert s["first_error"] and "rank 1" in s["first_error"]
    if mode == "garbage":
        assert "garbage" in s["first_error"]


def kill_when_busy(srv: launch.ServerProcess, running: int = 3, timeout_s: float = 60) -> None:
    """SIGKILL the server once it runs ``running`` requests (so the kill lands mid-stream)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(srv.url + "/metrics", timeout=5) as r:
                if parse_engine_metrics(r.read().decode())[0]["running"] >= running:
                    break
        except OSError:
            pass
        time.sleep(0.05)
    srv.stop(sig=9)


def test_a_rank_killed_mid_run_loses_no_request():
    """One endpoint per rank (external DP); rank 2's server is killed while it streams."""
    servers = [launch.emulator(1, "--time-scale", str(SCALE)).start() for _ in range(3)]
    try:
        for srv in servers:
            srv.wait_ready()
        w = small_workload(n=60, rate=30.0, output=(20, 80))
        b = LiveBackendConfig(urls=[s.url for s in servers], time_scale=SCALE, probe_interval_s=60)
        killer = threading.Thread(target=kill_when_busy, args=(servers[2],))
        killer.start()
        out = run_live(b, "br0", w, ClusterConfig(workers=3), seed=0)
        killer.join()
    finally:
        for srv in servers:
            srv.stop()
    accounted(out)
    s, rq = out.summary, out.requests
    assert s["requests_completed"] == 60, s["first_error"]
    assert s["ranks_marked_down"] == 1 and s["retries"] + s["reroutes"] >= 1
    assert (rq.attempts > 1).any()
    assert (rq[rq.worker == 2].attempts == 1).all()  # what finished there had not been moved
    assert s["server_prompt_tokens"][2] is None and s["pinning_verified"] is True  # the live ranks agree


def test_when_every_rank_fails_requests_are_failed_and_counted(emu3):
    for g in range(3):
        fault(emu3.url, g, "drop")
    b = LiveBackendConfig(url=emu3.url, time_scale=SCALE, probe_interval_s=0.2, give_up_s=1.0, max_attempts=2)
    out = run_live(b, "round_robin", small_workload(n=12), ClusterConfig(workers=3), seed=0)
    accounted(out)
    s = out.summary
    assert s["requests_completed"] == 0 and s["requests_failed"] == 12
    assert s["ranks_marked_down"] >= 3


def test_a_request_the_deployment_rejects_stops_the_run_with_the_reason(emu3):
    b = LiveBackendConfig(url=emu3.url, time_scale=SCALE, scrape_metrics=False)
    with pytest.raises(ConfigError, match=r"rejected request .* rank 3: HTTP 400.*out of range"):
        run_live(b, "round_robin", small_workload(n=8), ClusterConfig(workers=4), seed=0)
    b.scrape_metrics = True  # with /metrics, the mismatch is caught before anything is sent
    with pytest.raises(ConfigError, match=r"shows 3 engine\(s\) but cluster.workers=4"):
        run_live(b, "round_robin", small_workload(n=8), ClusterConfig(workers=4), seed=0)


def test_unreachable_deployment_and_bad_backend_configs_say_what_to_fix():
    port = launch.free_port()
    with pytest.raises(ConfigError, match="No endpoint of the deployment answers"):
        run_live(LiveBackendConfig(url=f"http://127.0.0.1:{port}", connect_timeout_s=1), "round_robin",
                 small_workload(n=4), ClusterConfig(workers=2), seed=0)
    for kw, msg in [({}, "exactly one of"), ({"url": "x", "urls": ["y"]}, "exactly one of"),
                    ({"urls": ["http://a"]}, "has 1 endpoint"), ({"url": "ftp://a"}, "must start with http"),
                    ({"url": "http://a", "pin": "bogus"}, "backend.pin"), ({"url": "http://a", "time_scale": 0}, "time_scale")]:
        with pytest.raises(ConfigError, match=msg):
            LiveBackendConfig(**kw).validate(2)
