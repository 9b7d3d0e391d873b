"""Workload loading speed and memory; prints one JSON object.

    .venv/bin/python benchmarks/bench_workloads.py [--rows 2000000]

Measures (each in a fresh subprocess, so peak RSS is the load's own):
- azure_conv_2023 from the data folder: first load in a process (includes one-time imports pulled in by
  Arrow's timestamp cast) and warm loads;
- a generated 2024-format file (``+00:00`` offsets, 0-9 fractional digits) of --rows rows: full read
  (rows/s, peak RSS above the post-import baseline, Arrow pool peak) and a max_requests=10000 read that
  stops early;
- the default synthetic workload.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from framework.workloads import workload_config
from framework.workloads import load_workload
import pyarrow as pa, pandas  # imports outside the measured region
cfg = workload_config(**json.loads({cfg!r}))
def hwm():  # peak RSS of this process (kB); per address space, so not inherited across exec
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
base = hwm()
times = []
for _ in range({reps}):
    t = time.perf_counter(); w = load_workload(cfg, 0); times.append(time.perf_counter() - t)
peak = hwm()
print(json.dumps({{"rows": len(w), "seconds": times, "peak_rss_mb": peak / 1024, "baseline_rss_mb": base / 1024,
                  "rss_above_baseline_mb": (peak - base) / 1024,
                  "arrow_pool_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
                  "stopped_early": w.meta.get("stopped_early")}}))
"""

FIRST = r"""
import sys, time
sys.path.insert(0, {repo!r})
from framework.workloads import workload_config
from framework.workloads import load_workload
t = time.perf_counter(); load_workload(workload_config(kind="trace", preset="azure_conv_2023"), 0)
print(time.perf_counter() - t)
"""


def child(cfg: dict, reps: int = 1) -> dict:
    code = CHILD.format(repo=str(REPO), cfg=json.dumps(cfg), reps=reps)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_2024(path: Path, n: int, seed: int = 0) -> None:
    """Sorted 2024-format rows: times truncated to 0-9 fractional digits, then sorted."""
    rng = np.random.default_rng(seed)
    offs = np.cumsum(rng.exponential(0.03e9, n)).astype(np.int64)  # ~33 req/s, like conv 2024
    digits = rng.choice([0, 3, 5, 6, 7], n, p=[0.01, 0.04, 0.05, 0.2, 0.7])
    trunc = offs - offs % 10 ** (9 - digits)
    order = np.argsort(trunc, kind="stable")
    trunc, digits = trunc[order], digits[order]
    stamps = np.datetime_as_string(np.datetime64("2024-05-12T00:00:00", "ns") + trunc, unit="ns")
    p = rng.integers(1, 8000, n)
    o = rng.integers(1, 1500, n)
    with open(path, "w") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for s, d, pi, oi in zip(stamps.tolist(), digits.tolist(), p.tolist(), o.tolist()):
            f.write(f"{s[:19].replace('T', ' ')}{'.' + s[20:20 + d] if d else ''}+00:00,{pi},{oi}\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    args = ap.parse_args()
    out: dict = {}
    first = subprocess.run([sys.executable, "-c", FIRST.format(repo=str(REPO))], check=True,
                           capture_output=True, text=True)
    out["azure_conv_2023_first_load_s"] = float(first.stdout.strip())
    warm = child({"kind": "trace", "preset": "azure_conv_2023"}, reps=5)
    out["azure_conv_2023_warm_load_s"] = min(warm["seconds"][1:])
    out["azure_conv_2023_rows"] = warm["rows"]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "AzureLLMInferenceTrace_conv_1week_sample.csv"
        t = time.perf_counter()
        write_2024(f, args.rows)
        out["generate_s"] = time.perf_counter() - t
        out["file_mb"] = f.stat().st_size / 2**20
        full = child({"kind": "trace", "path": str(f)})
        out["full_2024"] = {**full, "rows_per_s": full["rows"] / full["seconds"][0]}
        capped = child({"kind": "trace", "path": str(f), "max_requests": 10000})
        out["max_requests_10000_2024"] = capped
    syn = child({}, reps=5)
    out["synthetic_default_s"] = min(syn["seconds"][1:])
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
