"""The policy comparison table: routers on the Azure 2023 traces and a bursty synthetic workload.

    python -m analysis.compare [--quick] [--jobs N] [--out DIR] [--policies a,b,...] [--settings ...]

Settings: azure_conv_2023 and azure_code_2023 at rate_scale 8 on 16 workers under the `fixed` and the
`h200_dsv3` cluster presets, plus a capacity-bound setting on azure_conv_2023 (rate raised until
requests queue for slots/KV), and a synthetic setting with bursts of simultaneous arrivals. Seeds: seed s
simulates the s-th disjoint third of the trace (trace seconds [s*W, (s+1)*W), W = 1140 s), so the
spread is over independent windows, and the seed also drives every random choice (random, p2c, noisy
oracle).

Policies: the default list is the README's table (every dispatch router, br0, brh with each classifier);
``--policies`` takes any registered policy as ``NAME`` or ``NAME[key=value,...]`` (``NAME[v]`` is short
for ``NAME[classifier=v]``), e.g. ``lp,bfio,brh[horizon=4]``; ``all`` adds every registered policy to the
default list. lp and bfio are left out of the default because they solve an LP / MILP every step.

Every run is an ordinary run folder (the same code path as the CLI), so `analysis.regret` and
`analysis.sweep` read them too. A finished run is reused only when the config hash in its summary.json
is the one asked for; --quick runs (each window's first 300 requests, 2 seeds: the form CI runs) get
their own folders and, by default, their own output folder. Decision times are CPU time on a shared
machine: with --jobs > 1 the runs compete for the CPUs and decision_ms_* come out inflated (several times
the one-process figures), so measure those with --jobs 1.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from analysis.sweep import fmt_mean_std, mean_spread, to_markdown
from framework.cpus import default_jobs, usable_cpus
from framework.errors import ConfigError, UserError, did_you_mean, report

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


QUICK_REQUESTS = 300


def label_overrides(label: str) -> list[str]:
    """Overrides of a policy label: ``NAME``, ``NAME[key=value,...]`` or ``NAME[v]`` (classifier=v).

    Any registered policy works, a user's as well as the built-in ones; the name and the keys are
    checked against the registry so a typo fails here, before any run starts.
    """
    from framework.policy import available_policies, get_policy_class

    if label in POLICIES:
        return list(POLICIES[label])
    name, _, rest = label.partition("[")
    if rest and not rest.endswith("]"):
        raise ConfigError(f"policy label {label!r} must look like NAME or NAME[key=value,...].")
    if name not in available_policies():
        raise ConfigError(f"unknown policy label {label!r}." + did_you_mean(name, available_policies())
                          + " Labels are NAME or NAME[key=value,...].")
    known = {f for f in get_policy_class(name).config_class.__dataclass_fields__ if f != "name"}
    ov = [f"policy={name}"]
    for item in filter(None, rest[:-1].split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            key, value = "classifier", item
        if key not in known:
            raise ConfigError(f"policy {name!r} in label {label!r} has no option {key!r}."
                              + did_you_mean(key, known))
        ov.append(f"policy.{key}={value}")
    return ov


def policy_labels(spec: str) -> list[str]:
    """The labels ``--policies`` asks for; ``all`` = the default list plus every other registered policy."""
    from framework.policy import available_policies

    labels: list[str] = []
    for item in _split_labels(spec):
        if item == "all":
            extra = [p for p in available_policies() if not p.startswith("_")
                     and not any(v[0] == f"policy={p}" for v in POLICIES.values())]
            labels += [*POLICIES, *extra]
        else:
            label_overrides(item)  # fail early on a bad label
            labels.append(item)
    return list(dict.fromkeys(labels))


def _split_labels(spec: str) -> list[str]:
    """Split on commas outside brackets: ``brh[horizon=4,gamma=0.5],br0``."""
    out, depth, cur = [], 0, ""
    for ch in spec:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [x for x in [*out, cur] if x]


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from framework.cli import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose("config", overrides=overrides)


def _run_one(overrides: list[str], run_dir: str) -> dict:
    from framework.cli import run_from_config

    return run_from_config(_compose(overrides), Path(run_dir))


def grid(quick: bool, seeds: int, policies: list[str], settings: list[str]) -> list[tuple[str, str, int, list[str]]]:
    tasks = []
    for setting in settings:
        for label in policies:
            for seed in range(seeds):
                ov = [*SETTINGS[setting], *label_overrides(label), f"seed={seed}", "progress=false"]
                if setting not in UNWINDOWED:
                    ov += [f"workload.start_s={seed * WINDOW_S}", f"workload.duration_s={WINDOW_S}"]
                if quick:
                    ov.append(f"workload.max_requests={QUICK_REQUESTS}")
                tasks.append((setting, label, seed, ov))
    return tasks


def run_dir_of(out: Path, setting: str, label: str, seed: int, quick: bool) -> Path:
    """Quick and full runs of one point get different folders (and the config hash tells them apart)."""
    leaf = f"seed{seed}" + (f"__max{QUICK_REQUESTS}" if quick else "")
    return out / "runs" / setting.replace("/", "__") / label / leaf


def reusable(run_dir: Path, overrides: list[str]) -> dict | None:
    """The stored summary if that run finished with exactly the config asked for, else None."""
    from framework.config import config_hash

    f = run_dir / "summary.json"
    if not f.exists():
        return None
    s = json.loads(f.read_text())
    return s if s.get("config_hash") == config_hash(_compose(overrides)) else None


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
    try:
        _main(argv)
    except UserError as e:
        sys.exit(report("compare", e))


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_REQUESTS} requests per window, 2 seeds (CI form)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=default_jobs(),
                    help="processes (default: usable CPUs, at most 2); >1 inflates decision times")
    ap.add_argument("--out", default=None, help="default results/compare (results/compare-quick with --quick)")
    ap.add_argument("--policies", default=",".join(POLICIES), help="labels NAME or NAME[key=value,...]; 'all'")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    a = ap.parse_args(argv)
    seeds = a.seeds or (2 if a.quick else 3)
    policies = policy_labels(a.policies)
    settings = [s for s in a.settings.split(",") if s]
    for s in settings:
        if s not in SETTINGS:
            raise ConfigError(f"unknown setting {s!r}." + did_you_mean(s, SETTINGS))
    out = Path(a.out or ("results/compare-quick" if a.quick else "results/compare"))
    tasks = grid(a.quick, seeds, policies, settings)
    rows, todo, stale = [], [], 0
    for setting, label, seed, ov in tasks:
        run_dir = run_dir_of(out, setting, label, seed, a.quick)
        s = reusable(run_dir, ov)
        if s is not None:
            rows.append({**s, "setting": setting, "label": label})
        else:
            stale += (run_dir / "summary.json").exists()
            todo.append((setting, label, seed, ov, run_dir))
    t0 = time.perf_counter()
    print(f"compare: {len(tasks)} runs ({len(tasks) - len(todo)} reused, {stale} stale rerun), "
          f"{a.jobs} process(es) on {usable_cpus()} CPU(s)", file=sys.stderr)
    if a.jobs > 1 and todo:
        print(f"compare: note: {a.jobs} runs at a time share the CPUs, so decision_ms_* come out inflated; "
              "use --jobs 1 to measure decision times", file=sys.stderr)
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
            rows.append({**s, "setting": setting, "label": label, "compare_jobs": a.jobs})
            print(f"[{i}/{len(todo)}] {time.perf_counter() - t0:7.1f}s {setting} {label} seed{seed}: "
                  f"imbalance {s['avg_dp_imbalance']:.4f}", file=sys.stderr)
    if failed:
        raise UserError("%d run(s) failed:\n  " % len(failed) + "\n  ".join(failed))
    df = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(policies)}
    sorder = {k: i for i, k in enumerate(settings)}
    df = df.sort_values(["setting", "label"], key=lambda c: c.map(sorder if c.name == "setting" else order))
    tab = table(df)
    out.mkdir(parents=True, exist_ok=True)
    from framework.results import write_atomic

    flat = df.drop(columns=["oracle_components"], errors="ignore")
    write_atomic(out / "runs.csv", lambda tmp: flat.to_csv(tmp, index=False))
    write_atomic(out / "table.csv", lambda tmp: tab.to_csv(tmp, index=False))
    md = to_markdown(tab) + "\n\n" + _decision_note(df)
    write_atomic(out / "table.md", lambda tmp: Path(tmp).write_text(md + "\n"))
    print(md)
    print(f"\ncompare: wrote {out}/table.md, table.csv, runs.csv", file=sys.stderr)


def _decision_note(df: pd.DataFrame) -> str:
    jobs = sorted({int(j) for j in df.get("compare_jobs", pd.Series(dtype=float)).dropna()})
    made = f"runs made now used --jobs {', '.join(map(str, jobs))}" if jobs else "every run was reused"
    return ("decision_ms_* are CPU times on the machine that made each run; runs made with --jobs > 1 "
            f"shared the CPUs and report inflated decision times ({made}).")


if __name__ == "__main__":
    main()
