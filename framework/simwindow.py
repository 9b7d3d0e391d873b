"""The simulator's per-request arrays over a sliding window of request ids (the arrival-source seam).

RQ / RF column j holds request BASE + j (framework.simcore). The window starts with the source's first
chunk; when the core runs out of loaded arrivals (return code NEEDARR) the driver calls ``advance``:
finished requests at the front of the window go to the RequestLog, the live ones shift to the front
(every slot-valued field moves by the same amount), and the next chunk is appended, growing the arrays
only if the live requests and the chunk do not fit. An in-memory Workload is a single chunk, so its
window is exactly the arrays of the whole workload and nothing ever moves.
"""
from __future__ import annotations

import numpy as np

from framework import simcore as sc
from framework.cluster import ClusterConfig
from framework.errors import ConfigError, TraceFormatError
from framework.requestlog import RequestLog
from framework.workload import Chunk, Workload, WorkloadStream, iter_chunks

_INT_NOLINK = [sc.WORKER, sc.PLACED, sc.ADMIT, sc.FINSTEP, sc.ACTPOS, sc.QNEXT, sc.PFNEXT, sc.SNEXT, sc.SPREV]
_WK_LINKS = [sc.QHEAD, sc.QTAIL, sc.PFHEAD, sc.PFTAIL]


def _pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


