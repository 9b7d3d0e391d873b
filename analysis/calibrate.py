"""Fit the step cost model t_g = c0 + c_seq n_g + c_kv s_g + c_pf P_g to a live run's streamed tokens.

    python -m analysis.calibrate RUN_DIR [--json OUT]

A live run's tokens.parquet logs when each token of each request reached the router. The ranks' steps
are cut out of that log (step_events), each with its duration and, per rank, its running count n, load
s and prefill tokens P; the barrier model T = max_g t_g (+ c_sync, which folds into c0: a client cannot
tell them apart) is fitted to the steps' durations by bounded, outlier-robust least squares (scipy),
starting from the linear fit on each step's busiest rank. The report gives the constants, the RMS and
mean relative error of the fitted step times, and R^2, so a simulation can be checked against the
deployment it models (put the constants in a conf/cluster preset).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

NAMES = ("c0", "c_seq", "c_kv", "c_pf")


def step_events(tokens: pd.DataFrame, requests: pd.DataFrame, G: int, gap: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(features (E, G, 4): 1, n, s, P of each step; its duration (E,)) from the streamed-token log.

    Ranks run in lockstep, so a step's tokens reach the router together: token arrivals are cut into
    steps wherever two consecutive arrivals are more than ``gap`` apart (default: a third of the median
    gap between a stream's consecutive tokens). A step is kept when the one before it holds every
    request that continues into it, each once (so neither was split or merged); its duration is the
    time between the two steps' median arrivals. The token that brings a request's count to j was made
    by a step whose load counted prompt + j - 1 for it; a count of 1 means its prefill ran in that step.
    """
    tk = tokens.sort_values("t_s", kind="stable")
    t = tk.t_s.to_numpy(np.float64)
    req = tk.request_id.to_numpy(np.int64)
    j = tk.tokens_so_far.to_numpy(np.int64)
    g = tk.worker.to_numpy(np.int64)
    prompt = requests.set_index("request_id").prompt_tokens.reindex(req).to_numpy(np.float64)
    if gap is None:
        per = tk.sort_values(["request_id", "tokens_so_far"])
        d = np.diff(per.t_s.to_numpy())[np.diff(per.request_id.to_numpy()) == 0]
        gap = float(np.median(d[d > 0])) / 3 if (d > 0).any() else 0.0
    ev = np.concatenate([[0], np.cumsum(np.diff(t) > gap)])
    E = int(ev[-1]) + 1 if len(ev) else 0
    t_ev = pd.Series(t).groupby(ev).median().to_numpy()
    feats = np.zeros((E, G, 4))
    feats[:, :, 0] = 1.0
    np.add.at(feats[:, :, 1], (ev, g), 1.0)
    np.add.at(feats[:, :, 2], (ev, g), prompt + j - 1)
    np.add.at(feats[:, :, 3], (ev, g), np.where(j == 1, prompt, 0.0))
    members = pd.DataFrame({"ev": ev, "req": req, "j": j})
    dup = members.duplicated(["ev", "req"]).groupby(members.ev).any().reindex(range(E), fill_value=True).to_numpy()
    prev = {(e, r) for e, r in zip(ev.tolist(), req.tolist())}
    cont = members[members.j > 1]
    broken = np.zeros(E, bool)
    for e, r in zip(cont.ev.tolist(), cont.req.tolist()):
        if (e - 1, r) not in prev:
            broken[e] = True
    has_cont = np.zeros(E, bool)
    has_cont[cont.ev.to_numpy()] = True
    keep = np.zeros(E, bool)
    keep[1:] = has_cont[1:] & ~broken[1:] & ~dup[1:] & ~dup[:-1]
    dur = np.diff(t_ev, prepend=np.nan)
    return feats[keep], dur[keep]


def fit(X: np.ndarray, y: np.ndarray) -> dict:
    """Bounded least squares of y = max_g X[:, g] @ c, c >= 0; constants and fit errors."""
    busiest = X[np.arange(len(X)), np.argmax(X[:, :, 2], axis=1)]
    c_init = np.maximum(np.linalg.lstsq(busiest, y, rcond=None)[0], 0.0)
    scale = np.maximum(np.abs(X).reshape(-1, 4).max(0), 1e-12)  # columns to O(1) for the solver
    model = lambda c: (X @ (c / scale)).max(axis=1)  # noqa: E731
    res = least_squares(lambda c: model(c) - y, c_init * scale, bounds=(0, np.inf), method="trf",
                        loss="soft_l1", f_scale=0.1 * float(np.median(y)))  # a few mis-cut steps stay outliers
    c = res.x / scale
    pred = model(res.x)
    err = pred - y
    return {**dict(zip(NAMES, map(float, c))), "steps": int(len(y)),
            "rms_error_s": float(np.sqrt(np.mean(err ** 2))),
            "mean_rel_error": float(np.mean(np.abs(err) / y)),
            "r2": float(1 - np.sum(err ** 2) / np.sum((y - y.mean()) ** 2)) if len(y) > 1 else float("nan"),
            "mean_step_s": float(y.mean())}


def calibrate(run_dir: str | Path) -> dict:
    d = Path(run_dir)
    if not (d / "tokens.parquet").exists():
        raise ValueError(f"{d} has no tokens.parquet: calibrate a live run (backend=live, backend.record_tokens=true).")
    summary = json.loads((d / "summary.json").read_text())
    X, y = step_events(pd.read_parquet(d / "tokens.parquet"), pd.read_parquet(d / "requests.parquet"),
                       int(summary["workers"]))
    if len(y) < 20:
        raise ValueError(f"only {len(y)} clean step(s) in {d}; calibrate on a longer or busier run.")
    return fit(X, y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--json", help="also write the fit here")
    a = ap.parse_args(argv)
    try:
        out = calibrate(a.run_dir)
    except (OSError, ValueError) as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 2
    for k in NAMES:
        print(f"{k:6s} {out[k]:.4g} s")
    print(f"fit over {out['steps']} steps: RMS error {out['rms_error_s'] * 1e3:.3f} ms "
          f"(mean step {out['mean_step_s'] * 1e3:.2f} ms), mean relative error {out['mean_rel_error']:.2%}, "
          f"R^2 {out['r2']:.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
