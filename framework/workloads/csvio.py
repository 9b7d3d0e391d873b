"""Streaming CSV helpers shared by the trace readers: header checks, chunked string columns, and casts
that name the offending line.

Columns are read as strings and cast per chunk, because a failed typed read in pyarrow does not say which
row was bad; on failure a bisection over the chunk finds the first bad row (error path only), so a clean
file pays one vectorised cast per column and chunk.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from framework.errors import TraceFormatError

DEFAULT_BLOCK_BYTES = 1 << 20  # ~25k Azure rows per chunk: measured fastest for full and early-stopping reads


def require_file(path: str | Path, what: str = "trace", option: str = "workload.path") -> Path:
    """The path as a Path, or a TraceFormatError if it is missing, a folder, or empty.

    ``option`` is how the user gave the path (a config key or a command-line flag), named in the fix.
    """
    p = Path(path).expanduser()
    if not p.exists():
        hint = (" (or set BALANCEROUTE_DATA to the folder holding the preset's file)"
                if option == "workload.path" else "")
        raise TraceFormatError(f"{what} file {str(p)!r} does not exist: check {option}{hint}.")
    if not p.is_file():
        raise TraceFormatError(f"{what} path {str(p)!r} is not a file: point {option} at the file itself.")
    if p.stat().st_size == 0:
        raise TraceFormatError(f"{what} file {str(p)!r} is empty (0 bytes): the download or copy was "
                               "probably interrupted; fetch the file again.")
    return p


def read_header(path: Path) -> list[str]:
    """Column names from the first line (BOM and surrounding spaces stripped)."""
    with open(path, "r", encoding="utf-8-sig", errors="replace", newline="") as f:
        first = f.readline()
    if not first.strip():
        raise TraceFormatError(f"file {str(path)!r} has an empty first line; the first line must be the "
                               "CSV header (e.g. TIMESTAMP,ContextTokens,GeneratedTokens).")
    return [c.strip() for c in next(csv.reader(io.StringIO(first)))]


def match_columns(header: Sequence[str], wanted: Mapping[str, Sequence[str]], path: Path) -> dict[str, str]:
    """Map each role to the header's column, trying the role's accepted names case-insensitively."""
    lower = {c.lower(): c for c in header}
    found: dict[str, str] = {}
    for role, names in wanted.items():
        hit = next((lower[n.lower()] for n in names if n.lower() in lower), None)
        if hit is None:
            alts = " or ".join(repr(n) for n in names)
            raise TraceFormatError(f"file {str(path)!r} has no column {alts} (needed for the {role}); its "
                                   f"columns are: {', '.join(repr(c) for c in header)}. Rename the column "
                                   "or check that this is the right kind of file (workload.kind).")
        found[role] = hit
    return found


def physical_line(path: Path, data_index: int) -> int:
    """1-based line number in the file of data row ``data_index`` (0-based, header excluded).

    Error path only: pyarrow skips blank lines, so the line is counted rather than assumed to be
    data_index + 2.
    """
    seen = -1  # the header is row -1
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip(b"\r\n"):  # pyarrow skips only truly empty lines
                if seen == data_index:
                    return lineno
                seen += 1
    return data_index + 2


def _first_bad_line(path: Path, ncols: int) -> tuple[int, str] | None:
    """The first non-blank line whose field count differs from the header's (error path only)."""
    with open(path, "r", encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            if row and len(row) != ncols:  # csv gives [] for an empty line, which pyarrow skips
                return reader.line_num, ",".join(row)
    return None


def stream_columns(path: Path, header: Sequence[str], columns: Sequence[str],
                   block_size: int = DEFAULT_BLOCK_BYTES) -> Iterator[tuple[int, dict[str, pa.Array]]]:
    """Yield (index of the chunk's first data row, {column: string array}) chunk by chunk."""
    opts_read = pacsv.ReadOptions(block_size=max(int(block_size), 1), use_threads=True)
    opts_conv = pacsv.ConvertOptions(include_columns=list(columns), strings_can_be_null=False,
                                     column_types={c: pa.string() for c in columns})
    try:
        reader = pacsv.open_csv(path, read_options=opts_read, convert_options=opts_conv)
        offset = 0
        for batch in reader:
            yield offset, {c: batch.column(c) for c in columns}
            offset += batch.num_rows
    except pa.ArrowInvalid as exc:
        bad = _first_bad_line(path, len(header))
        if bad is not None:
            line, text = bad
            raise TraceFormatError(f"line {line} of {str(path)!r} does not have the header's "
                                   f"{len(header)} fields ({text[:80]!r}); fix or delete that line.") from None
        if "straddling" in str(exc) or "block" in str(exc):
            raise TraceFormatError(f"could not parse {str(path)!r} with chunks of {block_size} bytes: a row "
                                   f"is longer than a chunk ({exc}); raise the chunk size.") from None
        raise TraceFormatError(f"could not parse {str(path)!r} as CSV: {exc}") from None


def cast_prefix(arr: pa.Array, typ: pa.DataType) -> tuple[pa.Array, int | None]:
    """Cast ``arr``; on failure cast the longest good prefix and return the first bad index too."""
    try:
        return pc.cast(arr, typ), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    lo, hi = 0, len(arr)  # invariant: arr[:lo] casts, arr[:hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(arr.slice(0, mid), typ)
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
    return pc.cast(arr.slice(0, hi - 1), typ), hi - 1


def positive_ints(arr: pa.Array, column: str, path: Path, row_offset: int) -> np.ndarray:
    """Token counts as int64, or a TraceFormatError naming the first non-integer or < 1 value's line."""
    good, bad = cast_prefix(arr, pa.int64())
    if bad is not None:
        raw = arr[bad].as_py()
        line = physical_line(path, row_offset + bad)
        raise TraceFormatError(f"line {line} of {str(path)!r}: {column} is {raw!r}, not a whole number of "
                               "tokens; fix or delete that line.")
    out = good.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    small = np.flatnonzero(out < 1)
    if len(small):
        i = int(small[0])
        line = physical_line(path, row_offset + i)
        raise TraceFormatError(f"line {line} of {str(path)!r}: {column} is {int(out[i])}; every request "
                               "needs at least 1 token. Fix or delete that line (rows are never dropped "
                               "silently).")
    return out
