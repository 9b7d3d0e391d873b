"""``load_workload``: a workload config (one per kind, framework.workloads.config) -> a Workload
(source -> window -> rate_scale -> re-base); ``SOURCES``: the kinds, each registered by ``register_source``.

The train split and the max_requests truncation are the runner's (framework.workload.split_train, then
the first max_requests). When max_requests is set, every source keeps only the window's first
``row_cap(max_requests, train_fraction)`` rows, enough for the runner to simulate max_requests after its
split; for the 2024 week-long files this is what makes a short run read a few megabytes, not a gigabyte.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np

from framework.errors import ConfigError, TraceFormatError
from framework.registry import Registry
from framework.workload import Workload
from framework.workloads import presets
from framework.workloads.arrivals import arrival_times
from framework.workloads.azure import read_azure_csv
from framework.workloads.config import (ArrivalFields, FileFields, LengthsWorkloadConfig, MooncakeWorkloadConfig,
                                        SyntheticWorkloadConfig, TraceWorkloadConfig, WorkloadConfig)
from framework.workloads.lengths import read_lengths_keyed, sample_rows
from framework.workloads.mooncake import read_mooncake
from framework.workloads.repeats import repeat_prompts
from framework.workloads.synthetic import synthetic_lengths
from framework.workloads.window import Rows, Window, row_cap, select

@dataclass(frozen=True)
class Source:
    """One ``workload.kind``: its typed config and how it gets rows.

    ``read(cfg, seed, window, meta, path)`` returns the rows in the window (path is None for sources
    that read no file). Whether it reads a file or draws arrivals follows from its config's fields.
    """

    config: type[WorkloadConfig]
    read: Callable[[Any, int, Window, dict, Path | None], Rows]

    @property
    def reads_file(self) -> bool:
        return issubclass(self.config, FileFields)

    @property
    def generated(self) -> bool:
        """Draws arrival times (workload.arrival, rate_rps, ...) and uses num_requests and the seed."""
        return issubclass(self.config, ArrivalFields)


# group: each kind's config is stored in Hydra's ConfigStore as schema/workload/KIND, which the presets
# in conf/workload/ extend (outside the selectable groups, so the schemas are not options themselves)
SOURCES: Registry[Source] = Registry("workload source", "Or choose a preset with workload=NAME.",
                                     group="schema/workload", key="workload.kind")


def register_source(kind: str, config: type[WorkloadConfig], read: Callable[..., Rows], help: str) -> None:
    """The one place a workload format is added: its kind, typed config and reader."""
    if config.kind_name() != kind:
        raise ValueError(f"config {config.__name__} has kind {config.kind_name()!r}, registered as {kind!r}")
    SOURCES.register(kind, Source(config, read), config=config, help=help)


def resolve_path(cfg: FileFields) -> tuple[Path, dict]:
    """The file a file-based workload reads: workload.path (hash-checked if sha256 given), else the preset."""
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if cfg.sha256 and path.is_file():
            presets.verify_sha256(path, cfg.sha256, "Check workload.path or workload.sha256.")
        return path, {"sha256": cfg.sha256}
    assert cfg.preset is not None
    return presets.resolve(cfg.preset, cfg.sha256)


def _generated(cfg: ArrivalFields, seed: int, window: Window,
               lengths: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None, meta: dict) -> Rows:
    """Lengths (drawn or resampled) plus a synthetic arrival process, both from ``seed``.

    Lengths and arrivals use independent child streams, so changing the arrival process or rate keeps
    the same requests (controlled comparisons).
    """
    len_rng, arr_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    n = cfg.num_requests
    key = None
    if lengths is None:
        p, o = _filtered_synthetic(cfg, n, len_rng)
    else:
        p, o, key = lengths
        keep = output_filter(cfg, o)
        if keep is not None:
            p, o = p[keep], o[keep]
            key = None if key is None else key[keep]
            if len(p) == 0:
                raise ConfigError(f"no row of the lengths table has an output within workload.min_output_"
                                  f"tokens={cfg.min_output_tokens} .. max_output_tokens={cfg.max_output_tokens}.")
            meta["rows_after_output_filter"] = int(len(p))
        idx = sample_rows(len(p), n, len_rng)
        p, o = p[idx], o[idx]
        key = None if key is None else key[idx]
    if cfg.repeat_share > 0:  # SYNTHETIC repeated prompts (framework/workloads/repeats.py), own stream
        rep_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
        p, o, key = repeat_prompts(p, o, cfg.repeat_share, cfg.repeat_templates, cfg.repeat_output_spread, rep_rng)
        meta.update(prompt_keys=f"synthetic repeats (share {cfg.repeat_share:g}, {cfg.repeat_templates} "
                                f"templates, output spread {cfg.repeat_output_spread:g})")
    t = arrival_times(cfg.arrival, n, cfg.rate_rps, arr_rng, burst_cv=cfg.burst_cv,
                      period_s=cfg.rate_period_s, amplitude=cfg.rate_amplitude)
    meta.update(arrival=cfg.arrival, rate_rps=cfg.rate_rps, num_requests=n, seed=seed)
    if cfg.arrival == "gamma":
        meta["burst_cv"] = cfg.burst_cv
    if cfg.arrival == "varying":
        meta.update(rate_period_s=cfg.rate_period_s, rate_amplitude=cfg.rate_amplitude)
    # the window counts from the start of the process (t = 0), not from the first arrival
    return select(t, p, o, window, meta, "generated arrivals", origin=0.0, key=key)


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


def _filtered_synthetic(cfg: ArrivalFields, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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
    return Rows(t, p, o, rows.meta, None if rows.key is None else rows.key[keep][:cap])


def workload_seed(cfg: WorkloadConfig, run_seed: int) -> int:
    """The seed that draws a generated kind's requests: workload.seed if set, else the run's."""
    own = cfg.seed if isinstance(cfg, ArrivalFields) else None
    return int(own) if own is not None else int(run_seed)


def load_workload(cfg: WorkloadConfig, seed: int) -> Workload:
    """The requests ``cfg`` describes: source rows in the window, times / rate_scale, re-based to 0."""
    cfg.validate()
    seed = workload_seed(cfg, seed)
    end = cfg.start_s + cfg.duration_s if cfg.duration_s is not None else math.inf
    cap = row_cap(cfg.max_requests, cfg.train_fraction)
    filtered = cfg.min_output_tokens is not None or cfg.max_output_tokens is not None
    src = SOURCES.get(cfg.kind)
    # a file source reads its whole window when filtering, so the cap counts requests that pass the filter
    window = Window(float(cfg.start_s), float(end), None if filtered and src.reads_file else cap)
    meta: dict = {"kind": cfg.kind, "preset": getattr(cfg, "preset", None),
                  "min_output_tokens": cfg.min_output_tokens, "max_output_tokens": cfg.max_output_tokens}
    path = None
    if src.reads_file:
        assert isinstance(cfg, FileFields)
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
    meta.setdefault("prompt_keys", "none" if rows.key is None else "hash column")
    closed = int(cfg.closed_loop_waiting) if getattr(cfg, "arrival", None) == "closed_loop" else 0
    if closed:
        meta["closed_loop_waiting"] = closed
    return Workload(cfg.name, arrival, rows.prompt, rows.output, source=source, meta=meta, prompt_key=rows.key,
                    closed_loop_waiting=closed)


def _synthetic(cfg: SyntheticWorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _generated(cfg, seed, window, None, meta)


def _trace(cfg: TraceWorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _filter_rows(cfg, read_azure_csv(path, window, key_column=cfg.prompt_key_column), row_cap(cfg.max_requests, cfg.train_fraction))


def _mooncake(cfg: MooncakeWorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _filter_rows(cfg, read_mooncake(path, window), row_cap(cfg.max_requests, cfg.train_fraction))


def _lengths(cfg: LengthsWorkloadConfig, seed: int, window: Window, meta: dict, path: Path | None) -> Rows:
    return _generated(cfg, seed, window, read_lengths_keyed(path, key_column=cfg.prompt_key_column), meta)


register_source("synthetic", SyntheticWorkloadConfig, _synthetic,
                "embedded lognormal lengths and an arrival process (no file)")
register_source("trace", TraceWorkloadConfig, _trace, "Azure-format CSV (TIMESTAMP, ContextTokens, GeneratedTokens)")
register_source("mooncake", MooncakeWorkloadConfig, _mooncake,
                "Mooncake jsonl (timestamp, input_length, output_length, hash_ids)")
register_source("lengths", LengthsWorkloadConfig, _lengths,
                "a table of prompt/output lengths, resampled, with an arrival process")
