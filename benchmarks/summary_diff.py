"""Same seeded runs, two trees: are the summaries identical, decision times and provenance aside?

    python benchmarks/summary_diff.py run OUT [--repo DIR]   # the fixed run set below, into OUT/<label>/
    python benchmarks/summary_diff.py diff A B               # compare OUT folders A and B; exit 1 on a difference

Why: a refactor that claims "behaviour unchanged" (issue 10) shows it by rerunning the same seeded runs on
the old tree (e.g. ``git archive 419f3b6 | tar -x -C /tmp/base``, then ``run /tmp/before --repo
/tmp/base``) and on the new one, and diffing their summary.json files. Keys that measure the machine or name
the code (decision_ms_*, *wall_s, request_steps_per_s, *_solver_ms/s, code_version, git_*) are ignored; ``config_hash`` is reported apart, since
it changes whenever the config's shape does, not only when the computation does.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

# label -> overrides: policies br0, brh[oracle], least_kv, jsq[pool], vllm, lp on the default synthetic
# workload, sharegpt backlog, azure_conv_2023 and the capacity-bound (kv-bound) cluster of analysis.compare
RUNS: dict[str, list[str]] = {
    "br0-default": ["policy=br0", "workload.max_requests=400"],
    "brh_oracle-default": ["variant=brh_oracle", "workload.max_requests=300"],
    "brh_survival-default": ["policy=brh", "policy.classifier=survival", "workload.max_requests=300"],
    "lp-default": ["policy=lp", "workload.max_requests=120", "cluster.workers=4"],
    "jsq_pool-sharegpt-backlog": ["variant=jsq_pool", "workload=sharegpt", "workload.arrival=backlog",
                                  "workload.num_requests=600", "cluster=ascend910c_dsv3_decode"],
    "br0-sharegpt-backlog": ["policy=br0", "workload=sharegpt", "workload.arrival=backlog",
                             "workload.num_requests=600", "workload.min_output_tokens=20",
                             "cluster=ascend910c_dsv3_decode"],
    "least_kv-conv": ["policy=least_kv", "workload=azure_conv_2023", "workload.rate_scale=8",
                      "workload.max_requests=800", "cluster.workers=16"],
    "vllm-conv": ["policy=vllm", "workload=azure_conv_2023", "workload.rate_scale=8",
                  "workload.max_requests=800", "cluster.workers=16", "workload.train_fraction=0"],
    "brh_oracle-conv": ["variant=brh_oracle", "workload=azure_conv_2023", "workload.rate_scale=8",
                        "workload.max_requests=500", "workload.start_s=600"],
    "least_kv-kvbound": ["policy=least_kv", "workload=azure_conv_2023", "cluster=h200_dsv3",
                         "workload.rate_scale=32", "cluster.kv_capacity_tokens=120000",
                         "workload.max_requests=1500"],
    "br0-kvbound": ["policy=br0", "workload=azure_conv_2023", "cluster=h200_dsv3", "workload.rate_scale=32",
                    "cluster.kv_capacity_tokens=120000", "workload.max_requests=1500"],
}
# what measures the machine (decision and solver times, wall time, its rate) or names the code
IGNORED = re.compile(r"^(decision_ms|code_version|git_)|wall_s$|^request_steps_per_s$|_solver_(ms|s)")
APART = ("config_hash",)


def run_all(out: Path, repo: Path, labels: list[str]) -> None:
    """Each run of RUNS through ``python -m framework.cli`` with ``repo`` as the working directory."""
    env = dict(os.environ, BALANCEROUTE_DATA=os.environ.get(
        "BALANCEROUTE_DATA", str(Path(__file__).resolve().parent.parent.parent / "shared" / "data")))
    for label in labels:
        d = (out / label).resolve()
        cmd = [sys.executable, "-m", "framework.cli", *RUNS[label], "seed=1", "progress=false",
               f"hydra.run.dir={d}"]
        p = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        print(f"{label}: rc={p.returncode}", flush=True)
        if p.returncode != 0:
            print(p.stderr[-2000:], file=sys.stderr)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def diff_dirs(a: Path, b: Path) -> int:
    """Print per-run differences of summary.json; return how many runs differ (or are missing)."""
    bad = 0
    for label in sorted({p.parent.name for p in (*a.glob("*/summary.json"), *b.glob("*/summary.json"))}):
        fa, fb = a / label / "summary.json", b / label / "summary.json"
        if not (fa.is_file() and fb.is_file()):
            print(f"{label}: missing in {'A' if not fa.is_file() else 'B'}")
            bad += 1
            continue
        sa, sb = json.loads(fa.read_text()), json.loads(fb.read_text())
        keys = sorted(set(sa) | set(sb))
        diffs = [k for k in keys if not IGNORED.search(k) and k not in APART
                 and not _same(sa.get(k, "<absent>"), sb.get(k, "<absent>"))]
        compared = sum(1 for k in keys if not IGNORED.search(k) and k not in APART)
        hash_note = "config_hash same" if sa.get("config_hash") == sb.get("config_hash") else "config_hash changed"
        if diffs:
            bad += 1
            print(f"{label}: {len(diffs)} of {compared} keys differ ({hash_note})")
            for k in diffs:
                print(f"    {k}: {sa.get(k, '<absent>')!r} -> {sb.get(k, '<absent>')!r}")
        else:
            print(f"{label}: identical ({compared} keys; {hash_note})")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the fixed set of seeded runs into OUT/<label>/")
    r.add_argument("out", type=Path)
    r.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    r.add_argument("--only", default="", help="comma-separated labels (default: all)")
    d = sub.add_parser("diff", help="compare two OUT folders")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        labels = [x for x in a.only.split(",") if x] or list(RUNS)
        unknown = [x for x in labels if x not in RUNS]
        if unknown:
            ap.error(f"unknown label(s) {unknown}; known: {', '.join(RUNS)}")
        run_all(a.out, a.repo, labels)
        return 0
    n = diff_dirs(a.a, a.b)
    print(f"{n} run(s) differ" if n else "all runs identical (decision times, wall time and provenance aside)")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
