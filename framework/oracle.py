"""The only channel through which ground-truth output lengths reach a router.

A component gets it from ``PolicyContext.request_oracle(component)``, which refuses anything whose class
is not marked ``is_oracle = True`` and records every grant, so a run's summary says ``oracle_used``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


class OracleChannel:
    """Read access to the true output length of any request (hindsight information)."""

    def __init__(self, output_tokens: np.ndarray | None = None,
                 lookup: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """From every request's output length, or (a streamed run) a lookup of requests in flight."""
        if output_tokens is not None:
            o = np.asarray(output_tokens, dtype=np.int64)
            o.flags.writeable = False
            lookup = o.__getitem__
        assert lookup is not None, "OracleChannel needs output_tokens or a lookup"
        self._lookup = lookup

    def output_tokens(self, request_ids: np.ndarray) -> np.ndarray:
        return self._lookup(np.asarray(request_ids, dtype=np.int64))

    def remaining_steps(self, request_ids: np.ndarray, decoded: np.ndarray) -> np.ndarray:
        """Steps each request still runs, counting the current one (o_i - decoded_i)."""
        return self.output_tokens(request_ids) - np.asarray(decoded, dtype=np.int64)
