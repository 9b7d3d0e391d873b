"""What a sweep folder holds: which runs are complete, and the sweep's own progress record.

A run is complete when its folder holds summary.json (framework.results writes it last, atomically),
and it is identified by its Hydra overrides (.hydra/overrides.yaml), never by its folder name, so
resumption keeps working whatever scheme names the folders. Keys that cannot change a run's result
(``progress``, ``hydra.*``) are left out of the identity.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import yaml

STATE_FILE = ".sweep_state.json"
PROGRESS_FILE = ".sweep_progress"
IGNORED_KEYS = ("progress",)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def run_identity(overrides: Iterable[str], ignore: Sequence[str] = IGNORED_KEYS) -> frozenset[str]:
    """The overrides that decide a run's result, as a set (order on the command line is irrelevant)."""
    out = set()
    for o in overrides:
        k = _key(o)
        if k in ignore or k.startswith("hydra.") or k.startswith("hydra/"):
            continue
        out.add(o.lstrip("+"))
    return frozenset(out)


def read_overrides(run_dir: Path) -> list[str] | None:
    """A run folder's task overrides, or None when Hydra did not record them."""
    f = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not f.is_file():
        return None
    data = yaml.safe_load(f.read_text()) or []
    return [str(x) for x in data]


def complete_runs(sweep_dir: Path) -> dict[frozenset[str], Path]:
    """Every complete run under sweep_dir (a folder with summary.json), by its identity."""
    out: dict[frozenset[str], Path] = {}
    root = Path(sweep_dir)
    if not root.is_dir():
        return out
    for f in sorted(root.rglob("summary.json")):
        ov = read_overrides(f.parent)
        if ov is not None:
            out[run_identity(ov)] = f.parent
    return out


def write_state(sweep_dir: Path, jobs: list[list[str]], done: int, stale: int = 0) -> None:
    """Record the grid and the start of this session, for the progress callback and for collect
    (``stale_at_start``: complete runs of the grid stored with another config, rerun)."""
    root = Path(sweep_dir)
    root.mkdir(parents=True, exist_ok=True)
    state = {"total": len(jobs), "done_at_start": done, "stale_at_start": stale, "started": time.time(),
             "jobs": [sorted(run_identity(j)) for j in jobs]}
    tmp = root / f".{STATE_FILE}.{os.getpid()}.partial"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(root / STATE_FILE)
    (root / PROGRESS_FILE).write_text("")


def read_state(sweep_dir: Path) -> dict | None:
    f = Path(sweep_dir) / STATE_FILE
    return json.loads(f.read_text()) if f.is_file() else None


def record_job_end(sweep_dir: Path, status: str) -> int:
    """Append one line per finished job (O_APPEND: safe across processes); returns lines so far."""
    f = Path(sweep_dir) / PROGRESS_FILE
    fd = os.open(f, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (status + "\n").encode())
    finally:
        os.close(fd)
    return len(f.read_text().splitlines())


def fmt_duration(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def progress_line(state: dict, finished: int, now: float | None = None) -> str:
    """'sweep: 12/40 runs done, 1m02s elapsed, ~3m10s left' from this session's rate."""
    now = time.time() if now is None else now
    total, done0 = int(state["total"]), int(state["done_at_start"])
    done = min(total, done0 + finished)
    elapsed = now - float(state["started"])
    left = "" if finished == 0 else f", ~{fmt_duration(elapsed / finished * (total - done))} left"
    return f"sweep: {done}/{total} runs done, {fmt_duration(elapsed)} elapsed{left}"
