"""``check_policy(name)``: does a registered policy keep the rules every policy must keep?

Like Gymnasium's env checker, for routers: a contributor runs it on a new policy before any experiment
(``python -m framework.check_policy NAME``), and the test suite runs it over every registered policy, so
a rule is checked once, here, rather than in each policy's tests. The rules:

1. Every placement is one the cluster accepts. The policy runs inside the real simulator on small
   random workloads and clusters (bursty arrivals, tight slots and KV, fixed and load-dependent step
   costs), so it sees the views a run produces and the simulator's own placement validation and
   invariant checks judge every decision; every request must finish.
2. Determinism: the same seed twice gives the same placements and admission steps.
3. Ground truth only through the oracle channel: every read of true output lengths is counted, and a
   read without a grant from ``PolicyContext.request_oracle`` fails, as does any grant at all unless the
   caller says the configuration uses an oracle (``oracle=True``; default: the class's ``is_oracle``).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from framework.cluster import ClusterConfig, CostConfig
from framework.errors import UserError
from framework.oracle import OracleChannel
from framework.policy import PolicyContext, get_policy_class, make_policy
from framework.simulator import Simulator
from framework.workload import Workload


class PolicyCheckError(AssertionError):
    """A policy broke one of the rules in this module's docstring; the message says which and where."""


class _CountingOracle(OracleChannel):
    """The oracle channel, counting every read, so reads that bypass request_oracle are caught."""

    def __init__(self, output_tokens: np.ndarray) -> None:
        super().__init__(output_tokens)
        self.reads = 0

    def output_tokens(self, request_ids: np.ndarray) -> np.ndarray:
        self.reads += 1
        return super().output_tokens(request_ids)


@dataclass
class Case:
    """One random instance: a workload, its training history and a cluster."""

    workload: Workload
    training: Workload
    cluster: ClusterConfig


def random_case(rng: np.random.Generator, index: int = 0) -> Case:
    """A small random instance: 1-5 workers, 1-6 slots each, KV that sometimes binds, bursts."""
    G = int(rng.integers(1, 6))
    n = int(rng.integers(20, 70))

    def requests(name: str, count: int) -> Workload:
        gaps = rng.exponential(0.02, count) * (rng.random(count) < 0.6)  # 40% arrive with the previous
        return Workload(name, np.cumsum(gaps), rng.integers(1, 300, count), rng.integers(1, 40, count))

    w = requests(f"check{index}", n)
    peak = int((w.prompt_tokens + w.output_tokens).max())
    kv = int(peak * rng.choice([1.2, 3.0, 50.0]))  # 1.2: KV binds often; 50: never
    cost = CostConfig(c0=0.02) if rng.random() < 0.5 else \
        CostConfig(name="linear", c0=0.01, c_seq=1e-4, c_kv=2e-7, c_pf=2e-5)
    cluster = ClusterConfig(name=f"check{index}", workers=G, max_running=int(rng.integers(1, 7)),
                            kv_capacity_tokens=kv, kv_watermark=0.0,
                            prefill_chunk_tokens=int(rng.choice([0, 64, 8192])), cost=cost)
    return Case(w, requests(f"check{index}:train", 200), cluster)


def _run(config: Any, case: Case, seed: int) -> tuple[Any, PolicyContext, _CountingOracle]:
    oracle = _CountingOracle(case.workload.output_tokens)
    ctx = PolicyContext.for_cluster(case.cluster, seed, training=case.training, oracle_channel=oracle)
    policy = make_policy(config, ctx)
    res = Simulator(case.workload, case.cluster, policy, check_invariants=True).run()
    return res, ctx, oracle


def check_policy(name: str, config: Any = None, *, cases: int = 4, seed: int = 0,
                 oracle: bool | None = None) -> int:
    """Check policy ``name`` (with ``config``, a dict of options or a config, if given) on ``cases``
    random instances; raise PolicyCheckError on the first broken rule. Returns the decisions checked."""
    cls = get_policy_class(name)
    config = {"name": name} if config is None else config
    may_use_oracle = bool(getattr(cls, "is_oracle", False)) if oracle is None else oracle
    rng = np.random.default_rng([seed, 0xC4EC])
    decisions = 0
    for i in range(cases):
        case = random_case(rng, i)
        where = (f"policy {name!r} on random case {i} ({len(case.workload)} requests, "
                 f"{case.cluster.workers} workers x {case.cluster.max_running} slots, "
                 f"KV {case.cluster.kv_capacity_tokens}, seed {seed})")
        try:
            a, ctx, spy = _run(config, case, seed)
            b, _, _ = _run(config, case, seed)
        except UserError as e:  # PlacementError and friends: the simulator's own validation
            raise PolicyCheckError(f"{where}: {type(e).__name__}: {e}") from e
        if not np.isfinite(a.req_finish_s).all():
            raise PolicyCheckError(f"{where}: {int((~np.isfinite(a.req_finish_s)).sum())} request(s) "
                                   "never finished.")
        for field in ("req_worker", "req_admit_step"):
            x, y = getattr(a, field), getattr(b, field)
            if not np.array_equal(x, y):
                r = int(np.flatnonzero(x != y)[0])
                raise PolicyCheckError(f"{where}: not deterministic: with the same seed, request {r}'s "
                                       f"{field} was {int(x[r])} in one run and {int(y[r])} in the other. "
                                       "Draw randomness only from PolicyContext.rng.")
        if spy.reads and not ctx.oracle_used:
            raise PolicyCheckError(f"{where}: read true output lengths {spy.reads} time(s) without "
                                   "PolicyContext.request_oracle, so the run would not say oracle_used.")
        if ctx.oracle_used and not may_use_oracle:
            raise PolicyCheckError(f"{where}: requested the oracle ({', '.join(ctx.oracle_users)}) but "
                                   "is not flagged as using one (pass oracle=True for such a config).")
        decisions += len(a.decision_ns)
    return decisions


def main(argv: list[str] | None = None) -> int:
    from framework.policy import available_policies

    ap = argparse.ArgumentParser(prog="python -m framework.check_policy",
                                 description="Check registered policies against the rules every policy keeps.")
    ap.add_argument("policies", nargs="*", help="names (default: every registered policy)")
    ap.add_argument("--cases", type=int, default=4, help="random instances per policy (default 4)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    failed = 0
    for name in args.policies or available_policies():
        try:
            n = check_policy(name, cases=args.cases, seed=args.seed)
            print(f"ok      {name} ({n} decisions)")
        except (PolicyCheckError, UserError) as e:
            failed += 1
            print(f"FAILED  {name}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
