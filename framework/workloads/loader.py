"""``load_workload``: turn a WorkloadConfig into a Workload (source -> window -> rate_scale -> re-base).

The train split and the max_requests truncation are the runner's (framework.workload.split_train, then
the first max_requests). When max_requests is set, every source keeps only the window's first
``row_cap(max_requests, train_fraction)`` rows, enough for the runner to simulate max_requests after its
split; for the 2024 week-long files this is what makes a short run read a few megabytes, not a gigabyte.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.config import WorkloadConfig
from framework.errors import ConfigError, TraceFormatError, did_you_mean
from framework.registry import Registry, config_error
from framework.workload import Workload
from framework.workloads import presets
from framework.workloads.arrivals import ARRIVALS, arrival_times
from framework.workloads.azure import read_azure_csv
from framework.workloads.lengths import read_lengths_table, sample_rows
from framework.workloads.mooncake import read_mooncake
from framework.workloads.synthetic import synthetic_lengths
from framework.workloads.window import Rows, Window, row_cap, select

@dataclass(frozen=True)
class Source:
    """One ``workload.kind``: whether it reads a file, whether it draws arrivals, how it gets rows.

    ``read(cfg, seed, window, meta, path)`` returns the rows in the window (path is None for sources
    that read no file). A new workload format is one reader module plus one ``SOURCES.register``.
    """

    reads_file: bool
    generated: bool  # draws arrival times (workload.arrival, rate_rps, ...) and uses num_requests
    read: Callable[[WorkloadConfig, int, Window, dict, Path | None], Rows]


SOURCES: Registry[Source] = Registry("workload source", "Or choose a preset with workload=NAME.",
                                     key="workload.kind")


def check_config(cfg: WorkloadConfig) -> None:
    """ConfigError naming the first invalid workload.* value (WorkloadConfig.validate runs this)."""
    def bad(key: str, why: str) -> ConfigError:
        return config_error("workload", key, getattr(cfg, key), why)

    src = SOURCES.get(cfg.kind)
    if not (cfg.rate_scale > 0 and math.isfinite(cfg.rate_scale)):
        raise bad("rate_scale", "must be a positive number (2 = twice as many requests per second).")
    if not (cfg.start_s >= 0 and math.isfinite(cfg.start_s)):
        raise bad("start_s", "must be >= 0 (seconds into the trace).")
    if cfg.duration_s is not None and not cfg.duration_s > 0:
        raise bad("duration_s", "must be > 0 seconds, or null for 'to the end'.")
    if cfg.max_requests is not None and cfg.max_requests < 1:
        raise bad("max_requests", "must be >= 1, or null for 'all'.")
    if not 0.0 <= cfg.train_fraction < 1.0:
        raise bad("train_fraction", "must be in [0, 1).")
    lo, hi = cfg.min_output_tokens, cfg.max_output_tokens
    for key, v in (("min_output_tokens", lo), ("max_output_tokens", hi)):
        if v is not None and not v >= 1:
            raise bad(key, "must be >= 1 (tokens), or null for no bound.")
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"workload.min_output_tokens={lo} > workload.max_output_tokens={hi}: no request "
                          "can pass both; lower the minimum or raise the maximum.")
    if src.generated:
        if cfg.arrival not in ARRIVALS:
            raise ConfigError(f"workload.arrival={cfg.arrival!r} is not an arrival process."
                              + did_you_mean(cfg.arrival, ARRIVALS))
        if not (cfg.rate_rps > 0 and math.isfinite(cfg.rate_rps)):
            raise bad("rate_rps", "must be a positive rate (requests per second).")
        if cfg.num_requests < 1:
            raise bad("num_requests", "must be >= 1.")
        if cfg.arrival == "closed_loop" and not (cfg.closed_loop_waiting or 0) >= 1:
            raise bad("closed_loop_waiting", "must be >= 1 with workload.arrival=closed_loop (requests "
                      "kept waiting), e.g. workload.closed_loop_waiting=64.")
        if cfg.arrival == "gamma" and not (cfg.burst_cv > 0 and math.isfinite(cfg.burst_cv)):
            raise bad("burst_cv", "must be > 0 (1 = Poisson, larger = burstier).")
        if cfg.arrival == "varying":
            if not cfg.rate_period_s > 0:
                raise bad("rate_period_s", "must be > 0 seconds.")
            if not 0.0 <= cfg.rate_amplitude <= 1.0:
                raise bad("rate_amplitude", "must be in [0, 1] (relative amplitude of the rate sinusoid).")
    if not src.reads_file and (cfg.path or cfg.preset):
        raise ConfigError(f"workload.kind={cfg.kind} reads no file, but workload.path={cfg.path!r} / "
                          f"workload.preset={cfg.preset!r} is set: choose a file workload, e.g. "
                          "`workload=trace workload.path=FILE.csv` or `workload=azure_conv_2023`.")
    if src.reads_file and not cfg.path and not cfg.preset:
        same = [n for n, pr in presets.PRESETS.items() if pr.kind == cfg.kind]
        choice = f" or a workload.preset ({', '.join(same)})" if same else ""
        raise ConfigError(f"workload.kind={cfg.kind} needs a file: set workload.path=FILE{choice}.")
    if cfg.preset and not cfg.path:
        want = presets.get_preset(cfg.preset).kind
        if want != cfg.kind:
            raise ConfigError(f"workload.preset={cfg.preset!r} is a {want!r} source but workload.kind="
                              f"{cfg.kind!r}: use `workload={cfg.preset}` or set workload.kind={want}.")


def resolve_path(cfg: WorkloadConfig) -> tuple[Path, dict]:
    """The file a file-based workload reads: workload.path (hash-checked if sha256 given), else the preset."""
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if cfg.sha256 and path.is_file():
            presets.verify_sha256(path, cfg.sha256, "Check workload.path or workload.sha256.")
        return path, {"sha256": cfg.sha256}
    assert cfg.preset is not None
    return presets.resolve(cfg.preset, cfg.sha256)


def _generated(cfg: WorkloadConfig, seed: int, window: Window, lengths: tuple[np.ndarray, np.ndarray] | None,
               meta: dict) -> Rows:
    """Lengths (drawn or resampled) plus a synthetic arrival process, both from ``seed``.

    Lengths and arrivals use independent child streams, so changing the arrival process or rate keeps
    the same requests (controlled comparisons).
    """
    len_rng, arr_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    n = cfg.num_requests
    if lengths is None:
        p, o = _filtered_synthetic(cfg, n, len_rng)
    else:
        p, o = lengths
        keep = output_filter(cfg, o)
        if keep is not None:
            p, o = p[keep], o[keep]
            if len(p) == 0:
                raise ConfigError(f"no row of the lengths table has an output within workload.min_output_"
                                  f"tokens={cfg.min_output_tokens} .. max_output_tokens={cfg.max_output_tokens}.")
            meta["rows_after_output_filter"] = int(len(p))
        idx = sample_rows(len(p), n, len_rng)
        p, o = p[idx], o[idx]
    t = arrival_times(cfg.arrival, n, cfg.rate_rps, arr_rng, burst_cv=cfg.burst_cv,
                      period_s=cfg.rate_period_s, amplitude=cfg.rate_amplitude)
    meta.update(arrival=cfg.arrival, rate_rps=cfg.rate_rps, num_requests=n, seed=seed)
    if cfg.arrival == "gamma":
        meta["burst_cv"] = cfg.burst_cv
    if cfg.arrival == "varying":
        meta.update(rate_period_s=cfg.rate_period_s, rate_amplitude=cfg.rate_amplitude)
    # the window counts from the start of the process (t = 0), not from the first arrival
    return select(t, p, o, window, meta, "generated arrivals", origin=0.0)


def output_filter(cfg: WorkloadConfig, output: np.ndarray) -> np.ndarray | None:
    """Mask of rows within workload.min/max_output_tokens, or None when neither is set."""
    if cfg.min_output_tokens is None and cfg.max_output_tokens is None:
        return None
    keep = np.ones(len(output), bool)
    if cfg.min_output_tokens is not None:
        keep &= output >= cfg.min_output_tokens
    if cfg.max_output_tokens is not None:
        keep &= output <= cfg.max_output_tokens
    return keep


def _filtered_synthetic(cfg: WorkloadConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic requests whose outputs pass the filter (rejection sampling: the law conditioned on it)."""
    p, o = synthetic_lengths(n, rng)
    keep = output_filter(cfg, o)
    if keep is None:
        return p, o
    ps, os_, have = [p[keep]], [o[keep]], int(keep.sum())
    for _ in range(1000):
        if have >= n:
            break
        p, o = synthetic_lengths(n, rng)
        keep = output_filter(cfg, o)
        ps.append(p[keep])
        os_.append(o[keep])
        have += int(keep.sum())
    if have < n:
        raise ConfigError(f"workload.min_output_tokens={cfg.min_output_tokens} / max_output_tokens="
                          f"{cfg.max_output_tokens} keep almost no synthetic request (outputs are lognormal, "
                          "median 129, clipped to 1..2048); widen them.")
    return np.concatenate(ps)[:n], np.concatenate(os_)[:n]


