"""The ``balanceroute`` Hydra app: one simulation per invocation (or per point of a --multirun sweep).

    balanceroute policy=NAME workload=PRESET cluster=PRESET [key=value ...] hydra.run.dir=DIR

writes summary.json, steps.parquet, requests.parquet (and Hydra's .hydra/) into the run folder.
Every user error (a misspelt key, an unknown policy or preset, a bad trace, an invalid placement) prints
one ``balanceroute: error: ...`` paragraph and exits 2, whether Hydra or the project found it;
``debug=true`` or BALANCEROUTE_DEBUG=1 shows the traceback instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from framework.config import register_configs
from framework.errors import USER_ERROR_EXIT, user_message
from framework.help import register_help_resolver
from framework.policy import load_all
from framework.rundir import register_rundir_resolvers

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")

register_configs()
register_rundir_resolvers()
register_help_resolver()
load_all()


def _workload_line(f: dict) -> str:
    """What the run simulated, and what it did not: the training head and the seed's reach."""
    n_train, frac = f.get("train_requests", 0), f.get("train_fraction")
    cap = f.get("max_requests")
    took = f"{f['requests_total']} simulated" + (f" (workload.max_requests={cap})" if cap is not None else "")
    held = (f", after {n_train} held out as classifier history (workload.train_fraction={frac}; "
            "=0 simulates all)" if n_train else ", none held out (workload.train_fraction=0)")
    from framework.workloads.loader import SOURCES

    kind = f.get("workload_kind")
    if kind in SOURCES and SOURCES.get(kind).generated:  # the seed draws these kinds' requests
        seed = f"seed {f['seed']} draws the requests and every random choice"
    else:
        seed = f"seed {f['seed']}: a trace has the same requests for every seed; it drives only random choices"
    return f"  requests: {took}{held}\n  {seed}"


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
            f"{_workload_line(f)}\n"
            f"  results: {run_dir}")


def run_from_config(cfg: DictConfig, run_dir: Path) -> dict:
    """Compose-time config -> run folder; shared by the CLI (every sweep job) and the config tests."""
    from framework.config import check_keys
    from framework.results import write_run
    from framework.runner import run_fields, run_inputs, run_policy

    check_keys(cfg)
    if cfg.get("backend", {}).get("name", "sim") == "live":  # backend=live dispatch (framework/live/run.py)
        from framework.live.run import run_live_from_config

        return run_live_from_config(cfg, run_dir)
    inp = run_inputs(cfg)
    out = run_policy(cfg.policy, inp.workload, inp.cluster, int(cfg.seed), training=inp.train,
                     check_invariants=bool(cfg.check_invariants), progress=bool(cfg.progress),
                     max_steps=int(cfg.max_steps), record=str(cfg.record),
                     record_every=int(cfg.record_every))
    summary = {**out.summary, **run_fields(cfg, inp)}
    write_run(run_dir, summary, out.steps, out.requests)
    return summary


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="config")
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from framework.multirun import clear_previous, record_failures

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    clear_previous(run_dir)
    if hc.mode == RunMode.MULTIRUN and not _debug(cfg):
        summary = record_failures(lambda: run_from_config(cfg, run_dir), run_dir, list(hc.overrides.task))
    else:
        try:
            summary = run_from_config(cfg, run_dir)
        except Exception as e:  # exit here: raised, Hydra would print its own line about the job first
            _exit_if_user_error(e, _debug(cfg))
            raise
    if summary is not None:
        print(_headline(summary, run_dir))


def _debug(cfg: DictConfig | None = None, argv: list[str] | None = None) -> bool:
    if os.environ.get("BALANCEROUTE_DEBUG") == "1":
        return True
    if cfg is not None:
        return bool(cfg.get("debug", False))
    # before (or without) a composed config: read the override itself
    return any(a.lstrip("+").lower() in ("debug=true", "debug=1", "debug=yes") for a in argv or [])


def _exit_if_user_error(e: Exception, debug: bool) -> None:
    msg = None if debug else user_message(e)
    if msg is not None:
        print(f"balanceroute: error: {msg}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)


def main() -> None:
    """Console-script entry point: Hydra's errors and the project's reach the user in one style."""
    debug = _debug(argv=sys.argv[1:])
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let composition errors reach us instead of Hydra's printer
    try:
        _app()
    except Exception as e:
        _exit_if_user_error(e, debug)
        raise  # a bug, or debug=true: the full traceback
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


if __name__ == "__main__":
    main()
