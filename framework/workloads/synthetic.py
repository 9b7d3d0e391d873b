"""The embedded default workload's lengths: no file, fully determined by the seed, fast.

Lognormal prompt and output lengths shaped like the Azure 2023 conversation trace (prompt mean 1155 /
median 1020 tokens; output mean 211 / median 129). Each lognormal has the trace's median, and its sigma is
solved (numerically, offline) so that the mean after clipping to [1, max] is the trace's mean:
prompt sigma 0.4986 (clip 8192), output sigma 1.0039 (clip 2048). The tails are heavier than the trace's
for outputs (p99 ~1330 vs 601) and lighter for prompts (p99 ~3250 vs 4142); prompt and output are drawn
independently (the trace's correlation is weak).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClippedLogNormal:
    """round(LogNormal(ln median, sigma)) clipped to [lo, hi]."""

    median: float
    sigma: float
    lo: int
    hi: int

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.lognormal(math.log(self.median), self.sigma, n)
        return np.clip(np.rint(x), self.lo, self.hi).astype(np.int64)


PROMPT = ClippedLogNormal(median=1020.0, sigma=0.4986, lo=1, hi=8192)
OUTPUT = ClippedLogNormal(median=129.0, sigma=1.0039, lo=1, hi=2048)


def synthetic_lengths(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and output token counts of ``n`` requests."""
    return PROMPT.sample(n, rng), OUTPUT.sample(n, rng)