def _filter_rows(cfg: WorkloadConfig, rows: Rows, cap: int | None) -> Rows:
    """Rows of a file source within the output filter, then the window's row cap."""
    keep = output_filter(cfg, rows.output)
    if keep is None:
        return rows
    t, p, o = rows.t_s[keep][:cap], rows.prompt[keep][:cap], rows.output[keep][:cap]
    rows.meta.update(rows_after_output_filter=int(keep.sum()))
    return Rows(t, p, o, rows.meta)


def load_workload(cfg: WorkloadConfig, seed: int) -> Workload:
    """The requests ``cfg`` describes: source rows in the window, times / rate_scale, re-based to 0."""
    cfg.validate()
    seed = int(cfg.seed) if cfg.seed is not None else int(seed)
    end = cfg.start_s + cfg.duration_s if cfg.duration_s is not None else math.inf
    cap = row_cap(cfg.max_requests, cfg.train_fraction)
    filtered = cfg.min_output_tokens is not None or cfg.max_output_tokens is not None
    src = SOURCES.get(cfg.kind)
    # a file source reads its whole window when filtering, so the cap counts requests that pass the filter
    window = Window(float(cfg.start_s), float(end), None if filtered and src.reads_file else cap)
    meta: dict = {"kind": cfg.kind, "preset": cfg.preset,
                  "min_output_tokens": cfg.min_output_tokens, "max_output_tokens": cfg.max_output_tokens}
    path = None
    if src.reads_file:
        path, found = resolve_path(cfg)
        meta.update(found)
    rows = src.read(cfg, seed, window, meta, path)
    if src.reads_file:
        meta.update(rows.meta)
    source = str(path) if path is not None else f"synthetic(seed={seed})"
    if len(rows) == 0:
        span = rows.meta.get("span_read_s", rows.meta.get("span_total_s", float("nan")))
        raise TraceFormatError(f"no request of {source} falls in the window workload.start_s={cfg.start_s}, "
                               f"workload.duration_s={cfg.duration_s} (trace seconds; the rows read span "
                               f"0 to {span:.1f} s). Move or widen the window.")
    meta.update(window_start_s=window.start_s,
                window_end_s=None if math.isinf(window.end_s) else window.end_s, row_cap=window.cap,
                rate_scale=cfg.rate_scale, trace_offset_s=float(rows.t_s[0]))
    arrival = (rows.t_s - rows.t_s[0]) / cfg.rate_scale
    closed = int(cfg.closed_loop_waiting) if src.generated and cfg.arrival == "closed_loop" else 0
    if closed:
        meta["closed_loop_waiting"] = closed
    return Workload(cfg.name, arrival, rows.prompt, rows.output, source=source, meta=meta,
                    closed_loop_waiting=closed)


def _synthetic(cfg: WorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _generated(cfg, seed, window, None, meta)


def _trace(cfg: WorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _filter_rows(cfg, read_azure_csv(path, window), row_cap(cfg.max_requests, cfg.train_fraction))


def _mooncake(cfg: WorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _filter_rows(cfg, read_mooncake(path, window), row_cap(cfg.max_requests, cfg.train_fraction))


def _lengths(cfg: WorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _generated(cfg, seed, window, read_lengths_table(path), meta)


SOURCES.register("synthetic", Source(False, True, _synthetic),
                 help="embedded lognormal lengths and an arrival process (no file)")
SOURCES.register("trace", Source(True, False, _trace), help="Azure-format CSV (TIMESTAMP, ContextTokens, "
                 "GeneratedTokens)")
SOURCES.register("mooncake", Source(True, False, _mooncake),
                 help="Mooncake jsonl (timestamp, input_length, output_length, hash_ids)")
SOURCES.register("lengths", Source(True, True, _lengths),
                 help="a table of prompt/output lengths, resampled, with an arrival process")
