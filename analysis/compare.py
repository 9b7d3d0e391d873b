"""The policy comparison table of issue 3: every router on the Azure 2023 traces, mean ± spread.

    python -m analysis.compare [--quick] [--jobs 2] [--out results/compare] [--policies a,b,...]

Settings: azure_conv_2023 and azure_code_2023 at rate_scale 8 on 16 workers under the `fixed` and the
`h200_dsv3` cluster presets, plus a capacity-bound setting on azure_conv_2023 (rate raised until
requests queue for slots/KV), and a synthetic setting with bursts of simultaneous arrivals. Seeds: seed s simulates the s-th disjoint third of the trace (trace
seconds [s*W, (s+1)*W), W = 1140 s), so the spread is over independent windows, and the seed also drives
every random choice (random, p2c, noisy oracle). Every run is an ordinary run folder (the same code
path as the CLI), so `analysis.regret` and `analysis.sweep` read them too; finished runs are reused.
--quick keeps each window's first 300 requests and 2 seeds (the form CI runs).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from framework.cpus import default_jobs
from framework.errors import UserError
from analysis.sweep import fmt_mean_std, mean_spread, to_markdown

WINDOW_S = 1140.0
SETTINGS: dict[str, list[str]] = {
    "conv/fixed": ["workload=azure_conv_2023", "cluster=fixed", "workload.rate_scale=8"],
    "conv/h200_dsv3": ["workload=azure_conv_2023", "cluster=h200_dsv3", "workload.rate_scale=8"],
    "code/fixed": ["workload=azure_code_2023", "cluster=fixed", "workload.rate_scale=8"],
    "code/h200_dsv3": ["workload=azure_code_2023", "cluster=h200_dsv3", "workload.rate_scale=8"],
    # capacity binds: 4x the arrival rate of the other settings and a 120k-token KV pool per worker
    # (a smaller-memory deployment), so requests queue for KV and slots
    "conv/h200_dsv3/kv-bound": ["workload=azure_conv_2023", "cluster=h200_dsv3", "workload.rate_scale=32",
                                "cluster.kv_capacity_tokens=120000"],
    # bursts of simultaneous arrivals: conversation-like lengths, Gamma gaps with CV 10 at the mean rate
    # of the conversation trace at rate_scale 8 (44 req/s); the seed draws a new workload
    "burst/fixed": ["workload=default", "cluster=fixed", "workload.arrival=gamma", "workload.burst_cv=10",
                    "workload.rate_rps=44", "workload.num_requests=6000"],
}
UNWINDOWED = {"burst/fixed"}
POLICIES: dict[str, list[str]] = {
    "round_robin": ["policy=round_robin"],
    "random": ["policy=random"],
    "jsq": ["policy=jsq"],
    "least_kv": ["policy=least_kv"],
    "p2c": ["policy=p2c"],
    "vllm_legacy": ["policy=vllm_legacy"],
    "vllm": ["policy=vllm"],
    "sglang_total_requests": ["policy=sglang_total_requests"],
    "sglang_total_tokens": ["policy=sglang_total_tokens"],
    "br0": ["policy=br0"],
    "brh[none]": ["policy=brh", "policy.classifier=none"],
    "brh[empirical]": ["policy=brh", "policy.classifier=empirical"],
    "brh[noisy_oracle]": ["policy=brh", "policy.classifier=noisy_oracle"],
    "brh[oracle]": ["policy=brh", "policy.classifier=oracle"],
}
METRICS = ["avg_dp_imbalance", "idle_fraction", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s",
           "tpot_p99_s", "decision_ms_p99"]
DIGITS = {"avg_dp_imbalance": 4, "idle_fraction": 4, "throughput_tokens_per_s": 0, "ttft_p50_s": 3, "ttft_p99_s": 3,
          "tpot_p99_s": 4, "decision_ms_p99": 3}


def _run_one(overrides: list[str], run_dir: str) -> dict:
    from hydra import compose, initialize_config_dir

    from framework.cli import CONF_DIR, run_from_config

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("config", overrides=overrides)
    return run_from_config(cfg, Path(run_dir))


def grid(quick: bool, seeds: int, policies: list[str], settings: list[str]) -> list[tuple[str, str, int, list[str]]]:
    tasks = []
    for setting in settings:
        for label in policies:
            for seed in range(seeds):
                ov = [*SETTINGS[setting], *POLICIES[label], f"seed={seed}", "progress=false"]
                if setting not in UNWINDOWED:
                    ov += [f"workload.start_s={seed * WINDOW_S}", f"workload.duration_s={WINDOW_S}"]
                if quick:
                    ov.append("workload.max_requests=300")
                tasks.append((setting, label, seed, ov))
    return tasks


def table(df: pd.DataFrame) -> pd.DataFrame:
    agg = mean_spread(df, ["setting", "label"], METRICS)
    rows = []
    for _, r in agg.iterrows():
        row = {"setting": r["setting"], "policy": r["label"], "runs": int(r["runs"])}
        for m in METRICS:
            row[m] = fmt_mean_std(r[f"{m}_mean"], r[f"{m}_std"], DIGITS[m])
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 requests per window, 2 seeds (CI form)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=default_jobs())
    ap.add_argument("--out", default="results/compare")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    a = ap.parse_args(argv)
    seeds = a.seeds or (2 if a.quick else 3)
    policies = [p for p in a.policies.split(",") if p]
    settings = [s for s in a.settings.split(",") if s]
    for p in policies:
        if p not in POLICIES:
            sys.exit(f"compare: unknown policy label {p!r}; known: {', '.join(POLICIES)}")
    for s in settings:
        if s not in SETTINGS:
            sys.exit(f"compare: unknown setting {s!r}; known: {', '.join(SETTINGS)}")
    out = Path(a.out)
    tasks = grid(a.quick, seeds, policies, settings)
    rows, todo = [], []
    for setting, label, seed, ov in tasks:
        run_dir = out / "runs" / setting.replace("/", "__") / label / f"seed{seed}"
        f = run_dir / "summary.json"
        if f.exists():
            rows.append({**json.loads(f.read_text()), "setting": setting, "label": label})
        else:
            todo.append((setting, label, seed, ov, run_dir))
    t0 = time.perf_counter()
    print(f"compare: {len(tasks)} runs ({len(tasks) - len(todo)} reused), {a.jobs} process(es)", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        futs = {ex.submit(_run_one, ov, str(rd)): (setting, label, seed) for setting, label, seed, ov, rd in todo}
        failed = []
        for i, fut in enumerate(as_completed(futs), 1):
            setting, label, seed = futs[fut]
            try:
                s = fut.result()
            except UserError as e:
                failed.append(f"{setting} {label} seed{seed}: {e}")
                print(f"[{i}/{len(todo)}] FAILED {failed[-1]}", file=sys.stderr)
                continue
            rows.append({**s, "setting": setting, "label": label})
            print(f"[{i}/{len(todo)}] {time.perf_counter() - t0:7.1f}s {setting} {label} seed{seed}: "
                  f"imbalance {s['avg_dp_imbalance']:.4f}", file=sys.stderr)
    if failed:
        sys.exit("compare: %d run(s) failed:\n  " % len(failed) + "\n  ".join(failed))
    df = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(policies)}
    sorder = {k: i for i, k in enumerate(settings)}
    df = df.sort_values(["setting", "label"], key=lambda c: c.map(sorder if c.name == "setting" else order))
    tab = table(df)
    out.mkdir(parents=True, exist_ok=True)
    from framework.results import _atomic

    _atomic(out / "runs.csv", lambda tmp: df.drop(columns=["oracle_components"], errors="ignore").to_csv(tmp, index=False))
    _atomic(out / "table.csv", lambda tmp: tab.to_csv(tmp, index=False))
    md = to_markdown(tab)
    _atomic(out / "table.md", lambda tmp: Path(tmp).write_text(md + "\n"))
    print(md)
    print(f"\ncompare: wrote {out}/table.md, table.csv, runs.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
