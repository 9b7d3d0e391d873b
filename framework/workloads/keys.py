"""Prompt keys: a stable int64 >= 0 per request, equal for requests with the same prompt.

A key lets a router recognise a repeated prompt (the paper's ExactMatch predictor) without the text.
Sources: Mooncake's ``hash_ids`` (the list of prefix-cache block hashes, which identifies the prompt:
two requests share the whole list only if they share the prompt), or a CSV column of prompt hashes.
The hash is pandas' SipHash with its fixed default key (``pandas.util.hash_array``), so a key is the
same on every machine and run; the top bit is dropped so keys are >= 0 and -1 can mean "unknown".
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

UNKNOWN = -1
# CSV columns read as a prompt hash when present (case-insensitive), in this order of preference
HASH_COLUMNS = ("prompt_hash", "hash", "hash_ids", "prompt_key")


def keys_of_strings(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """Stable keys of strings (equal strings, equal keys)."""
    arr = np.asarray(values, dtype=object)
    if len(arr) == 0:
        return np.empty(0, np.int64)
    return (pd.util.hash_array(arr) >> np.uint64(1)).astype(np.int64)


def key_of_ids(ids: Sequence[int]) -> str:
    """The canonical text of a hash_ids list (hashed by ``keys_of_strings``)."""
    return ",".join(str(int(i)) for i in ids)


def hash_column(header: Sequence[str], wanted: str | None = None, where: str = "") -> str | None:
    """The header's prompt-hash column: ``wanted`` (workload.prompt_key_column; "none": no keys), or
    with None the first of HASH_COLUMNS present (any case), or None when there is none."""
    lower = {c.lower(): c for c in header}
    if wanted is None:
        return next((lower[n] for n in HASH_COLUMNS if n in lower), None)
    if wanted.lower() == "none":
        return None
    if wanted.lower() not in lower:
        from framework.errors import TraceFormatError, did_you_mean

        raise TraceFormatError(f"workload.prompt_key_column={wanted!r}: {where or 'the file'} has no such "
                               "column (null = auto-detect, none = no keys)." + did_you_mean(wanted, list(header)))
    return lower[wanted.lower()]
