"""What a run keeps of its steps: ``record=full|steps|sampled|summary`` (and ``auto``).

full     one row per (step, worker): load, running, prefill tokens, compute time (the default for runs
         whose table stays small; a week of 30 ms steps would be hundreds of millions of rows)
steps    one row per step: max / mean / min of load and running, prefill tokens, max / mean compute
sampled  the full rows of every ``record_every``-th step
summary  no step table; the summary's imbalance figures come from accumulators the core keeps
auto     full when the full table is estimated under AUTO_FULL_BYTES, else steps (and says so)

The compiled core writes rows into fixed-size buffers; when one fills, the driver moves it here as a
chunk, so memory grows with what is kept, never with a doubling copy.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from framework.errors import ConfigError
from framework.simcore import NAGG, REC_FULL, REC_SAMPLED, REC_STEPS, REC_SUMMARY

MODES = {"full": REC_FULL, "steps": REC_STEPS, "sampled": REC_SAMPLED, "summary": REC_SUMMARY}
AUTO_FULL_BYTES = 1 << 30  # 1 GiB of per-(step, worker) rows in memory
WARN_BYTES = 3 << 30
FULL_ROW_BYTES = 64  # eight 8-byte columns per (step, worker) row in steps.parquet
CHUNK_ROWS = 1 << 15


def estimate_steps(span_s: float, step_s: float, tail_steps: float, work_steps: float = 0.0) -> int:
    """Rough step count: the arrival span at the fastest step time (or, for a backlog or closed loop,
    ``work_steps``: output tokens over the cluster's slots, if longer), plus a drain tail of steps."""
    return int(max(max(span_s, 0.0) / max(step_s, 1e-12), work_steps) + tail_steps)


def resolve_mode(mode: str, *, est_steps: int | None, workers: int, out=None) -> str:
    """Check ``mode``; for auto pick full or steps by the estimated size (None: unknown, a streamed
    workload), telling the user."""
    if mode != "auto" and mode not in MODES:
        raise ConfigError(f"record={mode!r} is not a recording mode; choose one of auto, "
                          + ", ".join(MODES) + ".")
    out = out or sys.stderr
    if est_steps is None:
        if mode == "auto":
            print("balanceroute: a streamed workload's length is unknown until read; recording per-step "
                  "aggregates (record=steps). Set record=full, sampled or summary to choose.", file=out)
            return "steps"
        return mode
    est = est_steps * workers * FULL_ROW_BYTES
    if mode == "auto":
        if est <= AUTO_FULL_BYTES:
            return "full"
        print(f"balanceroute: this run would write about {est / 2**30:.1f} GiB of per-(step, worker) rows "
              f"(~{est_steps:,} steps x {workers} workers); recording per-step aggregates instead "
              "(record=steps). Set record=full to keep every row, record=sampled record_every=K for "
              "every K-th step, or record=summary for the summary only.", file=out)
        return "steps"
    if mode == "full" and est > WARN_BYTES:
        print(f"balanceroute: warning: record=full will hold and write about {est / 2**30:.1f} GiB of "
              f"per-(step, worker) rows (~{est_steps:,} steps x {workers} workers). Use record=steps, "
              "record=sampled or record=summary to keep less.", file=out)
    return mode


@dataclass
class StepTable:
    """The recorded steps: ``step`` indexes rows; per-worker columns are (rows, G), aggregates (rows, 9)."""

    mode: str
    step: np.ndarray
    t_start: np.ndarray
    duration: np.ndarray
    load: np.ndarray | None = None
    running: np.ndarray | None = None
    prefill: np.ndarray | None = None
    compute: np.ndarray | None = None
    agg: np.ndarray | None = None


class Recorder:
    """Owns the core's recording buffers and the chunks moved out of them."""

    def __init__(self, mode: str, every: int, workers: int, chunk_rows: int = CHUNK_ROWS) -> None:
        if mode not in MODES:
            raise ConfigError(f"record={mode!r} is not a recording mode; choose one of {', '.join(MODES)}.")
        if every < 1:
            raise ConfigError(f"record_every={every} must be >= 1.")
        self.mode, self.code, self.every, self.G = mode, MODES[mode], int(every), int(workers)
        per_worker = mode in ("full", "sampled")
        rows = 0 if mode == "summary" else chunk_rows
        G = workers if per_worker else 0
        self.k = np.zeros(rows, np.int64)
        self.t = np.zeros(rows)
        self.T = np.zeros(rows)
        self.s = np.zeros((rows, G), np.int64)
        self.n = np.zeros((rows, G), np.int64)
        self.P = np.zeros((rows, G), np.int64)
        self.tg = np.zeros((rows, G))
        self.agg = np.zeros((rows if mode == "steps" else 0, NAGG))
        self._chunks: list[tuple[np.ndarray, ...]] = []

    def buffers(self) -> tuple[np.ndarray, ...]:
        return self.k, self.t, self.T, self.s, self.n, self.P, self.tg, self.agg

    def flush(self, rows: int) -> None:
        """Move the first ``rows`` buffered rows into a chunk; the core then refills from row 0."""
        if rows:
            keep = (self.k, self.t, self.T) + ((self.s, self.n, self.P, self.tg) if self.mode != "steps"
                                                else (self.agg,))
            self._chunks.append(tuple(a[:rows].copy() for a in keep))

    def table(self) -> StepTable | None:
        if self.mode == "summary":
            return None
        ch = self._chunks
        cat = (lambda i, shape: np.concatenate([c[i] for c in ch]) if ch else np.zeros(shape))
        base = dict(mode=self.mode, step=cat(0, 0).astype(np.int64), t_start=cat(1, 0), duration=cat(2, 0))
        if self.mode == "steps":
            return StepTable(**base, agg=cat(3, (0, NAGG)))
        G = self.G
        return StepTable(**base, load=cat(3, (0, G)).astype(np.int64), running=cat(4, (0, G)).astype(np.int64),
                         prefill=cat(5, (0, G)).astype(np.int64), compute=cat(6, (0, G)))
