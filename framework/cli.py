"""The ``balanceroute`` Hydra app: one simulation per invocation (or per point of a --multirun sweep).

    balanceroute policy=NAME workload=PRESET cluster=PRESET [key=value ...] hydra.run.dir=DIR

writes summary.json, steps.parquet, requests.parquet (and Hydra's .hydra/) into the run folder.
User errors print one paragraph and exit 2; ``debug=true`` or BALANCEROUTE_DEBUG=1 shows tracebacks.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from framework.config import register_configs
from framework.errors import UserError
from framework.policy import load_all

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")

register_configs()
load_all()


def _headline(summary: dict, run_dir: Path) -> str:
    f = summary
    oracle = "  [ORACLE USED: " + ", ".join(f["oracle_components"]) + "]" if f["oracle_used"] else ""
    return (f"balanceroute: {f['policy']} on {f['workload']} ({f['workers']} workers, "
            f"{f['requests_completed']}/{f['requests_total']} requests, {f['steps']} steps){oracle}\n"
            f"  avg_dp_imbalance {f['avg_dp_imbalance']:.4f}   balance_ratio {f['balance_ratio']:.4f}   "
            f"idle_fraction {f['idle_fraction']:.4f}\n"
            f"  throughput {f['throughput_tokens_per_s']:.1f} tok/s   TTFT p50/p99 "
            f"{f['ttft_p50_s']:.3f}/{f['ttft_p99_s']:.3f} s   TPOT p50/p99 "
            f"{f['tpot_p50_s'] * 1e3:.1f}/{f['tpot_p99_s'] * 1e3:.1f} ms   decision p99 "
            f"{f['decision_ms_p99']:.3f} ms\n"
            f"  results: {run_dir}")


def run_from_config(cfg: DictConfig, run_dir: Path) -> dict:
    """Compose-time config -> run folder; shared by the CLI and the config-driven tests."""
    from framework.cluster import ClusterConfig
    from framework.config import WorkloadConfig
    from framework.results import write_json_atomic, write_run
    from framework.runner import prepare_workload, run_policy

    t0 = time.perf_counter()
    wcfg: WorkloadConfig = OmegaConf.to_object(cfg.workload)
    ccfg: ClusterConfig = OmegaConf.to_object(cfg.cluster)
    train, workload = prepare_workload(wcfg, int(cfg.seed))
    out = run_policy(cfg.policy, workload, ccfg, int(cfg.seed), training=train,
                     check_invariants=bool(cfg.check_invariants), progress=bool(cfg.progress),
                     max_steps=int(cfg.max_steps), record=str(cfg.record),
                     record_every=int(cfg.record_every))
    summary = dict(out.summary)
    summary["cluster"] = ccfg.name
    summary["train_requests"] = 0 if train is None else len(train)
    summary["wall_s"] = time.perf_counter() - t0
    write_run(run_dir, summary, out.steps, out.requests)
    return summary


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="config")
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    debug = bool(cfg.get("debug", False)) or os.environ.get("BALANCEROUTE_DEBUG") == "1"
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = run_from_config(cfg, run_dir)
    except UserError as e:
        if debug:
            raise
        print(f"balanceroute: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    print(_headline(summary, run_dir))


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
