"""The policy comparison table: routers on the Azure 2023 traces, a KV-bound and a bursty setting.

    python -m analysis.compare [--quick] [--jobs N] [--out DIR] [--policies a,b,...] [--settings ...]

This is ``balanceroute --multirun experiment=compare`` (conf/experiment/compare.yaml) restricted to the
settings, policies and seeds asked for, then ``analysis.collect`` and a group-by: mean and sample std
of each metric per (ov.setting, ov.variant) over the seeds. Settings are conf/setting/*.yaml:
azure_conv_2023 and azure_code_2023 at rate_scale 8 on 16 workers under the `fixed` and `h200_dsv3`
presets, a capacity-bound setting on azure_conv_2023 (rate and KV pool such that requests queue for
slots/KV), and a synthetic setting with bursts of simultaneous arrivals. In a trace setting seed s
simulates the s-th disjoint window of the trace (trace seconds [s*W, (s+1)*W), W = 1140 s), so the
spread is over independent windows; the seed also drives every random choice (random, p2c, noisy
oracle).

Policies: the default list is the README's table (every dispatch router, br0, brh with each
classifier), each a labelled preset of conf/variant/ swept as ``variant``; ``--policies`` takes any
registered policy as ``NAME`` or ``NAME[key=value,...]`` (``NAME[v]`` is short for
``NAME[classifier=v]``), e.g. ``lp,bfio,brh[horizon=4]``, each such label its own sweep (its options
are overrides, not a variant); ``all`` adds every registered policy to the default list. lp and bfio
are left out of the default because they solve an LP / MILP every step.

The runs are the sweep's (OUT/runs, OUT/runs-LABEL for a label that is not a variant): the resume
sweeper reuses a stored run only when the config hash in its summary.json is the config the job
composes now, so a run made from another config (a quick run, an edited preset) reruns. --quick runs
(each window's first 300 requests, 2 seeds: the form CI runs) default to their own output folder.
Decision times are CPU time on a shared machine: with --jobs > 1 the runs compete for the CPUs and
decision_ms_* come out inflated (several times the one-process figures), so measure those with --jobs 1.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from analysis.sweep import fmt_mean_std, mean_spread, run_sweep, to_markdown
from framework.cpus import default_jobs, usable_cpus
from framework.errors import ConfigError, UserError, did_you_mean, report
from framework.results import write_atomic
from hydra_plugins.balanceroute_sweeper.state import read_state

EXPERIMENT = "compare"
SETTINGS: dict[str, str] = {  # table label -> conf/setting/NAME.yaml
    "conv/fixed": "conv_fixed",
    "conv/h200_dsv3": "conv_h200_dsv3",
    "code/fixed": "code_fixed",
    "code/h200_dsv3": "code_h200_dsv3",
    "conv/h200_dsv3/kv-bound": "conv_h200_dsv3_kvbound",
    "burst/fixed": "burst_fixed",
}
POLICIES: dict[str, str] = {  # table label -> conf/variant/NAME.yaml
    "round_robin": "round_robin",
    "random": "random",
    "jsq": "jsq",
    "least_kv": "least_kv",
    "p2c": "p2c",
    "vllm_legacy": "vllm_legacy",
    "vllm": "vllm",
    "sglang_total_requests": "sglang_total_requests",
    "sglang_total_tokens": "sglang_total_tokens",
    "br0": "br0",
    "brh[none]": "brh_none",
    "brh[empirical]": "brh_empirical",
    "brh[noisy_oracle]": "brh_noisy_oracle",
    "brh[oracle]": "brh_oracle",
}
METRICS = ["avg_dp_imbalance", "idle_fraction", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s",
           "tpot_p99_s", "decision_ms_p99"]
DIGITS = {"avg_dp_imbalance": 4, "idle_fraction": 4, "throughput_tokens_per_s": 0, "ttft_p50_s": 3, "ttft_p99_s": 3,
          "tpot_p99_s": 4, "decision_ms_p99": 3}
QUICK_REQUESTS = 300


def label_items(label: str) -> tuple[str, list[tuple[str, str]]]:
    """``NAME[key=value,...]`` -> (NAME, [(key, value), ...]); a bare item is the classifier (``NAME[v]``).

    The one reader of the label grammar (compare's sweeps, benchmarks/paired_samples.py); no checks
    against the registry here, label_overrides makes them.
    """
    name, _, rest = label.partition("[")
    if rest and not rest.endswith("]"):
        raise ConfigError(f"policy label {label!r} must look like NAME or NAME[key=value,...].")
    items = []
    for item in filter(None, rest[:-1].split(",")):
        key, eq, value = item.partition("=")
        items.append((key, value) if eq else ("classifier", item))
    return name, items


def label_overrides(label: str) -> list[str]:
    """Overrides of a policy label: ``NAME``, ``NAME[key=value,...]`` or ``NAME[v]`` (classifier=v).

    Any registered policy works, a user's as well as the built-in ones; the name and the keys are
    checked against the registry so a typo fails here, before any run starts. A default label is its
    variant.
    """
    from framework.policy import available_policies, get_policy_class

    if label in POLICIES:
        return [f"variant={POLICIES[label]}"]
    name, items = label_items(label)
    if name not in available_policies():
        raise ConfigError(f"unknown policy label {label!r}." + did_you_mean(name, available_policies())
                          + " Labels are NAME or NAME[key=value,...].")
    known = {f for f in get_policy_class(name).config_class.__dataclass_fields__ if f != "name"}
    ov = [f"policy={name}"]
    for key, value in items:
        if key not in known:
            raise ConfigError(f"policy {name!r} in label {label!r} has no option {key!r}."
                              + did_you_mean(key, known))
        ov.append(f"policy.{key}={value}")
    return ov


def policy_labels(spec: str) -> list[str]:
    """The labels ``--policies`` asks for; ``all`` = the default list plus every other registered policy."""
    from framework.policy import available_policies

    labels: list[str] = []
    for item in split_labels(spec):
        if item == "all":
            covered = {label.split("[")[0] for label in POLICIES}
            labels += [*POLICIES, *(p for p in available_policies() if not p.startswith("_") and p not in covered)]
        else:
            label_overrides(item)  # fail early on a bad label
            labels.append(item)
    return list(dict.fromkeys(labels))


def split_labels(spec: str) -> list[str]:
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


def sweeps(out: Path, quick: bool, seeds: int, labels: list[str], settings: list[str]) -> list[tuple[Path, list[str], str | None]]:
    """The sweeps of experiment=compare that make the table: (sweep dir, overrides, label or None).

    One sweep over the variant axis for every default label, one per other label (its options are
    fixed overrides); each sweeps the settings and seeds asked for.
    """
    common = [f"setting={','.join(SETTINGS[s] for s in settings)}", f"seed={','.join(map(str, range(seeds)))}"]
    if quick:
        common.append(f"workload.max_requests={QUICK_REQUESTS}")
    out_list = []
    variants = [POLICIES[label] for label in labels if label in POLICIES]
    if variants:
        out_list.append((out / "runs", [*common, f"variant={','.join(variants)}"], None))
    for label in labels:
        if label not in POLICIES:
            out_list.append((out / f"runs-{_safe(label)}", [*common, "~hydra.sweeper.params.variant", *label_overrides(label)], label))
    return out_list


def _safe(label: str) -> str:
    """A folder name Hydra's override grammar takes unquoted: ``jsq[tie_break=first]`` -> ``jsq_tie_break_first``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")


def label_rows(df: pd.DataFrame, label: str | None) -> pd.DataFrame:
    """collect's rows with the table's ``setting`` and ``policy`` labels (from ov.setting, ov.variant)."""
    setting_of = {v: k for k, v in SETTINGS.items()}
    policy_of = {v: k for k, v in POLICIES.items()}
    df = df.copy()
    df["setting"] = df["ov.setting"].map(setting_of)
    df["label"] = label if label is not None else df["ov.variant"].map(policy_of)
    return df


def table(rows: pd.DataFrame, labels: list[str], settings: list[str]) -> pd.DataFrame:
    """Mean ± sample std of METRICS per (setting, policy) over the seeds, in the order asked for."""
    agg = mean_spread(rows, ["setting", "label"], METRICS)
    order = {k: i for i, k in enumerate(labels)}
    sorder = {k: i for i, k in enumerate(settings)}
    agg = agg.sort_values(["setting", "label"], key=lambda c: c.map(sorder if c.name == "setting" else order))
    out = []
    for _, r in agg.iterrows():
        row = {"setting": r["setting"], "policy": r["label"], "runs": int(r["runs"])}
        for m in METRICS:
            row[m] = fmt_mean_std(r[f"{m}_mean"], r[f"{m}_std"], DIGITS[m])
        out.append(row)
    return pd.DataFrame(out)


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
    if seeds < 1 or a.jobs < 1:
        raise ConfigError(f"--seeds {seeds} and --jobs {a.jobs} must be >= 1.")
    labels = policy_labels(a.policies)
    settings = [s for s in a.settings.split(",") if s]
    for s in settings:
        if s not in SETTINGS:
            raise ConfigError(f"unknown setting {s!r}." + did_you_mean(s, SETTINGS))
    out = Path(a.out or ("results/compare-quick" if a.quick else "results/compare"))
    print(f"compare: {len(settings)} setting(s) x {len(labels)} policies x {seeds} seeds, --jobs {a.jobs} on "
          f"{usable_cpus()} CPU(s)", file=sys.stderr)
    if a.jobs > 1:
        print(f"compare: note: {a.jobs} runs at a time share the CPUs, so decision_ms_* of the runs made now "
              "come out inflated; use --jobs 1 to measure decision times", file=sys.stderr)
    parts, total, reused, stale = [], 0, 0, 0
    for sweep_dir, overrides, label in sweeps(out, a.quick, seeds, labels, settings):
        df = run_sweep(EXPERIMENT, sweep_dir, overrides, jobs=a.jobs, who="compare")
        st = read_state(sweep_dir) or {}
        total += int(st.get("total", len(df)))
        reused += int(st.get("done_at_start", 0))
        stale += int(st.get("stale_at_start", 0))
        parts.append(label_rows(df, label))
    rows = pd.concat(parts, ignore_index=True)
    tab = table(rows, labels, settings)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "runs.csv", lambda tmp: rows.to_csv(tmp, index=False))
    write_atomic(out / "table.csv", lambda tmp: tab.to_csv(tmp, index=False))
    made = total - reused
    md = to_markdown(tab) + "\n\n" + (
        "decision_ms_* are CPU times on the machine that made each run; runs made with --jobs > 1 shared "
        f"the CPUs and report inflated decision times (this call made {made} run(s) with --jobs {a.jobs}).")
    write_atomic(out / "table.md", lambda tmp: Path(tmp).write_text(md + "\n"))
    print(md)
    print(f"compare: {total} runs ({reused} reused, {stale} stale rerun); wrote {out}/table.md, table.csv, "
          "runs.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
