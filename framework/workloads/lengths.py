"""Lengths-only tables (e.g. ShareGPT token counts): read, validate, and resample rows.

Accepted column names (case-insensitive): prompt = num_prefill_tokens | ContextTokens | input_length |
prompt_tokens | input_tokens | prompt_len; output = num_decode_tokens | GeneratedTokens | output_length |
output_tokens | output_len; optional prompt hash = prompt_hash | hash | hash_ids | prompt_key (its rows
get prompt keys, framework.workloads.keys, which follow a row when it is resampled). Other columns are
ignored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from framework.errors import TraceFormatError
from framework.workloads.csvio import (DEFAULT_BLOCK_BYTES, match_columns, positive_ints, read_header,
                                       require_file, stream_columns)
from framework.workloads.keys import hash_column, keys_of_strings

COLUMNS = {
    "prompt lengths": ("num_prefill_tokens", "ContextTokens", "input_length", "prompt_tokens",
                       "input_tokens", "prompt_len"),
    "output lengths": ("num_decode_tokens", "GeneratedTokens", "output_length", "output_tokens",
                       "output_len"),
}


def read_lengths_table(path: str | Path, *, block_size: int = DEFAULT_BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """All (prompt, output) rows of the table, each validated (>= 1 token, whole numbers)."""
    p, o, _ = read_lengths_keyed(path, block_size=block_size)
    return p, o


def read_lengths_keyed(path: str | Path, *, block_size: int = DEFAULT_BLOCK_BYTES, key_column: str | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(prompt, output, prompt keys or None when the table has no hash column)."""
    path = require_file(path, "lengths table")
    header = read_header(path)
    cols = match_columns(header, COLUMNS, path)
    cp, co = cols["prompt lengths"], cols["output lengths"]
    ck = hash_column(header, key_column, repr(str(path)))
    ps, os_, ks = [], [], []
    for off, chunk in stream_columns(path, header, [cp, co] + ([ck] if ck else []), block_size):
        ps.append(positive_ints(chunk[cp], cp, path, off))
        os_.append(positive_ints(chunk[co], co, path, off))
        if ck:
            ks.append(keys_of_strings(chunk[ck].to_numpy(zero_copy_only=False)))
    p = np.concatenate(ps) if ps else np.empty(0, np.int64)
    o = np.concatenate(os_) if os_ else np.empty(0, np.int64)
    if len(p) == 0:
        raise TraceFormatError(f"lengths table {str(path)!r} has a header but no rows; fetch the file again.")
    return p, o, (np.concatenate(ks) if ck else None)


def sample_rows(n_rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of ``n`` requests: successive random permutations of the table, concatenated.

    Sampling without replacement (until the table is used up) keeps the empirical distribution exactly
    when n <= rows and uses every row at most ceil(n / rows) times otherwise.
    """
    reps = -(-n // n_rows)
    return np.concatenate([rng.permutation(n_rows) for _ in range(reps)])[:n]
