"""Regret of an online routing run against the hindsight optimum with the same decode starts.

    python -m analysis.regret RUN_DIR [--time-limit S]      writes RUN_DIR/regret.json (+ regret_steps.parquet)
    python -m analysis.regret --sweep DIR [--time-limit S]  table over every run folder under DIR

Each request's admit_step (the first step its load counted) is its start a_i and its worker is the
online choice; J is analysis.objective's. The offline optimum (analysis.offline) keeps the same
starts and re-chooses only the workers, so regret = J_online - J* is the imbalance the router's
placements cost, all else equal. When J* is only bracketed, LB <= J* <= UB, the regret is bracketed by
[J_online - UB, J_online - LB]; "regret" is the low end (what is certainly lost).

share_of_compute = regret / (G * sum_k max_g s_g(k)) of the online run: the fraction of the compute the
run paid for that a hindsight placement would have saved (the idle fraction given away).

Preempted requests ran in more than one stint (recompute preemption sends them back to their queue), so
their load is not one contiguous interval: the model treats them as one stint from admit_step with their
full output, and the result says how many there were and that it is approximate.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.objective import step_series
from analysis.offline.cli import SolveProgress, print_json, stdout_to_stderr
from analysis.offline.solve import SOLVER_REVISION, solve_offline
from framework.errors import TraceFormatError, UserError, report
from analysis.sweep import find_runs, to_markdown
from framework.results import write_csv_atomic, write_json_atomic, write_parquet_atomic, write_text_atomic

REQUEST_COLUMNS = ("request_id", "arrival_s", "prompt_tokens", "output_tokens", "worker", "admit_step",
                   "first_token_s", "finish_s", "preemptions")


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """The run's request table and summary, checked for what the regret needs."""
    d = Path(run_dir)
    if not d.is_dir():
        raise TraceFormatError(f"run folder {str(d)!r} does not exist or is not a folder; pass a folder "
                               "written by the runner (it holds summary.json and requests.parquet).")
    sp, rp = d / "summary.json", d / "requests.parquet"
    for f in (sp, rp):
        if not f.is_file():
            raise TraceFormatError(f"run folder {str(d)!r} has no {f.name}: the run is incomplete or this is "
                                   "not a run folder (summary.json is written last, after the tables).")
    try:
        summary = json.loads(sp.read_text())
    except json.JSONDecodeError as e:
        raise TraceFormatError(f"{str(sp)!r} is not valid JSON ({e}); re-run the simulation.") from None
    G = summary.get("workers")
    if not isinstance(G, int) or G < 1:
        raise TraceFormatError(f"{str(sp)!r}: 'workers' is {G!r}; it must be a positive integer.")
    try:
        req = pd.read_parquet(rp)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise TraceFormatError(f"{str(rp)!r} cannot be read as parquet ({type(e).__name__}: {e}).") from None
    missing = [c for c in REQUEST_COLUMNS if c not in req.columns]
    if missing:
        raise TraceFormatError(f"{str(rp)!r} lacks column(s) {', '.join(missing)}; the runner writes "
                               f"{', '.join(REQUEST_COLUMNS)}.")
    for c in ("prompt_tokens", "output_tokens", "worker", "admit_step", "preemptions"):
        col = req[c]
        if not pd.api.types.is_integer_dtype(col):
            raise TraceFormatError(f"{str(rp)!r}: column {c} has dtype {col.dtype}, expected integers.")
    bad = req["worker"].ge(G) | (req["admit_step"].ge(0) & req["worker"].lt(0))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TraceFormatError(f"{str(rp)!r}: request {int(req['request_id'].iloc[i])} is on worker "
                               f"{int(req['worker'].iloc[i])} but the run has {G} workers (0..{G - 1}).")
    return req, summary


