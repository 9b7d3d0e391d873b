"""Reader for Mooncake traces (jsonl): one JSON object per line with ``timestamp`` (milliseconds),
``input_length``, ``output_length`` and ``hash_ids`` (prefix-cache block ids).

hash_ids (prefix-cache block ids) are optional. When every line has them, each request gets a prompt
key, a stable hash of its whole hash_ids list (framework.workloads.keys), so requests with the same prompt
share a key (the ExactMatch predictor keys on it); the DP model itself has no prefix cache.
The published files are small (tens of thousands of lines), so the whole file is read and the common
window rule (framework.workloads.window.select) applied; unsorted timestamps are sorted stably and noted.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from framework.errors import TraceFormatError
from framework.workloads.csvio import require_file
from framework.workloads.keys import key_of_ids, keys_of_strings
from framework.workloads.window import Rows, Window, select

FIELDS = ("timestamp", "input_length", "output_length")


def _number(rec: dict, key: str, path: Path, line: int, *, integer: bool) -> float:
    if key not in rec:
        raise TraceFormatError(f"line {line} of {str(path)!r} has no field {key!r}; its fields are: "
                               f"{', '.join(repr(k) for k in rec)}. Mooncake lines need "
                               f"{', '.join(FIELDS)}.")
    v = rec[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and integer:
        ok = float(v).is_integer()
    if not ok:
        kind = "a whole number" if integer else "a number (milliseconds)"
        raise TraceFormatError(f"line {line} of {str(path)!r}: {key} is {v!r}, not {kind}; fix or delete that line.")
    if integer and v < 1:
        raise TraceFormatError(f"line {line} of {str(path)!r}: {key} is {v}; every request needs at least "
                               "1 token. Fix or delete that line (rows are never dropped silently).")
    return v


def _hash_ids(rec: dict, path: Path, line: int, prompt: int) -> str | None:
    """The canonical text of the line's prompt: its length and hash_ids (None without hash_ids).

    The length is part of it because the ids hash whole cache blocks: two prompts with the same blocks
    may differ in the partial block at the end (and an empty list says nothing).
    """
    ids = rec.get("hash_ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise TraceFormatError(f"line {line} of {str(path)!r}: hash_ids is {str(ids)[:60]!r}, not a list "
                               "of integers; fix or delete the field.")
    return f"{prompt}:{key_of_ids(ids)}"


def read_mooncake(path: str | Path, window: Window = Window()) -> Rows:
    """Rows of a Mooncake jsonl trace inside ``window`` (t in seconds since the earliest timestamp)."""
    path = require_file(path, "mooncake trace")
    ts: list[float] = []
    ps: list[int] = []
    os_: list[int] = []
    hs: list[str | None] = []
    with open(path, "r", encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(f"line {line} of {str(path)!r} is not valid JSON ({exc.msg}); each "
                                       "line must be one JSON object.") from None
            if not isinstance(rec, dict):
                raise TraceFormatError(f"line {line} of {str(path)!r} is not a JSON object.")
            ts.append(_number(rec, "timestamp", path, line, integer=False))
            ps.append(int(_number(rec, "input_length", path, line, integer=True)))
            os_.append(int(_number(rec, "output_length", path, line, integer=True)))
            hs.append(_hash_ids(rec, path, line, ps[-1]))
    if not ts:
        raise TraceFormatError(f"mooncake trace {str(path)!r} has no records (only blank lines).")
    t = np.asarray(ts, dtype=np.float64) / 1000.0
    meta = {"path": str(path), "rows_read": len(ts)}
    have = sum(h is not None for h in hs)
    key = None
    if have == len(hs):
        key = keys_of_strings(hs)
        meta["prompt_keys"] = "hash_ids"
    elif have:  # a key on some requests only would make "unknown" depend on the line: say so, keep none
        meta["prompt_keys"] = f"none (hash_ids on {have} of {len(hs)} lines)"
    rows = select(t, np.asarray(ps, np.int64), np.asarray(os_, np.int64), window, meta, str(path), key=key)
    rows.meta["rows_in_window"] = len(rows)
    return rows
