"""Decision latency of any registered policy on realistic cluster states; prints one JSON object.

    python benchmarks/decision_latency.py --policy br0 --waiting 512 --workers 32
    python benchmarks/decision_latency.py --policy brh --waiting 512 --workers 32 --horizon 16
    python benchmarks/decision_latency.py --policy lp --waiting 64 --workers 8 --set time_limit_s=0.01

Every decision gets a fresh state: per worker, running requests whose prompt and output lengths are
rows of the Azure 2023 conversation trace (BALANCEROUTE_DATA, default ../shared/data), each at a uniform
point of its decode (so loads s_g are sums of real contexts), and N waiting requests with trace prompts.
Free slots are drawn so that together they cover at least a quarter of the waiting requests. The state
is a real framework.state.ClusterState, the object the simulator fills, so the policy sees a real
ClusterView and the timing covers decide() as the simulator measures it. The trace's first rows are the training split (for learned classifiers);
oracle components get a channel over the sampled output lengths.

Reports wall-clock and thread CPU time percentiles (CPU time is what the targets mean on a shared
machine: it excludes time the process was descheduled). Pin to one core with --cpu N.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from framework.errors import ConfigError, UserError, report  # noqa: E402
from framework.oracle import OracleChannel  # noqa: E402
from framework.placement import validate_placements  # noqa: E402
from framework.policy import PolicyContext, get_policy_class, make_policy  # noqa: E402
from framework.state import ClusterState  # noqa: E402
from framework.view import ClusterView  # noqa: E402
from framework.workload import Workload  # noqa: E402

TRACE = "AzureLLMInferenceTrace_conv.csv"


def data_dir() -> Path:
    return Path(os.environ.get("BALANCEROUTE_DATA", ROOT.parent / "shared" / "data"))


def load_trace(path: Path) -> Workload:
    """The trace's rows as a Workload (arrival seconds from the first row)."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"Trace {path} not found; set BALANCEROUTE_DATA to the folder holding {TRACE}.")
    df = pd.read_csv(path)
    t = pd.to_datetime(df["TIMESTAMP"]).astype("int64").to_numpy() / 1e9
    return Workload("azure_conv_2023", t - t[0], df["ContextTokens"].to_numpy(),
                    df["GeneratedTokens"].to_numpy(), source=str(path))


