"""Generate Azure-2024-schema trace files of any size (the week-long files cannot be fetched here).

    python -m framework.workloads.generate OUT.csv --rows 27300000 [--days 7] [--lengths conv] [--seed 0]

Rows are ``TIMESTAMP,ContextTokens,GeneratedTokens`` exactly as in the published 2024 files: UTC
timestamps with a ``+00:00`` offset and 0-6 fractional digits (trailing zeros dropped, so precision
varies row to row), sorted, starting 2024-05-12 00:00 (the conversation week's first day).

Arrivals: exactly ``rows`` points of a non-homogeneous Poisson process over ``days`` days, i.e. iid
draws from the normalised rate, sorted. The rate has a daily sinusoid (peak at 15:00 UTC, trough at
03:00, peak/trough = (1 + a) / (1 - a) with a = ``diurnal``) and weekend days scaled by ``weekend``.
It has the shape of a production week, not a fit to the real one. Lengths: (prompt, output) pairs drawn
with replacement from a 2023 trace (conv or code) or any lengths table, so their joint distribution is
the shared traces'. Generation streams hour by hour: memory is one hour of rows, whatever the size.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from framework.errors import ConfigError, UserError, report
from framework.results import write_atomic

START = np.datetime64("2024-05-12T00:00:00", "ns")
LENGTHS = {"conv": "AzureLLMInferenceTrace_conv.csv", "code": "AzureLLMInferenceTrace_code.csv"}
HEADER = b"TIMESTAMP,ContextTokens,GeneratedTokens\n"
HOUR = 3600.0


def rate_shape(t_s: np.ndarray, diurnal: float, weekend: float) -> np.ndarray:
    """Relative arrival rate at ``t_s`` seconds after the start (a Sunday, like 2024-05-12)."""
    day = np.floor(t_s / 86400.0)
    weekday = (day + 6) % 7  # 0 = Monday; the start is a Sunday
    daily = 1.0 + diurnal * np.sin(2.0 * math.pi * (t_s / 86400.0 - 9.0 / 24.0))  # peak 15:00, trough 03:00
    return daily * np.where(weekday >= 5, weekend, 1.0)


def hour_weights(hours: int, diurnal: float, weekend: float, grid: int = 60) -> np.ndarray:
    """Share of the arrivals in each hour (the rate integrated on a per-minute grid)."""
    t = (np.arange(hours * grid) + 0.5) * (HOUR / grid)
    w = rate_shape(t, diurnal, weekend).reshape(hours, grid).sum(axis=1)
    return w / w.sum()


def _hour_times(n: int, h: int, span: float, diurnal: float, weekend: float,
                rng: np.random.Generator) -> np.ndarray:
    """``n`` sorted iid draws from the rate on [h hours, + span) (rejection against its maximum)."""
    lo = h * HOUR
    grid = lo + np.linspace(0.0, span, 61)
    peak = float(rate_shape(grid, diurnal, weekend).max()) * 1.0001 + 1e-12  # the rate is smooth in an hour
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        m = int((n - have) * 1.3) + 16
        t = lo + rng.random(m) * span
        keep = t[rng.random(m) * peak < rate_shape(t, diurnal, weekend)]
        out.append(keep)
        have += len(keep)
    return np.sort(np.concatenate(out)[:n])


def _format(t_s: np.ndarray, prompt: np.ndarray, output: np.ndarray) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    ns = START + (np.round(t_s * 1e6).astype(np.int64) * 1000).astype("timedelta64[ns]")
    s = pc.strftime(pa.array(ns.astype("datetime64[us]")), format="%Y-%m-%d %H:%M:%S")
    s = pc.utf8_rtrim(pc.utf8_rtrim(s, characters="0"), characters=".")
    s = pc.binary_join_element_wise(s, pa.scalar("+00:00"), "")
    buf = io.BytesIO()
    pcsv.write_csv(pa.table({"TIMESTAMP": s, "ContextTokens": prompt, "GeneratedTokens": output}), buf,
                   pcsv.WriteOptions(include_header=False, quoting_style="none"))
    return buf.getvalue()


def generate(out: str | Path, rows: int, *, days: float = 7.0, lengths: tuple[np.ndarray, np.ndarray],
             seed: int = 0, diurnal: float = 0.5, weekend: float = 0.75) -> dict:
    """Write ``rows`` requests over ``days`` days to ``out`` (atomically); return what was written."""
    if rows < 1 or days <= 0:
        raise ConfigError(f"generate: rows={rows} must be >= 1 and days={days} > 0.")
    if not 0.0 <= diurnal < 1.0 or weekend <= 0:
        raise ConfigError(f"generate: diurnal={diurnal} must be in [0, 1) and weekend={weekend} > 0.")
    p_all, o_all = (np.asarray(a, np.int64) for a in lengths)
    rng = np.random.default_rng(seed)
    hours = int(math.ceil(days * 24))
    w = hour_weights(hours, diurnal, weekend)
    if days * 24 < hours:  # a partial last hour: no arrivals past the end
        w[-1] *= days * 24 - (hours - 1)
        w /= w.sum()
    counts = rng.multinomial(rows, w)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    end_s = days * 86400.0

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(HEADER)
            for h, n in enumerate(counts.tolist()):
                if n == 0:
                    continue
                t = _hour_times(n, h, min(HOUR, end_s - h * HOUR), diurnal, weekend, rng)
                pick = rng.integers(0, len(p_all), n)
                f.write(_format(t, p_all[pick], o_all[pick]))

    write_atomic(out, write)  # streamed hour by hour into a temp file, renamed when complete
    return {"path": str(out), "rows": int(rows), "days": days, "mean_rate_rps": rows / (days * 86400.0),
            "peak_hour_rows": int(counts.max()), "bytes": out.stat().st_size}


def load_lengths(name_or_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Lengths from a shared 2023 trace (``conv``/``code``, found like the presets) or a table path."""
    from framework.workloads.lengths import read_lengths_table

    from framework.workloads.presets import data_dirs

    if name_or_path in LENGTHS:
        roots = data_dirs()
        for root in roots:
            if (root / LENGTHS[name_or_path]).is_file():
                return read_lengths_table(root / LENGTHS[name_or_path])
        raise ConfigError(f"generate: {LENGTHS[name_or_path]} not found in {', '.join(map(str, roots))}; set "
                          "BALANCEROUTE_DATA to the folder holding the shared traces, or pass --lengths PATH.")
    return read_lengths_table(name_or_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--lengths", default="conv", help="conv | code | path of a lengths table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--diurnal", type=float, default=0.5)
    ap.add_argument("--weekend", type=float, default=0.75)
    a = ap.parse_args(argv)
    try:
        info = generate(a.out, a.rows, days=a.days, lengths=load_lengths(a.lengths), seed=a.seed,
                        diurnal=a.diurnal, weekend=a.weekend)
    except UserError as e:
        return report("generate", e)
    import json

    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
