"""A generated Azure-2024-schema week, simulated end to end at its real rate; prints one JSON object.

    python benchmarks/week.py                          # 27.3 M requests over 7 days, least_kv and br0
    python benchmarks/week.py --rows 200000            # quick form: the same rate (~45 req/s), 1.2 hours
    python benchmarks/week.py --policies br0 --record steps --duration-s 86400   # one day of the week

The trace is generated once (framework.workloads.generate, conv lengths, seed 0) into --cache
(default $BALANCEROUTE_CACHE or ~/.cache/balanceroute, folder week/); --days defaults to the week's
rate: 7 days x rows / 27.3 M. Each policy runs in its own process, the command a user would type
(`python -m framework.cli ... cluster=fixed workload.train_fraction=0 stream=true record=...`), under
/usr/bin/time -v when present (else getrusage of the child): wall, user CPU and peak RSS are that
process's, decision time and steps come from its summary.json. Pin to one core with taskset.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WEEK_ROWS = 27_300_000


def trace_file(rows: int, days: float, cache: Path, seed: int = 0) -> Path:
    """The generated file for (rows, days, seed), written on first use."""
    from framework.workloads.generate import generate, load_lengths

    out = cache / "week" / f"conv-{rows}-{days:g}d-s{seed}.csv"
    if not out.is_file():
        generate(out, rows, days=days, lengths=load_lengths("conv"), seed=seed)
    return out


def _time_v(text: str) -> dict:
    """Wall, user CPU and peak RSS from /usr/bin/time -v's report."""
    def grab(label: str) -> str | None:
        m = re.search(rf"^\s*{re.escape(label)}:\s*(.+)$", text, re.M)
        return m.group(1).strip() if m else None

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = None
    if wall:
        parts = [float(x) for x in wall.split(":")]
        secs = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    user, rss = grab("User time (seconds)"), grab("Maximum resident set size (kbytes)")
    return {"wall_s": secs, "user_cpu_s": float(user) if user else None,
            "peak_rss_mb": round(int(rss) / 1024, 1) if rss else None}


def run_one(policy: str, path: Path, record: str, duration_s: float | None, workers: int,
            log_dir: Path | None = None) -> dict:
    """One policy over the file in a fresh process; its resources and summary figures.

    With ``log_dir`` the child's stderr (its progress bar, then time -v's report) goes to
    log_dir/week-POLICY.log as it runs, so a long run can be watched.
    """
    out_dir = Path(tempfile.mkdtemp(prefix=f"week-{policy}-"))
    cmd = [sys.executable, "-m", "framework.cli", f"policy={policy}", "workload=trace",
           f"workload.path={path}", "workload.train_fraction=0", "cluster=fixed", f"cluster.workers={workers}",
           f"record={record}", "stream=true", f"progress={'true' if log_dir else 'false'}",
           f"hydra.run.dir={out_dir}"]
    if duration_s is not None:
        cmd.append(f"workload.duration_s={duration_s}")
    timev = shutil.which("time") and Path("/usr/bin/time").is_file()
    full = (["/usr/bin/time", "-v"] if timev else []) + cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    if log_dir is not None:
        log = Path(log_dir) / f"week-{policy}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"week: {policy}: progress in {log}", file=sys.stderr, flush=True)
        with open(log, "w") as f:
            rc = subprocess.run(full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f).returncode
        err = log.read_text(errors="replace")
    else:
        proc = subprocess.run(full, cwd=ROOT, capture_output=True, text=True)
        rc, err = proc.returncode, proc.stderr
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise SystemExit(f"week: {policy} failed ({rc}):\n{err[-3000:]}")
    res = _time_v(err) if timev else {}
    if not res.get("wall_s"):
        res = {"wall_s": wall, "user_cpu_s": after.ru_utime - before.ru_utime,
               "peak_rss_mb": round(after.ru_maxrss / 1024, 1)}
    s = json.loads((out_dir / "summary.json").read_text())
    shutil.rmtree(out_dir, ignore_errors=True)
    return {"policy": policy, **{k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()},
            "steps": s["steps"], "requests": s["requests_completed"], "sim_wall_s": round(s["sim_wall_s"], 2),
            "steps_per_s": round(s["steps"] / s["sim_wall_s"]), "decisions": s["decisions"],
            "decision_ms_p50": round(s["decision_ms_p50"], 4), "simulated_s": round(s["makespan_s"], 1),
            "avg_dp_imbalance": round(s["avg_dp_imbalance"], 5), "ttft_p99_s": round(s["ttft_p99_s"], 4)}


def main(argv: list[str] | None = None) -> int:
    from framework.workloads.presets import cache_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=WEEK_ROWS)
    ap.add_argument("--days", type=float, default=None, help="default: 7 x rows / 27.3 M (the week's rate)")
    ap.add_argument("--policies", default="least_kv,br0")
    ap.add_argument("--record", default="summary", help="summary | steps | sampled | full")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--duration-s", type=float, default=None, help="simulate only this prefix (trace seconds)")
    ap.add_argument("--cache", type=Path, default=None, help="where the generated file is kept")
    ap.add_argument("--log-dir", type=Path, default=None, help="show progress: each run's stderr goes here")
    a = ap.parse_args(argv)
    days = a.days if a.days is not None else 7.0 * a.rows / WEEK_ROWS
    t0 = time.perf_counter()
    path = trace_file(a.rows, days, a.cache or cache_dir())
    gen_s = time.perf_counter() - t0
    runs = [run_one(p, path, a.record, a.duration_s, a.workers, a.log_dir) for p in a.policies.split(",")]
    print(json.dumps({"rows": a.rows, "days": days, "file": str(path), "file_gb": round(path.stat().st_size / 1e9, 3),
                      "prepare_s": round(gen_s, 1), "record": a.record, "workers": a.workers,
                      "duration_s": a.duration_s, "runs": runs, "python": platform.python_version(),
                      "pid_cpus": len(os.sched_getaffinity(0)), "load_avg_1min": round(os.getloadavg()[0], 2)},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
