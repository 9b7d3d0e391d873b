"""Streamed trace workloads: an Azure-format file fed to the simulator chunk by chunk (``stream=``).

A week-long 2024 file has 16-27 M rows; read whole it is ~0.7 GB of arrays before the simulator copies
them. Streamed, the simulator holds a window of a few hundred thousand requests (framework.simwindow)
and the reader one chunk ahead. The requests are those the in-memory path gives, to the bit: the same
window and row cap, output filter, ``rate_scale`` and re-basing arithmetic, and the same train split,
which for ``train_fraction > 0`` costs one extra pass over the file to count the window's rows.

stream=auto streams a ``trace`` workload whose file is at least STREAM_MIN_BYTES and that sets no
``max_requests``; stream=true streams any trace workload; stream=false never streams. A streamed file
must be sorted (the in-memory path sorts an unsorted one; a stream cannot take back what it fed).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from framework.workloads.config import WorkloadConfig
from framework.errors import ConfigError, TraceFormatError
from framework.workload import Chunk, Workload, WorkloadStream
from framework.workloads.azure import COLUMNS, _Unsorted, iter_sorted
from framework.workloads.csvio import DEFAULT_BLOCK_BYTES, match_columns, physical_line, read_header, require_file
from framework.workloads.keys import hash_column
from framework.workloads.window import Window, row_cap

STREAM_MIN_BYTES = 64 << 20
CHUNK_ROWS = 1 << 18  # requests per chunk handed to the simulator
MODES = ("auto", "true", "false")


def should_stream(cfg: WorkloadConfig, stream: str | bool) -> bool:
    """Whether ``cfg`` is read as a stream under ``stream`` (auto | true | false, see the docstring)."""
    mode = {True: "true", False: "false"}.get(stream, str(stream).lower())  # type: ignore[arg-type]
    if mode not in MODES:
        raise ConfigError(f"stream={stream!r} is not a choice; use auto, true or false.")
    if mode == "false":
        return False
    if cfg.kind != "trace":
        if mode == "true":
            raise ConfigError(f"stream=true reads an Azure-format trace file chunk by chunk; workload.kind="
                              f"{cfg.kind} is built in memory. Use stream=auto or a trace workload.")
        return False
    if mode == "true":
        return True
    if cfg.max_requests is not None:
        return False
    from framework.workloads.loader import resolve_path

    path, _ = resolve_path(cfg)
    return path.is_file() and path.stat().st_size >= STREAM_MIN_BYTES


def open_stream(cfg: WorkloadConfig, chunk_rows: int = CHUNK_ROWS,
                block_size: int = DEFAULT_BLOCK_BYTES) -> tuple[Workload | None, WorkloadStream]:
    """The training head (in memory) and the simulated rest (a stream) of a trace workload."""
    from framework.workloads.loader import output_filter, resolve_path

    cfg.validate()
    path, found = resolve_path(cfg)
    path = require_file(path, "trace")
    header = read_header(path)
    cols = match_columns(header, COLUMNS, path)
    key_col = hash_column(header, cfg.prompt_key_column, repr(str(path)))
    if key_col is not None:
        cols["prompt keys"] = key_col
    end = cfg.start_s + cfg.duration_s if cfg.duration_s is not None else math.inf
    cap = row_cap(cfg.max_requests, cfg.train_fraction)
    filtered = cfg.min_output_tokens is not None or cfg.max_output_tokens is not None
    window = Window(float(cfg.start_s), float(end), None if filtered else cap)
    meta: dict = {"kind": cfg.kind, "preset": cfg.preset, "streamed": True,
                  "prompt_keys": "none" if key_col is None else "hash column", **found}
    Part = tuple[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]

    def cut(part: Part, sl: slice) -> Part:
        return tuple(None if x is None else x[sl] for x in part)  # type: ignore[return-value]

    def rows() -> Iterator[Part]:
        """The window's rows after the output filter and the row cap, in file order."""
        kept = 0
        it = iter_sorted(path, header, cols, window, block_size, meta)
        try:
            for part in it:
                keep = output_filter(cfg, part[2])
                if keep is not None:
                    part = cut(part, keep)
                if cap is not None and filtered:
                    part = cut(part, slice(0, cap - kept))
                kept += len(part[0])
                if len(part[0]):
                    yield part
                if cap is not None and filtered and kept >= cap:
                    return
        except _Unsorted as u:
            raise TraceFormatError(
                f"line {physical_line(path, u.row)} of {str(path)!r} goes back in time; a streamed run needs "
                "a sorted file. Sort it by TIMESTAMP, or run with stream=false (read into memory and "
                "sorted).") from None

    n_rows = sum(len(part[0]) for part in rows()) if cfg.train_fraction > 0 else None
    n_train = int(n_rows * cfg.train_fraction) if n_rows is not None else 0
    if n_rows is not None and n_train >= n_rows:
        raise TraceFormatError("workload.train_fraction leaves no request to simulate; lower it.")
    total = None if n_rows is None else n_rows - n_train
    if total is not None and cfg.max_requests is not None:
        total = min(total, cfg.max_requests)

    def simulated(head: list | None) -> Iterator[Part]:
        """Arrivals as the in-memory path computes them: (t - t_first) / rate_scale, re-based by the
        split; the first n_train rows go to ``head`` (when given) instead."""
        t_first, a_first, seen, sent = None, None, 0, 0
        for t, p, o, k in rows():
            if t_first is None:
                t_first = t[0]
            part: Part = ((t - t_first) / cfg.rate_scale, p, o, k)
            if seen < n_train:
                m = min(n_train - seen, len(t))
                if head is not None:
                    head.append(cut(part, slice(0, m)))
                part = cut(part, slice(m, None))
                seen += m
                if not len(part[0]):
                    continue
            if n_train:
                a_first = part[0][0] if a_first is None else a_first
                part = (part[0] - a_first, *part[1:])
            if cfg.max_requests is not None:
                part = cut(part, slice(0, cfg.max_requests - sent))
            sent += len(part[0])
            yield part
            if cfg.max_requests is not None and sent >= cfg.max_requests:
                return

    train = None
    if n_train:  # the head is history for classifiers, read now; the simulated rows stream in each pass
        head: list = []
        next(simulated(head))
        t, p, o, k = _cat(head)
        train = Workload(cfg.name + ":train", t, p, o, str(path), dict(meta), k)
    return train, WorkloadStream(cfg.name, lambda: _rechunk(simulated(None), chunk_rows), source=str(path),
                                 meta=meta, total=total)


def _cat(parts: list) -> tuple:
    return tuple(None if parts[0][i] is None else np.concatenate([x[i] for x in parts]) for i in range(4))


def _rechunk(parts: Iterator[tuple], rows: int) -> Iterator[Chunk]:
    """Gather the reader's ~25k-row blocks into chunks of about ``rows`` requests."""
    buf: list[tuple] = []
    n = 0
    for part in parts:
        buf.append(part)
        n += len(part[0])
        if n >= rows:
            yield Chunk(*_cat(buf))
            buf, n = [], 0
    if buf:
        yield Chunk(*_cat(buf))
