"""The README's "Adding a policy" example, run exactly as printed, so the example cannot rot."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framework.errors import ConfigError
from framework.policy import POLICIES

ROOT = Path(__file__).resolve().parent.parent
NAME = "greedy_least_load"


def readme_example() -> str:
    """The python block of the README's 'Adding a policy' section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Adding a policy", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section should hold exactly one python example"
    return blocks[0]


@pytest.fixture
def example(tmp_path):
    """The example loaded as a module (as a file in algorithms/ would be), unregistered afterwards."""
    path = tmp_path / "greedy.py"
    path.write_text(readme_example())
    spec = importlib.util.spec_from_file_location("readme_greedy", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["readme_greedy"] = mod
    try:
        spec.loader.exec_module(mod)
        yield path
    finally:
        POLICIES.unregister(NAME)
        sys.modules.pop("readme_greedy", None)


def test_example_has_no_placeholder():
    code = readme_example()
    assert "..." not in code and "pass\n" not in code


def test_example_runs_and_keeps_every_invariant(example, tmp_path):
    from framework.cli import run_from_config
    from tests.test_cli import compose_cfg

    cfg = compose_cfg([f"policy={NAME}", "policy.window=8", "workload.num_requests=400", "workload.rate_rps=200",
                       "cluster.workers=4", "cluster.max_running=8", "check_invariants=true", "progress=false"])
    s = run_from_config(cfg, tmp_path / "run")
    assert s["policy"] == NAME and s["requests_completed"] == s["requests_total"] == 360
    assert s["oracle_used"] is False


def test_example_places_on_the_least_loaded_worker_with_room(example):
    """One decision worked by hand: three waiting requests, loads (50, 10, 30), worker 1 has one slot."""
    from framework.policy import PolicyContext, make_policy

    ctx = PolicyContext(workers=3, max_running=np.full(3, 4), kv_capacity=np.full(3, 1000))
    pol = make_policy({"name": NAME, "window": 64}, ctx)

    class View:  # the fields the example reads, as ClusterView exposes them
        loads = np.array([50, 10, 30])
        free_slots = np.array([2, 1, 2])
        free_kv = np.array([500, 500, 25])
        waiting_ids = np.array([7, 8, 9])
        waiting_prompt = np.array([20, 20, 100])

    got = pol.decide(View())
    # 7 -> worker 1 (load 10); 8 -> worker 2 (30 < 50, 25 KV free >= 20); 9 needs 100 KV: only worker 0
    assert got.requests.tolist() == [7, 8, 9] and got.workers.tolist() == [1, 2, 0]


def test_example_option_is_checked_and_listed_in_help(example):
    from framework.help import policies_section
    from framework.policy import PolicyContext, make_policy

    ctx = PolicyContext(workers=2, max_running=np.full(2, 4), kv_capacity=np.full(2, 100))
    with pytest.raises(ConfigError, match="policy.window=0"):
        make_policy({"name": NAME, "window": 0}, ctx)
    page = "\n".join(policies_section())
    assert f"{NAME}  [pool]  Admit the oldest waiting requests" in page
    assert "policy.window=64" in page and "consider the oldest this-many waiting requests" in page


def test_example_from_the_command_line(example, tmp_path):
    """As the README says: `policy=greedy_least_load` on the command line once the file is loaded."""
    # python -c DRIVER FILE OVERRIDES...: load FILE (as load_all loads algorithms/*), then the CLI
    driver = ("import sys, importlib.util as u; f = sys.argv[1]; sys.argv = ['balanceroute', *sys.argv[2:]]; "
              "s = u.spec_from_file_location('greedy', f); s.loader.exec_module(u.module_from_spec(s)); "
              "from framework.cli import main; main()")
    env = dict(os.environ)
    env.pop("BALANCEROUTE_DEBUG", None)
    p = subprocess.run([sys.executable, "-c", driver, str(example), f"policy={NAME}", "policy.window=16",
                        "workload.num_requests=200", "cluster.workers=4", "progress=false",
                        f"hydra.run.dir={tmp_path}/run"], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"balanceroute: {NAME} on default (4 workers, 180/180 requests" in p.stdout
    assert (tmp_path / "run" / "summary.json").exists()
