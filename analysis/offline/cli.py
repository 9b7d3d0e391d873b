"""``python -m analysis.offline`` (also ``python -m analysis.offline_optimum``): solve an instance CSV.

stdout carries exactly one JSON document (with a final newline); HiGHS's banner and the progress line
go to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from analysis.offline.solve import solve_offline
from framework.errors import ConfigError, TraceFormatError, UserError, report

COLUMNS = ("arrival_step", "prompt_tokens", "output_tokens")


def read_instance(path: str | Path, option: str = "--instance") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an instance CSV (arrival_step, prompt_tokens, output_tokens), naming bad rows by line.

    ``option`` is how the user named the file (a missing file's message tells them to check it)."""
    import pandas as pd

    from framework.workloads.csvio import require_file

    f = require_file(path, "instance", option)
    try:
        df = pd.read_csv(f, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise TraceFormatError(f"instance file {str(f)!r} is not a readable CSV ({e}). Expected a header "
                               f"line {','.join(COLUMNS)} and one request per line.") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TraceFormatError(f"instance file {str(f)!r} lacks column(s) {', '.join(missing)}; its columns "
                               f"are {', '.join(map(repr, df.columns))}. The header must name "
                               f"{', '.join(COLUMNS)}.")
    if len(df) == 0:
        raise TraceFormatError(f"instance file {str(f)!r} has a header but no requests; add one line per "
                               "request.")
    cols = []
    for name, lo in zip(COLUMNS, (0, 0, 1)):
        raw = df[name].str.strip()
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() | (num != num.round()) | (num < lo)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TraceFormatError(f"instance file {str(f)!r}, line {i + 2}: {name} is {raw.iloc[i]!r}; it "
                                   f"must be a whole number >= {lo}. Fix or drop that line.")
        cols.append(num.to_numpy().astype(np.int64))
    return cols[0], cols[1], cols[2]


def _flush_c_stdio() -> None:
    """Flush the C library's stdout buffer: HiGHS prints through it, and what it holds when fd 1 is
    restored would otherwise reach the real stdout at exit, after (and on the line of) the JSON."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no libc symbols here
        pass


@contextlib.contextmanager
def stdout_to_stderr():
    """Send fd 1 to stderr while solving: HiGHS prints its banner on stdout, which must stay JSON."""
    sys.stdout.flush()
    _flush_c_stdio()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


def print_json(obj: dict, indent: int | None = None) -> None:
    """One JSON document on stdout, ending in a newline and flushed, so nothing else joins its line."""
    sys.stdout.write(json.dumps(obj, indent=indent) + "\n")
    sys.stdout.flush()


class SolveProgress:
    """A progress line on stderr while ``solve_offline`` runs: seconds used of the limit, part, stage.

    Pass it as ``solve_offline(..., progress=bar)`` inside ``with SolveProgress(limit) as bar``. A
    thread redraws it twice a second, because one part's MILP can run for the whole limit without
    calling back. Shown only when stderr is a terminal (unless ``enabled`` says otherwise).
    """

    def __init__(self, time_limit: float, label: str = "offline optimum", enabled: bool | None = None) -> None:
        self.time_limit = float(time_limit)
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.stage = "starting"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None

    def __call__(self, stage: str, part: int, parts: int) -> None:
        self.stage = stage if stage == "done" else f"part {part + 1}/{parts}: {stage}"

    def __enter__(self) -> "SolveProgress":
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=round(self.time_limit, 1), desc=self.label, unit="s", file=sys.stderr,
                             bar_format="{desc}: {n:.0f}/{total:.0f} s |{bar}| {postfix}", leave=False)
            self._t0 = time.perf_counter()
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def _draw(self) -> None:
        assert self._bar is not None
        self._bar.n = min(time.perf_counter() - self._t0, self.time_limit)
        self._bar.set_postfix_str(self.stage, refresh=False)
        self._bar.refresh()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._bar.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.offline",
                                 description="Hindsight optimum of the DP imbalance objective J.")
    ap.add_argument("--instance", required=True, help="CSV with arrival_step,prompt_tokens,output_tokens")
    ap.add_argument("--workers", type=int, required=True, help="number of DP workers G")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds for search + MILP (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-milp", action="store_true", help="heuristic + per-step bound only")
    ap.add_argument("--jobs", type=int, default=None,
                    help="processes (default: the CPUs available, at most 2; 2 runs the window bounds "
                         "beside the search)")
    ap.add_argument("--profile", type=int, default=0, metavar="BLOCKS",
                    help="also print where the interval's width sits: split over BLOCKS equal step ranges")
    args = ap.parse_args(argv)
    try:
        if args.workers < 1:
            raise ConfigError(f"--workers {args.workers}: need at least one worker.")
        if args.profile < 0:
            raise ConfigError(f"--profile {args.profile}: give a number of blocks >= 1 (or 0 for none).")
        a, p, o = read_instance(args.instance)
        with stdout_to_stderr(), SolveProgress(args.time_limit) as bar:
            res = solve_offline(a, p, o, args.workers, time_limit=args.time_limit, seed=args.seed,
                                use_milp=not args.no_milp, jobs=args.jobs, progress=bar)
    except UserError as e:
        return report("offline", e)
    out = res.to_dict()
    if args.profile:
        out["profile"] = res.bounds.blocks(args.profile)
    print_json(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
