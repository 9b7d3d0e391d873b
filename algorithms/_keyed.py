"""Per-prompt-key output-length tables that grow as requests complete (ExactMatch's store).

Each key owns a sorted segment of one flat array of output lengths, with inclusive prefix sums beside
it, so for a request of age d (tokens decoded) both of ExactMatch's answers are two binary searches:
E[min(o - d, H+1) | o > d] and q(h) = #{o > d+h} / #{o > d}, over the key's observations. Adding an
observation inserts into its segment (O(segment)); a full segment moves to the end with twice the room
(amortised O(1) moves). Keys are looked up by binary search in a sorted key array, so a decision over R
running requests costs O(R log K), compiled.
"""
from __future__ import annotations

import numpy as np
from numba import njit


class KeyedOutputs:
    """Observed output lengths per prompt key (keys >= 0; -1 = unknown, never stored)."""

    def __init__(self) -> None:
        self.keys = np.empty(0, np.int64)  # sorted distinct keys
        self.rows = np.empty(0, np.int64)  # row of keys[j]
        self.start = np.empty(0, np.int64)
        self.size = np.empty(0, np.int64)
        self.cap = np.empty(0, np.int64)
        self.vals = np.zeros(256, np.int64)
        self.incl = np.zeros(256, np.float64)
        self.used = 0

    def __len__(self) -> int:
        return int(self.size.sum())

    def row_of(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key, -1 where the key is unknown or has never been observed."""
        keys = np.asarray(keys, np.int64)
        if len(self.keys) == 0 or len(keys) == 0:
            return np.full(len(keys), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where((self.keys[pos] == keys) & (keys >= 0), self.rows[pos], -1)

    def add(self, keys: np.ndarray, outputs: np.ndarray) -> None:
        """Record that requests with these keys produced these many tokens."""
        keys = np.asarray(keys, np.int64)
        outputs = np.asarray(outputs, np.int64)
        sel = keys >= 0
        keys, outputs = keys[sel], outputs[sel]
        if len(keys) == 0:
            return
        new = np.setdiff1d(keys, self.keys)  # sorted, unique
        if len(new):
            first = len(self.start)
            self.start = np.concatenate((self.start, np.zeros(len(new), np.int64)))
            self.size = np.concatenate((self.size, np.zeros(len(new), np.int64)))
            self.cap = np.concatenate((self.cap, np.zeros(len(new), np.int64)))
            pos = np.searchsorted(self.keys, new)
            self.keys = np.insert(self.keys, pos, new)
            self.rows = np.insert(self.rows, pos, np.arange(first, first + len(new)))
        for r, o in zip(self.row_of(keys).tolist(), outputs.tolist()):
            if self.size[r] == self.cap[r]:
                self._grow(r)
            _insert(self.vals, self.incl, int(self.start[r]), int(self.size[r]), int(o))
            self.size[r] += 1

    def _grow(self, r: int) -> None:
        """Move row r's segment to the end of storage with twice the room (4 for a new row)."""
        cap = max(4, 2 * int(self.cap[r]))
        if self.used + cap > len(self.vals):
            n = max(2 * len(self.vals), self.used + cap)
            self.vals = np.concatenate((self.vals, np.zeros(n - len(self.vals), np.int64)))
            self.incl = np.concatenate((self.incl, np.zeros(n - len(self.incl))))
        s, k = int(self.start[r]), int(self.size[r])
        self.vals[self.used:self.used + k] = self.vals[s:s + k]
        self.incl[self.used:self.used + k] = self.incl[s:s + k]
        self.start[r], self.cap[r] = self.used, cap
        self.used += cap

    def lifetimes(self, rows: np.ndarray, decoded: np.ndarray, horizon: int, need: int
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(E[min(o - d, H+1) | o > d], hit) per request; hit is False where the row is -1, has fewer
        than ``need`` observations, or none above d (the request has outlived every match)."""
        n = len(rows)
        out, ok = np.zeros(n), np.zeros(n, np.bool_)
        _lifetimes(self.vals, self.incl, self.start, self.size, np.ascontiguousarray(rows, np.int64),
                   np.ascontiguousarray(decoded, np.int64), int(horizon), int(need), out, ok)
        return out, ok

    def survival(self, rows: np.ndarray, decoded: np.ndarray, horizon: int, need: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(q, hit): q[i, h] = #{o > d+h} / #{o > d} over the row's observations, h = 0..H."""
        n = len(rows)
        q, ok = np.ones((n, int(horizon) + 1)), np.zeros(n, np.bool_)
        _survival(self.vals, self.start, self.size, np.ascontiguousarray(rows, np.int64),
                  np.ascontiguousarray(decoded, np.int64), int(horizon), int(need), q, ok)
        return q, ok


@njit(cache=True, nogil=True)
def _insert(vals, incl, s, n, o):  # pragma: no cover - compiled
    """Insert o into the sorted segment vals[s:s+n] (after equal values) and refresh its prefix sums."""
    j = n
    while j > 0 and vals[s + j - 1] > o:
        vals[s + j] = vals[s + j - 1]
        j -= 1
    vals[s + j] = o
    acc = incl[s + j - 1] if j > 0 else 0.0
    for t in range(j, n + 1):
        acc += vals[s + t]
        incl[s + t] = acc


@njit(cache=True, nogil=True)
def _upper(vals, s, n, x):  # pragma: no cover - compiled
    """First j in [0, n] with vals[s + j] > x."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if vals[s + mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _lifetimes(vals, incl, start, size, rows, decoded, H, need, out, ok):  # pragma: no cover - compiled
    for i in range(len(rows)):
        r = rows[i]
        if r < 0 or size[r] < need:
            continue
        s, n, d = start[r], size[r], decoded[i]
        j = _upper(vals, s, n, d)
        if j == n:
            continue
        j2 = _upper(vals, s, n, d + H + 1)
        lo = incl[s + j - 1] if j > 0 else 0.0
        hi = incl[s + j2 - 1] if j2 > 0 else 0.0
        out[i] = ((hi - lo) - d * (j2 - j) + (n - j2) * (H + 1.0)) / (n - j)
        ok[i] = True


@njit(cache=True, nogil=True)
def _survival(vals, start, size, rows, decoded, H, need, q, ok):  # pragma: no cover - compiled
    for i in range(len(rows)):
        r = rows[i]
        if r < 0 or size[r] < need:
            continue
        s, n, d = start[r], size[r], decoded[i]
        j = _upper(vals, s, n, d)
        if j == n:
            continue
        ok[i] = True
        p = j
        for h in range(H + 1):
            while p < n and vals[s + p] <= d + h:
                p += 1
            q[i, h] = (n - p) / (n - j)
