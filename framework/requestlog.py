"""What a run keeps of each finished request, as the simulator's window moves past it.

table    every column of requests.parquet (record=full|steps|sampled): 9 columns, ~68 bytes a request
compact  record=summary: only what the summary needs, the TTFT and TPOT samples (float64, 16 bytes a
         request: 0.44 GB for a 27.3 M-request week) and running sums; percentiles stay exact and the
         figures are those the table would give, bit for bit (same values, same order, same numpy calls)

Requests arrive here in id order (the simulator retires a prefix of its window), so concatenated
columns are exactly the arrays an in-memory run holds.
"""
from __future__ import annotations

import numpy as np

from framework.metrics import latency_from_samples, latency_samples

COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens", "worker", "placed_step", "admit_step",
           "first_token_s", "finish_s", "preemptions")
_FLOAT = {"arrival_s", "first_token_s", "finish_s"}


class RequestLog:
    """Finished requests' results, appended in id order; see the module docstring for the two forms."""

    def __init__(self, table: bool) -> None:
        self.table = table
        self._parts: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS} if table else \
            {"ttft": [], "tpot": []}
        self.count = 0
        self.tokens_done = np.int64(0)
        self.preemptions = 0
        self.arrival_min = np.inf
        self.finish_max = -np.inf

    def add(self, **cols: np.ndarray) -> None:
        """Append consecutive finished requests (every name of COLUMNS, equal lengths)."""
        n = len(cols["finish_s"])
        if n == 0:
            return
        self.count += n
        if self.table:
            for c in COLUMNS:
                self._parts[c].append(np.array(cols[c], np.float64 if c in _FLOAT else np.int64))
            return
        ttft, tpot = latency_samples(cols["arrival_s"], cols["first_token_s"], cols["finish_s"],
                                     cols["output_tokens"])
        self._parts["ttft"].append(ttft)
        self._parts["tpot"].append(tpot)
        self.tokens_done += np.int64(cols["output_tokens"].sum())
        self.preemptions += int(cols["preemptions"].sum())
        self.arrival_min = min(self.arrival_min, float(cols["arrival_s"].min()))
        self.finish_max = max(self.finish_max, float(np.nanmax(cols["finish_s"])))

    def _cat(self, name: str, dtype: type) -> np.ndarray:
        parts = self._parts[name]
        if not parts:
            return np.empty(0, dtype)
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._parts[name] = [out]  # keep one copy, not the pieces and their concatenation
        return out

    def columns(self) -> dict[str, np.ndarray]:
        """The table form's columns, concatenated (table mode only)."""
        assert self.table, "record=summary keeps no request table"
        return {c: self._cat(c, np.float64 if c in _FLOAT else np.int64) for c in COLUMNS}

    def latency(self) -> dict[str, float]:
        """latency_metrics' figures from the compact form (every logged request finished)."""
        assert not self.table
        span = self.finish_max - self.arrival_min if self.count else 0.0
        return latency_from_samples(self._cat("ttft", np.float64), self._cat("tpot", np.float64),
                                    self.tokens_done, span)