class RequestWindow:
    """Owns RQ, RF and the finish calendar CH / CT; see the module docstring."""

    def __init__(self, workload: Workload | WorkloadStream, cluster: ClusterConfig, C_admit: int,
                 SC: np.ndarray, log: RequestLog) -> None:
        self.name, self.cluster, self.C_admit, self.SC, self.log = workload.name, cluster, C_admit, SC, log
        self._it = (c for c in iter_chunks(workload) if len(c))
        first = next(self._it, None)
        if first is None:
            raise TraceFormatError(f"workload {workload.name!r} has no requests: check the file, the time "
                                   "window (workload.start_s / workload.duration_s) and workload.max_requests.")
        self._pending = next(self._it, None)
        n = len(first)
        cap = n if self._pending is None else _pow2(2 * n)
        self.RQ = np.zeros((sc.NRQ, cap), np.int32)  # int32: requests and tokens below 2^31 (checked)
        self.RF = np.full((3, cap), np.nan)
        self.KEY = np.full(cap, -1, np.int64)  # prompt keys, -1 = unknown (the view shows them)
        self.t0 = float(first.arrival_s[0])
        self.last_arrival = -np.inf
        self.loaded = 0  # requests loaded so far (BASE + NLOADED)
        self._check(first)
        cal = 1 << int(first.output_tokens.max()).bit_length()  # > max output: one finish step a bucket
        self.CH = np.full(cal, sc.NOLINK, np.int64)
        self.CT = np.full(cal, sc.NOLINK, np.int64)
        self._fill(first, 0)
        SC[sc.EXHAUSTED] = self._pending is None

    def _check(self, ch: Chunk) -> None:
        """The per-request checks of a chunk: sorted after what came before, and within a worker's KV."""
        a, p, o = ch.arrival_s, ch.prompt_tokens, ch.output_tokens
        if not (len(a) == len(p) == len(o)):
            raise TraceFormatError(f"workload {self.name!r}: a chunk's columns differ in length.")
        if not np.all(np.isfinite(a)) or a[0] < self.last_arrival or np.any(np.diff(a) < 0):
            i = self.loaded + int(np.flatnonzero(~(np.diff(np.r_[self.last_arrival, a]) >= 0))[0])
            raise TraceFormatError(f"workload {self.name!r}: arrival of request {i} is not finite or goes "
                                   "back in time; a streamed trace must be sorted (sort the file, or run it "
                                   "with stream=false, which sorts in memory).")
        if min(int(p.min()), int(o.min())) < 1:
            raise TraceFormatError(f"workload {self.name!r}: a request has no prompt or output token.")
        peak = p + o - 1
        too_big = np.flatnonzero(peak > self.C_admit)
        if len(too_big):
            i, cl = int(too_big[0]), self.cluster
            raise ConfigError(
                f"Request {self.loaded + i} of workload {self.name!r} needs {int(peak[i])} KV tokens at its "
                f"last step, more than the {self.C_admit} a worker admits (cluster.kv_capacity_tokens="
                f"{cl.kv_capacity_tokens} less cluster.kv_watermark={cl.kv_watermark}); {len(too_big)} "
                "request(s) do. Raise cluster.kv_capacity_tokens or filter the trace.")
        if int(peak.max()) >= 2**31 or self.loaded + len(a) >= 2**31:
            raise ConfigError("Requests over 2^31 tokens (or 2^31 requests) are beyond the simulator.")
        self.last_arrival = float(a[-1])

    def _fill(self, ch: Chunk, at: int) -> None:
        n = len(ch)
        RQ, RF = self.RQ, self.RF
        RQ[:, at:at + n] = 0
        RQ[sc.PROMPT, at:at + n], RQ[sc.OUTPUT, at:at + n] = ch.prompt_tokens, ch.output_tokens  # o_i: core only
        RQ[_INT_NOLINK, at:at + n] = sc.NOLINK
        RF[:, at:at + n] = np.nan
        RF[sc.ARR, at:at + n] = ch.arrival_s
        self.KEY[at:at + n] = -1 if ch.prompt_key is None else ch.prompt_key
        self.SC[sc.NLOADED] = at + n
        self.loaded += n

    def output_tokens(self, ids: np.ndarray) -> np.ndarray:
        """True output lengths of loaded, unfinished requests (for the oracle channel of a stream)."""
        slots = np.asarray(ids, np.int64) - int(self.SC[sc.BASE])
        if len(slots) and (slots.min() < 0 or slots.max() >= int(self.SC[sc.NLOADED])):
            raise KeyError("oracle asked about a request that has not arrived or has finished")
        return self.RQ[sc.OUTPUT, slots].astype(np.int64)

    def advance(self, WK: np.ndarray, AC: np.ndarray) -> bool:
        """Retire the finished front, shift, append the next chunk; True if RQ / RF / CH were replaced."""
        SC = self.SC
        ch, self._pending = self._pending, next(self._it, None)
        assert ch is not None, "the core asked for arrivals after the source was exhausted"
        self._check(ch)
        lo = self.retire()
        if lo:
            self._shift(lo, WK, AC)
        live = int(SC[sc.NLOADED])
        replaced = False
        if live + len(ch) > self.RQ.shape[1]:
            cap = _pow2(2 * (live + len(ch)))
            RQ = np.zeros((sc.NRQ, cap), np.int32)
            RF = np.full((3, cap), np.nan)
            KEY = np.full(cap, -1, np.int64)
            RQ[:, :live], RF[:, :live], KEY[:live] = self.RQ[:, :live], self.RF[:, :live], self.KEY[:live]
            self.RQ, self.RF, self.KEY, replaced = RQ, RF, KEY, True
        if int(ch.output_tokens.max()) >= len(self.CH):
            self._grow_calendar(1 << int(ch.output_tokens.max()).bit_length())
            replaced = True
        self._fill(ch, live)
        SC[sc.EXHAUSTED] = self._pending is None
        return replaced

    def retire(self, everything: bool = False) -> int:
        """Log the finished requests at the front of the window (all of them at the end); their count.
        (Prompt keys are inputs, as in the in-memory workload; the request log does not keep them.)"""
        nl = int(self.SC[sc.NLOADED])
        if everything:
            lo = nl
        else:
            alive = np.flatnonzero(self.RQ[sc.FINSTEP, :nl] != sc.FINISHED)
            lo = int(alive[0]) if len(alive) else nl
        if lo:
            RQ, RF = self.RQ, self.RF
            self.log.add(arrival_s=RF[sc.ARR, :lo], prompt_tokens=RQ[sc.PROMPT, :lo],
                         output_tokens=RQ[sc.OUTPUT, :lo], worker=RQ[sc.WORKER, :lo],
                         placed_step=RQ[sc.PLACED, :lo], admit_step=RQ[sc.ADMIT, :lo],
                         first_token_s=RF[sc.FIRST, :lo], finish_s=RF[sc.FINISH, :lo],
                         preemptions=RQ[sc.PREEMPT, :lo])
        return lo

    def _shift(self, lo: int, WK: np.ndarray, AC: np.ndarray) -> None:
        """Drop the first ``lo`` slots: live requests move to the front, every slot reference by -lo."""
        SC, RQ, RF = self.SC, self.RQ, self.RF
        nl = int(SC[sc.NLOADED])
        live = nl - lo
        RQ[:, :live] = RQ[:, lo:nl]
        RF[:, :live] = RF[:, lo:nl]
        self.KEY[:live] = self.KEY[lo:nl]
        for row in sc.LINK_ROWS:  # a live request links only to live ones; stale links are never read
            v = RQ[row, :live]
            v[v >= 0] -= lo
        for a in (self.CH, self.CT):
            a[a >= 0] -= lo
        WK[_WK_LINKS] = np.where(WK[_WK_LINKS] >= 0, WK[_WK_LINKS] - lo, WK[_WK_LINKS])
        AC[sc.AID, :int(SC[sc.ACT])] -= lo
        SC[sc.PTR] -= lo
        SC[sc.POOLLO] -= lo
        SC[sc.BASE] += lo
        SC[sc.NLOADED] = live

    def _grow_calendar(self, size: int) -> None:
        """A longer calendar for a chunk with longer outputs; each bucket's list moves whole."""
        CH = np.full(size, sc.NOLINK, np.int64)
        CT = np.full(size, sc.NOLINK, np.int64)
        for b in np.flatnonzero(self.CH >= 0):
            nb = int(self.RQ[sc.FINSTEP, self.CH[b]]) & (size - 1)
            CH[nb], CT[nb] = self.CH[b], self.CT[b]
        self.CH, self.CT = CH, CT