def regret_of_run(run_dir: str | Path, time_limit: float = 60.0, seed: int = 0,
                  write: bool = True, progress: bool | None = False) -> dict:
    """Compute (and by default write) the regret of one run folder; returns the regret.json dict.

    ``progress``: draw the solver's progress on stderr (None: when stderr is a terminal)."""
    d = Path(run_dir)
    req, summary = load_run(d)
    G = int(summary["workers"])
    started = req["admit_step"].to_numpy() >= 0
    r = req[started]
    a = r["admit_step"].to_numpy(np.int64)
    p = r["prompt_tokens"].to_numpy(np.int64)
    o = r["output_tokens"].to_numpy(np.int64)
    w = r["worker"].to_numpy(np.int64)
    preempted = int((r["preemptions"].to_numpy() > 0).sum())
    out: dict = {
        "run_dir": str(d), "policy": summary.get("policy"), "workload": summary.get("workload"),
        "seed": summary.get("seed"), "workers": G, "requests": int(len(r)),
        "requests_not_started": int((~started).sum()), "preempted_requests": preempted,
        "approximate": preempted > 0, "solver_revision": SOLVER_REVISION,
    }
    if preempted:
        out["note"] = (f"{preempted} request(s) were preempted and ran in more than one stint; the "
                       "contiguous model charges them as one stint from admit_step, so J_online here "
                       "differs from the run's step table and the regret is approximate.")
    if len(r) == 0:
        out.update(j_online=0, j_opt_low=0, j_opt_high=0, status="optimal", regret=0, regret_high=0,
                   share_of_compute=0.0, share_of_compute_high=0.0, ratio=1.0, ratio_high=1.0)
        if write:
            write_json_atomic(d / "regret.json", out)
        return out
    online = step_series(a, p, o, w, G)
    # the online assignment is a candidate too, so the offline upper bound is never above J_online
    with SolveProgress(time_limit, f"regret {d.name}", enabled=progress) as bar:
        res = solve_offline(a, p, o, G, time_limit=time_limit, seed=seed, initial=w,
                            progress=bar)
    J_on, UB, LB = online.objective, res.objective, res.lower_bound
    best = res.assignment
    status = res.status
    tc = online.total_compute
    out.update({
        "j_online": int(J_on), "j_opt_low": int(LB), "j_opt_high": int(UB), "status": status,
        "regret": int(J_on - UB), "regret_high": int(J_on - LB),
        "share_of_compute": (J_on - UB) / tc if tc else 0.0,
        "share_of_compute_high": (J_on - LB) / tc if tc else 0.0,
        # J_online / J*: null when the optimum (or its lower bound) is 0 and the run is not
        "ratio": J_on / UB if UB else (1.0 if J_on == 0 else None),
        "ratio_high": J_on / LB if LB else (1.0 if J_on == 0 else None),
        "total_compute_online": int(tc), "offline_wall_s": round(res.wall_s, 3),
        "offline_parts": res.parts, "offline_parts_optimal": res.parts_optimal,
        "time_limit_s": time_limit,
    })
    if "imbalance_tokens" in summary:
        out["j_steps_table"] = float(summary["imbalance_tokens"])
    # cumulative regret per step (offline: the best assignment found)
    off = step_series(a, p, o, best, G)
    k0 = min(online.k0, off.k0)
    K = max(online.k0 + len(online.imbalance), off.k0 + len(off.imbalance)) - k0
    i_on = np.zeros(K, np.int64)
    i_off = np.zeros(K, np.int64)
    i_on[online.k0 - k0:online.k0 - k0 + len(online.imbalance)] = online.imbalance
    i_off[off.k0 - k0:off.k0 - k0 + len(off.imbalance)] = off.imbalance
    steps = pd.DataFrame({"step": np.arange(k0, k0 + K, dtype=np.int64), "imbalance_online": i_on,
                          "imbalance_offline": i_off, "cumulative_regret": np.cumsum(i_on - i_off)})
    out["regret_steps_file"] = "regret_steps.parquet"
    if write:
        write_parquet_atomic(d / "regret_steps.parquet", steps)
        write_json_atomic(d / "regret.json", out)
    return out


