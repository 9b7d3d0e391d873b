"""Reader for the Azure LLM inference traces (2023 and 2024 formats), streamed in chunks.

Both formats have the columns TIMESTAMP, ContextTokens, GeneratedTokens; a file may add a prompt-hash
column (prompt_hash, hash, hash_ids or prompt_key; framework.workloads.keys), read as the prompt key. 2023 timestamps are naive with 7
fractional digits; 2024 ones carry a ``+00:00`` offset and a varying number of fractional digits, and the
2024 week-long files hold 16-27 million rows (0.7-1.1 GB). The file is read in byte chunks (pyarrow's
streaming CSV reader), timestamps are parsed vectorised by Arrow's ISO-8601 parser, and reading stops as
soon as the window (or the row cap) is complete, so memory is bounded by the window, not the file.

Sortedness: the published traces are sorted. If rows go back in time before reading stops, the reader
switches to two full passes (earliest timestamp, then the window's rows), sorts the kept rows stably and
records ``sorted_by_loader=True`` in the meta; rows after the point where reading stopped are not
inspected.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from framework.errors import TraceFormatError
from framework.workloads.csvio import (DEFAULT_BLOCK_BYTES, cast_prefix, match_columns, physical_line,
                                       positive_ints, read_header, require_file, stream_columns)
from framework.workloads.keys import hash_column, keys_of_strings
from framework.workloads.window import Rows, Window

log = logging.getLogger("balanceroute.workloads")

COLUMNS = {"timestamps": ("TIMESTAMP",), "prompt lengths": ("ContextTokens",),
           "output lengths": ("GeneratedTokens",)}
_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
_NAIVE = pa.timestamp("ns")
_AWARE = pa.timestamp("ns", tz="UTC")
_EXAMPLES = "'2023-11-16 18:15:46.6805900' (2023) or '2024-05-10 00:00:00.009391+00:00' (2024)"


class _Unsorted(Exception):
    """Internal: timestamps went back in time at data row ``row`` before reading could stop."""

    def __init__(self, row: int) -> None:
        super().__init__(row)
        self.row = row


def _timestamp_type(first: str) -> pa.DataType:
    """UTC-aware if the first timestamp has an offset (2024 format), naive otherwise (2023)."""
    return _AWARE if _OFFSET.search(first.strip()) else _NAIVE


def _timestamps_ns(arr: pa.Array, typ: pa.DataType) -> tuple[np.ndarray, int | None]:
    """Nanoseconds since the epoch (UTC for offset timestamps) of the longest parsable prefix."""
    good, bad = cast_prefix(arr, typ)
    return good.cast(pa.int64()).to_numpy(zero_copy_only=False), bad


def _bad_timestamp(path: Path, arr: pa.Array, index: int, row_offset: int, typ: pa.DataType) -> TraceFormatError:
    raw = arr[index].as_py()
    line = physical_line(path, row_offset + index)
    has_offset = bool(_OFFSET.search(str(raw).strip()))
    if typ == _AWARE and not has_offset:
        why = "has no UTC offset while the file's first timestamp has one; use one format throughout"
    elif typ == _NAIVE and has_offset:
        why = "has a UTC offset while the file's first timestamp has none; use one format throughout"
    else:
        why = f"is not a timestamp like {_EXAMPLES}"
    return TraceFormatError(f"line {line} of {str(path)!r}: TIMESTAMP {raw!r} {why}. Fix or delete that line.")


def read_azure_csv(path: str | Path, window: Window = Window(), *,
                   block_size: int = DEFAULT_BLOCK_BYTES, key_column: str | None = None) -> Rows:
    """Rows of an Azure trace inside ``window`` (t in seconds since the file's first timestamp)."""
    path = require_file(path, "trace")
    header = read_header(path)
    cols = match_columns(header, COLUMNS, path)
    key_col = hash_column(header, key_column, repr(str(path)))
    if key_col is not None:
        cols["prompt keys"] = key_col
    try:
        return _read_sorted(path, header, cols, window, block_size)
    except _Unsorted as u:
        return _read_unsorted(path, header, cols, window, block_size, u.row)


def _read_sorted(path: Path, header: list[str], cols: dict[str, str], window: Window,
                 block_size: int) -> Rows:
    """One streaming pass that stops once the window or the cap is complete."""
    meta: dict = {}
    parts = list(iter_sorted(path, header, cols, window, block_size, meta))
    t, p, o = (_cat([c[i] for c in parts], dt) for i, dt in enumerate((np.float64, np.int64, np.int64)))
    key = _cat([c[3] for c in parts], np.int64) if cols.get("prompt keys") else None
    return Rows(t, p, o, meta, key)


def iter_sorted(path: Path, header: list[str], cols: dict[str, str], window: Window, block_size: int,
                meta: dict) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """The window's rows as (t_s, prompt, output, prompt key or None) per chunk read; ``meta`` is
    filled when it ends.

    Raises _Unsorted at the first row that goes back in time before reading could stop (the rows
    yielded before it are sorted; a caller that cannot take them back must fail, see stream.py).
    """
    c_ts, c_p, c_o = cols["timestamps"], cols["prompt lengths"], cols["output lengths"]
    c_k = cols.get("prompt keys")
    typ: pa.DataType | None = None
    t0: int | None = None
    prev: int | None = None
    n_kept, rows_read, last_rel, stopped = 0, 0, 0.0, False
    for off, chunk in stream_columns(path, header, [c_ts, c_p, c_o] + ([c_k] if c_k else []), block_size):
        ts = chunk[c_ts]
        if len(ts) == 0:
            continue
        if typ is None:
            typ = _timestamp_type(str(ts[0].as_py()))
        ns, bad = _timestamps_ns(ts, typ)
        if t0 is None and len(ns):
            t0 = int(ns[0])
        # first row that goes back in time (against the previous chunk too)
        back = np.flatnonzero(np.diff(ns) < 0) + 1
        dec = int(back[0]) if len(back) else None
        if prev is not None and len(ns) and ns[0] < prev:
            dec = 0
        limit = dec if dec is not None else len(ns)
        rel = (ns[:limit] - (t0 or 0)) / 1e9
        i_lo = int(np.searchsorted(rel, window.start_s, side="left"))
        i_hi = int(np.searchsorted(rel, window.end_s, side="left"))
        stop = i_hi < limit
        if window.cap is not None and n_kept + (i_hi - i_lo) >= window.cap:
            i_hi = i_lo + (window.cap - n_kept)
            stop = True
        upto = i_hi if stop else limit
        if not stop:
            if dec is not None:
                raise _Unsorted(off + dec)
            if bad is not None:
                raise _bad_timestamp(path, ts, bad, off, typ)
        p = positive_ints(chunk[c_p].slice(0, upto), c_p, path, off)
        o = positive_ints(chunk[c_o].slice(0, upto), c_o, path, off)
        if i_hi > i_lo:
            yield (rel[i_lo:i_hi], p[i_lo:i_hi], o[i_lo:i_hi],
                   _keys(chunk[c_k].slice(i_lo, i_hi - i_lo)) if c_k else None)
            n_kept += i_hi - i_lo
        rows_read = off + upto
        if upto:
            last_rel = float(rel[upto - 1])
            prev = int(ns[upto - 1])
        if stop:
            stopped = True
            break
    if t0 is None:
        raise TraceFormatError(f"trace file {str(path)!r} has a header but no data rows; fetch the file again.")
    meta.update(_meta(path, typ, t0, rows_read, n_kept, stopped, last_rel, sorted_by_loader=False))


def _read_unsorted(path: Path, header: list[str], cols: dict[str, str], window: Window, block_size: int,
                   first_unsorted: int) -> Rows:
    """Two full passes (earliest timestamp, then the window's rows), then a stable sort by time."""
    c_ts, c_p, c_o = cols["timestamps"], cols["prompt lengths"], cols["output lengths"]
    line = physical_line(path, first_unsorted)
    log.warning("%s: timestamps go back in time at line %d; reading the whole file and sorting stably.",
                path, line)
    typ: pa.DataType | None = None
    tmin: int | None = None
    for off, chunk in stream_columns(path, header, [c_ts], block_size):
        ts = chunk[c_ts]
        if len(ts) == 0:
            continue
        typ = typ or _timestamp_type(str(ts[0].as_py()))
        ns, bad = _timestamps_ns(ts, typ)
        if bad is not None:
            raise _bad_timestamp(path, ts, bad, off, typ)
        m = int(ns.min())
        tmin = m if tmin is None else min(tmin, m)
    assert typ is not None and tmin is not None  # the sorted pass saw rows
    c_k = cols.get("prompt keys")
    kept_t, kept_p, kept_o, kept_k = [], [], [], []
    rows_read, span = 0, 0.0
    for off, chunk in stream_columns(path, header, [c_ts, c_p, c_o] + ([c_k] if c_k else []), block_size):
        if len(chunk[c_ts]) == 0:
            continue
        ns, _ = _timestamps_ns(chunk[c_ts], typ)
        rel = (ns - tmin) / 1e9
        p = positive_ints(chunk[c_p], c_p, path, off)
        o = positive_ints(chunk[c_o], c_o, path, off)
        keep = (rel >= window.start_s) & (rel < window.end_s)
        kept_t.append(rel[keep])
        kept_p.append(p[keep])
        kept_o.append(o[keep])
        if c_k:
            kept_k.append(_keys(chunk[c_k])[keep])
        rows_read = off + len(ns)
        span = max(span, float(rel.max()))
    t, p, o = _cat(kept_t, np.float64), _cat(kept_p, np.int64), _cat(kept_o, np.int64)
    order = np.argsort(t, kind="stable")
    if window.cap is not None:
        order = order[: window.cap]
    meta = _meta(path, typ, tmin, rows_read, len(order), False, span, sorted_by_loader=True)
    meta["first_unsorted_line"] = line
    key = _cat(kept_k, np.int64)[order] if c_k else None
    return Rows(t[order], p[order], o[order], meta, key)


def _keys(arr: pa.Array) -> np.ndarray:
    """Prompt keys of a hash column's values (strings as read)."""
    return keys_of_strings(arr.to_numpy(zero_copy_only=False))


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


def _meta(path: Path, typ: pa.DataType | None, t0: int, rows_read: int, kept: int, stopped: bool,
          span: float, *, sorted_by_loader: bool) -> dict:
    return {
        "path": str(path),
        "timestamp_format": "utc_offset" if typ == _AWARE else "naive",
        "first_timestamp": str(np.datetime64(t0, "ns")),
        "rows_read": int(rows_read),
        "rows_in_window": int(kept),
        "stopped_early": bool(stopped),
        "span_read_s": float(span),
        "sorted_by_loader": sorted_by_loader,
    }