def draw_state(rng: np.random.Generator, prompts: np.ndarray, outputs: np.ndarray, *, G: int, B: int,
               C: int, waiting: int, step: int, now_s: float, key_mod: int = 0) -> tuple[ClusterState, np.ndarray]:
    """One random realistic ClusterState; also the output lengths of all its ids (for oracles)."""
    per = -(-max(waiting, 4) // (4 * G))  # ceil(waiting / 4 / G): free slots per worker at least
    free = np.minimum(rng.integers(per, 2 * per + 1, G), B)
    n = B - free
    R = int(n.sum())
    rows = rng.integers(0, len(prompts), R + waiting)
    p, o = prompts[rows], outputs[rows]
    decoded = (rng.random(R) * o[:R]).astype(np.int64)  # 0 <= d < o: still running
    worker = np.repeat(np.arange(G, dtype=np.int64), n)
    arrival = np.concatenate((np.zeros(R), now_s - np.sort(rng.random(waiting))[::-1] * 2.0))
    state = ClusterState.build(step=step, now_s=now_s, max_running=np.full(G, B, np.int64),
                               kv_capacity=np.full(G, C, np.int64), prompt=p, arrival_s=arrival,
                               running=zip(range(R), worker.tolist(), decoded.tolist()),
                               waiting=np.arange(R, R + waiting, dtype=np.int64),
                               keys=rows % key_mod if key_mod else None)
    if np.any(state.loads > C):
        raise ConfigError("benchmark state exceeds kv capacity; raise --kv-capacity")
    return state, o


def parse_sets(items: list[str]) -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--set {it!r}: expected KEY=VALUE.")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def run(args: argparse.Namespace) -> dict:
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    trace = load_trace(data_dir() / TRACE)
    n_train = int(len(trace) * args.train_fraction)
    train = trace.take(slice(0, n_train), "train") if n_train else None
    if train is not None and args.prompt_keys:  # key = trace row mod K: test rows share the training keys
        train = Workload("train", train.arrival_s, train.prompt_tokens, train.output_tokens,
                         prompt_key=np.arange(n_train) % args.prompt_keys)
    prompts = trace.prompt_tokens[n_train:]
    outputs = trace.output_tokens[n_train:]

    cfg = {"name": args.policy, **parse_sets(args.set)}
    cls = get_policy_class(args.policy)
    known = {f.name for f in fields(cls.config_class)}
    if args.horizon is not None:
        if "horizon" not in known:
            raise ConfigError(f"--horizon given but policy {args.policy!r} has no horizon option.")
        cfg["horizon"] = args.horizon

    G, N = args.workers, args.waiting
    rng = np.random.default_rng(args.seed)
    # the oracle channel is refreshed per state (same object)
    current = {"o": np.ones(G * args.max_running + N, np.int64)}
    channel = OracleChannel(lookup=lambda ids: current["o"][ids])
    ctx = PolicyContext(workers=G, max_running=np.full(G, args.max_running, np.int64),
                        kv_capacity=np.full(G, args.kv_capacity, np.int64), seed=args.seed,
                        training=train, oracle_channel=channel)
    policy = make_policy(cfg, ctx)

    wall, cpu, placed = [], [], []
    total = args.decisions + args.warmup
    for k in range(total):
        state, o = draw_state(rng, prompts, outputs, G=G, B=args.max_running, C=args.kv_capacity,
                              waiting=N, step=k, now_s=0.03 * k, key_mod=args.prompt_keys)
        current["o"] = o  # same channel object the oracle components hold
        # the states are independent and reuse request ids, so each gets a fresh policy: per-request
        # memory (hold counters) carried across unrelated states would force placements unsolved
        policy = make_policy(cfg, ctx)
        view = ClusterView(state)
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        pl = policy.decide(view)
        t1 = time.perf_counter_ns()
        c1 = time.thread_time_ns()
        if k >= args.warmup:
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
            placed.append(len(pl[0]))
        if args.validate:  # the simulator's own acceptance rules, so no invalid decision is timed
            validate_placements(pl, state, family=policy.family, policy=args.policy)
    wall_ms = np.asarray(wall) / 1e6
    cpu_ms = np.asarray(cpu) / 1e6
    return {
        "policy": args.policy, "config": {k: v for k, v in cfg.items() if k != "name"},
        "waiting": N, "workers": G, "horizon": args.horizon, "max_running": args.max_running,
        "decisions": args.decisions,
        "p50_ms": float(np.percentile(wall_ms, 50)), "p99_ms": float(np.percentile(wall_ms, 99)),
        "mean_ms": float(wall_ms.mean()), "max_ms": float(wall_ms.max()),
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)), "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
        "placed_mean": float(np.mean(placed)), "oracle_used": ctx.oracle_used,
        "pinned_cpu": args.cpu,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--waiting", type=int, default=512)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--horizon", type=int, default=None)
    ap.add_argument("--decisions", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20, help="untimed first decisions (JIT compile)")
    ap.add_argument("--max-running", type=int, default=256, help="B_g per worker")
    ap.add_argument("--kv-capacity", type=int, default=2_000_000, help="C_g tokens per worker")
    ap.add_argument("--train-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt-keys", type=int, default=0,
                    help="give requests prompt keys (trace row mod K) so exact_match takes its keyed path")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core")
    ap.add_argument("--validate", action="store_true", help="check every placement (untimed)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="policy option (JSON value), repeatable")
    args = ap.parse_args(argv)
    if args.decisions < 1 or args.waiting < 1 or args.workers < 1:
        ap.error("--decisions, --waiting and --workers must be >= 1")
    try:
        print(json.dumps(run(args)))
    except UserError as e:
        return report("decision_latency", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