def sweep_table(root: str | Path, time_limit: float = 60.0, reuse: bool = True,
                progress: bool | None = False) -> pd.DataFrame:
    """One row per run folder under root (regret.json reused when present and computed by this
    solver revision with at least this time limit), sorted by policy and workload."""
    rows = []
    for d in find_runs(root):
        f = d / "regret.json"
        res = None
        if reuse and f.is_file():
            try:
                old = json.loads(f.read_text())
                current = old.get("solver_revision") == SOLVER_REVISION
                if current and (old.get("time_limit_s", 0) >= time_limit or old.get("status") == "optimal"):
                    res = old
            except json.JSONDecodeError:
                res = None
        if res is None:
            res = regret_of_run(d, time_limit=time_limit, progress=progress)
        rows.append(res)
    if not rows:
        raise TraceFormatError(f"no run folder (a folder with summary.json) under {str(root)!r}.")
    df = pd.DataFrame(rows)
    df["run"] = [str(Path(x).relative_to(root)) for x in df["run_dir"]]
    cols = ["policy", "workload", "workers", "seed", "run", "requests", "j_online", "j_opt_low", "j_opt_high",
            "status", "regret", "regret_high", "share_of_compute", "share_of_compute_high", "ratio",
            "preempted_requests"]
    return df[cols].sort_values(["policy", "workload", "seed", "run"], kind="stable").reset_index(drop=True)


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """Human-readable columns: the optimum as a value or an interval, shares in percent."""
    def interval(lo, hi, fmt):
        return fmt(lo) if lo == hi else f"[{fmt(lo)}, {fmt(hi)}]"

    def pct(x):
        return f"{100 * x:.2f}%"

    out = pd.DataFrame({
        "policy": df["policy"], "workload": df["workload"], "seed": df["seed"],
        "J_online": df["j_online"],
        "J_opt": [interval(lo, hi, str) for lo, hi in zip(df["j_opt_low"], df["j_opt_high"])],
        "regret": [interval(lo, hi, str) for lo, hi in zip(df["regret"], df["regret_high"])],
        "share": [interval(lo, hi, pct) for lo, hi in zip(df["share_of_compute"], df["share_of_compute_high"])],
        "status": df["status"], "preempted": df["preempted_requests"],
    })
    return out


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per policy and workload (regret and share as their low and high ends)."""
    g = df.groupby(["policy", "workload"], sort=True)
    out = g.agg(runs=("j_online", "size"), j_online=("j_online", "mean"), regret=("regret", "mean"),
                regret_high=("regret_high", "mean"), share=("share_of_compute", "mean"),
                share_high=("share_of_compute_high", "mean"),
                optimal=("status", lambda s: int((s == "optimal").sum()))).reset_index()
    for c in ("j_online", "regret", "regret_high"):
        out[c] = out[c].round(0).astype(np.int64)
    for c in ("share", "share_high"):
        out[c] = [f"{100 * x:.2f}%" for x in out[c]]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.regret",
                                 description="Regret of a run (or a sweep of runs) against the offline optimum.")
    ap.add_argument("run_dir", nargs="?", help="a run folder (holds summary.json, requests.parquet)")
    ap.add_argument("--sweep", metavar="DIR", help="walk every run folder under DIR and tabulate")
    ap.add_argument("--time-limit", type=float, default=60.0, help="offline solver seconds per run (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recompute", action="store_true", help="--sweep: ignore existing regret.json files")
    args = ap.parse_args(argv)
    if (args.run_dir is None) == (args.sweep is None):
        ap.error("give either RUN_DIR or --sweep DIR")
    try:
        if args.sweep is None:
            with stdout_to_stderr():
                out = regret_of_run(args.run_dir, time_limit=args.time_limit, seed=args.seed, progress=None)
            print_json(out, indent=2)
            return 0

        with stdout_to_stderr():
            df = sweep_table(args.sweep, time_limit=args.time_limit, reuse=not args.recompute, progress=None)
        root = Path(args.sweep)
        write_parquet_atomic(root / "regret_table.parquet", df)
        write_csv_atomic(root / "regret_table.csv", df)
        md = (to_markdown(format_table(df)) + "\n\nMean over seeds:\n\n" + to_markdown(summary_table(df)))
        write_text_atomic(root / "regret_table.md", md + "\n")
        print(md)
        return 0
    except UserError as e:
        return report("regret", e)


if __name__ == "__main__":
    sys.exit(main())
