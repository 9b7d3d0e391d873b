"""Cut an instance into independent busy parts at steps with at most one active request.

Why: worker labels on the two sides of such a step can be permuted independently, so each part is a
smaller problem of its own (see the package docstring, "Decomposition").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.objective import step_series


@dataclass
class Part:
    """A busy part: requests (indices into the instance) truncated to the part's steps [u, v)."""

    u: int
    v: int
    idx: np.ndarray
    a: np.ndarray  # relative to u
    p: np.ndarray
    o: np.ndarray


def split_parts(a: np.ndarray, p: np.ndarray, o: np.ndarray, G: int) -> tuple[list[Part], int]:
    """Cut at every step with at most one active request; return the parts and the cut steps' J."""
    K = int((a + o).max())
    cnt = np.zeros(K + 1, np.int64)
    np.add.at(cnt, a, 1)
    np.add.at(cnt, a + o, -1)
    cnt = np.cumsum(cnt)[:K]
    busy = cnt >= 2
    # constant imbalance of steps with exactly one active request: G*l - l
    single = np.flatnonzero(cnt == 1)
    const = 0
    if len(single):
        ser = step_series(a, p, o, np.zeros(len(a), np.int64), 1, validate=False)
        const = (G - 1) * int(ser.loads[single - ser.k0, 0].sum())
    edges = np.flatnonzero(np.diff(np.concatenate(([0], busy.astype(np.int8), [0]))))
    parts = []
    order = np.argsort(a, kind="stable")
    a_sorted = a[order]
    for u, v in zip(edges[0::2], edges[1::2]):
        u, v = int(u), int(v)
        hi = int(np.searchsorted(a_sorted, v, side="left"))
        cand = order[:hi]
        cand = cand[a[cand] + o[cand] > u]
        s = np.maximum(a[cand], u)
        e = np.minimum(a[cand] + o[cand], v)
        srt = np.argsort(cand)
        cand, s, e = cand[srt], s[srt], e[srt]
        parts.append(Part(u, v, cand, s - u, p[cand] + (s - a[cand]), e - s))
    return parts, const
