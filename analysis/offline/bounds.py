"""Window lower bounds on E* = min over assignments of sum_k max_g s_g(k) (see analysis.offline.solve).

The per-step bounds c_k (offline_search.step_bounds) ignore that assignments are sticky: a request that
leaves worker g at step k opens a hole on g that only a request starting near k can fill. A window
relaxation sees that.

Window relaxation. For steps [u, v), a request active on every step of the window is *persistent*, one
that starts or ends inside is a *boundary* request. Keep boundary requests integral (x_ig binary) and
relax the persistent ones to a divisible fluid, and further keep of the fluid only what each worker gets
in total: at step k worker g carries F_g + N_g (k - u) of it, where F_g is its share of the persistent
loads at step u and N_g its share of their number, with
    sum_g F_g = F,  sum_g N_g = N,  lo(N_g) <= F_g <= hi(N_g),
lo(m) / hi(m) being the sum of the m smallest / largest persistent loads, interpolated between integers
(convex / concave, piecewise linear; we keep a few of their tangents, which only relaxes further). Then
    min sum_{k=u}^{v-1} M_k   s.t.  M_k >= F_g + N_g (k - u) + sum_{boundary i on g} l_i(k),  M_k >= c_k.
Why it is a lower bound: any assignment restricted to the window is feasible (the persistent requests
on g have count N_g and load F_g between the sums of the N_g smallest and largest loads) with
M_k = max_g s_g(k); so the window optimum, and the solver's proven bound on it (valid at a time limit
too), is <= sum over the window of max_g s_g(k) for every assignment.
Symmetry: permuting workers maps feasible points to feasible points with the same value, so the r-th
boundary request (largest first) may use only workers 0..r.

Where it bites: in the ramp-up and ramp-down, where few requests are active; in a busy period it closes
little of the gap, because the relaxation chooses each window's start state freely (figures:
docs/offline_optimum.md). Closing the busy-period gap needs a bound that carries state across windows
(open).

Combining windows (any overlaps, several tilings): min sum_k M_k s.t. M_k >= c_k and
sum_{k in w} M_k >= LB_w for every window w is a valid bound on E*, because every assignment's envelope
satisfies all these rows. It is an LP over the steps.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

HULL_TANGENTS = 12


def event_windows(a: np.ndarray, o: np.ndarray, max_events: int, max_len: int) -> list[tuple[int, int]]:
    """Tile the steps into consecutive windows cut at breakpoints, each holding at most ``max_events``
    starts/ends strictly inside (so about that many boundary requests) and at most ``max_len`` steps
    (unless a single segment is longer)."""
    K = int((a + o).max())
    bps = np.unique(np.concatenate((a, a + o, [0, K])))
    ev = np.zeros(len(bps), np.int64)
    np.add.at(ev, np.searchsorted(bps, a), 1)
    np.add.at(ev, np.searchsorted(bps, a + o), 1)
    wins = []
    j = 0
    while j < len(bps) - 1:
        jj = j + 1
        inner = 0
        while jj < len(bps) - 1:
            if inner + ev[jj] > max_events or bps[jj + 1] - bps[j] > max_len:
                break
            inner += ev[jj]
            jj += 1
        wins.append((int(bps[j]), int(bps[jj])))
        j = jj
    return wins


def window_bound(a, p, o, G: int, c: np.ndarray, u: int, v: int, time_limit: float) -> tuple[float, bool]:
    """Proven lower bound on sum_{k=u}^{v-1} max_g s_g(k) over all assignments; (bound, solved?)."""
    import pulp

    base = float(c[u:v].sum())
    act = np.flatnonzero((a < v) & (a + o > u))
    if len(act) == 0:
        return 0.0, True
    persist = (a[act] <= u) & (a[act] + o[act] >= v)
    bnd = act[~persist]
    if len(bnd) == 0 or G == 1:
        return base, True
    pers = act[persist]
    mass = np.sort(p[pers] + (u - a[pers]))
    n = len(mass)
    lo = np.concatenate(([0], np.cumsum(mass)))
    hi = np.concatenate(([0], np.cumsum(mass[::-1])))
    prob = pulp.LpProblem("window", pulp.LpMinimize)
    F = [prob.add_variable(f"F_{g}", 0) for g in range(G)]
    Nn = [prob.add_variable(f"N_{g}", 0, n) for g in range(G)]
    prob += pulp.lpSum(F) == float(lo[-1])
    prob += pulp.lpSum(Nn) == float(n)
    if n:
        big = mass[::-1]
        for m in np.unique(np.linspace(0, n - 1, HULL_TANGENTS).astype(np.int64)).tolist():
            for g in range(G):  # tangent of lo at [m, m+1] below, of hi above
                prob += F[g] - float(mass[m]) * Nn[g] >= float(lo[m] - mass[m] * m)
                prob += F[g] - float(big[m]) * Nn[g] <= float(hi[m] - big[m] * m)
    order = bnd[np.argsort(-(np.minimum(a[bnd] + o[bnd], v) - np.maximum(a[bnd], u)) * p[bnd], kind="stable")]
    x = {}
    for r, i in enumerate(order.tolist()):
        gs = range(min(G, r + 1))
        for g in gs:
            x[i, g] = prob.add_variable(f"x_{i}_{g}", 0, 1, "Binary")
        prob += pulp.lpSum(x[i, g] for g in gs) == 1
    Ms = []
    for k in range(u, v):
        Mk = prob.add_variable(f"M_{k}", lowBound=float(c[k]))
        Ms.append(Mk)
        on = order[(a[order] <= k) & (a[order] + o[order] > k)].tolist()
        for g in range(G):
            terms = [(Mk, 1.0), (F[g], -1.0), (Nn[g], -float(k - u))]
            terms += [(x[i, g], -float(p[i] + k - a[i])) for i in on if (i, g) in x]
            prob += pulp.LpAffineExpression(terms) >= 0
    prob += pulp.lpSum(Ms)
    prob.solve(pulp.HiGHS(msg=False, timeLimit=max(time_limit, 0.05), threads=1, random_seed=0))
    h = prob.solverModel
    bound = h.getInfo().mip_dual_bound
    import highspy

    solved = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    if not np.isfinite(bound):
        return base, False
    return max(base, float(bound)), solved


def ceil_bound(e_lb: float) -> int:
    """E* is an integer: round a proven bound up, after a relative tolerance for solver arithmetic."""
    return math.ceil(e_lb - 1e-6 * max(1.0, abs(e_lb)))


def combine(c: np.ndarray, windows: list[tuple[int, int, float]]) -> float:
    """The LP bound of the module docstring: min sum M_k, M_k >= c_k, window sums >= their bounds."""
    import pulp

    K = len(c)
    useful = [(u, v, lb) for u, v, lb in windows if lb > c[u:v].sum() + 1e-9]
    if not useful:
        return float(c.sum())
    # steps outside every useful window sit at c_k; only covered steps need variables
    cover = np.zeros(K, bool)
    for u, v, _ in useful:
        cover[u:v] = True
    idx = np.flatnonzero(cover)
    prob = pulp.LpProblem("combine", pulp.LpMinimize)
    M = {int(k): prob.add_variable(f"M_{k}", lowBound=float(c[k])) for k in idx}
    for u, v, lb in useful:
        prob += pulp.lpSum(M[k] for k in range(u, v)) >= float(lb)
    prob += pulp.lpSum(M.values())
    prob.solve(pulp.HiGHS(msg=False, threads=1))
    val = pulp.value(prob.objective)
    # an LP optimum is exact up to tolerances; shave a hair so the bound stays below the true one
    return float(c[~cover].sum()) + float(val) * (1 - 1e-9)


def window_lower_bound(a, p, o, G: int, c: np.ndarray, time_budget: float,
                       levels: tuple[int, ...] = (6, 12, 18), max_len: int = 60,
                       per_window: float = 5.0) -> tuple[float, list[tuple[int, int, float]], dict]:
    """Tilings with growing window sizes until the time budget is spent; returns (bound on E*, windows,
    info). Windows left unsolved when time runs out fall back to the per-step bound."""
    t_end = time.perf_counter() + time_budget
    done: list[tuple[int, int, float]] = []
    info = {"windows": 0, "windows_solved": 0, "tilings": 0}
    for bmax in levels:
        wins = event_windows(a, o, bmax, max_len)
        if time.perf_counter() >= t_end:
            break
        info["tilings"] += 1
        for q, (u, v) in enumerate(wins):
            left = t_end - time.perf_counter()
            if left <= 0.01:
                break
            lb, ok = window_bound(a, p, o, G, c, u, v, min(per_window, left / max(len(wins) - q, 1) * 3))
            done.append((u, v, lb))
            info["windows"] += 1
            info["windows_solved"] += int(ok)
    return combine(c, done), done, info


def _window_job(conn, a, p, o, G, c, time_budget, levels) -> None:
    """Child-process body of WindowBoundJob: compute, send, exit (errors are sent as text)."""
    try:
        conn.send(("ok", window_lower_bound(a, p, o, G, c, time_budget, levels=levels)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which falls back to c
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


class WindowBoundJob:
    """window_lower_bound in a second process, so it runs on another core while the incumbent search
    runs here. The bounds do not depend on the incumbent, only on the instance and c.

    ``result()`` waits at most ``time_budget`` (counted from the start) plus a grace period for the
    last window solve to return; a job that is late, crashed or cancelled yields None, and the caller
    keeps the per-step bound: the window bounds only ever lift the lower bound, never carry it.
    """

    GRACE_S = 10.0

    def __init__(self, a, p, o, G: int, c: np.ndarray, time_budget: float, levels: tuple[int, ...]):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork: the parent may hold solver or numba state
        self._conn, child = ctx.Pipe(duplex=False)
        self._deadline = time.perf_counter() + time_budget + self.GRACE_S
        self._proc = ctx.Process(target=_window_job, daemon=True,
                                 args=(child, a, p, o, G, c, time_budget, levels))
        self._proc.start()
        child.close()
        self.error: str | None = None

    def result(self) -> tuple[float, list[tuple[int, int, float]], dict] | None:
        try:
            if not self._conn.poll(max(self._deadline - time.perf_counter(), 0.0)):
                self.error = "window bounds did not return in time"
                return None
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            self.error = f"window bound process died (exit code {self._proc.exitcode})"
            return None
        finally:
            self.cancel()
        if status != "ok":
            self.error = payload
            return None
        return payload

    def cancel(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=5)
        self._conn.close()


@dataclass
class BoundProfile:
    """Where a certified interval's width sits along the steps, so a loose interval can be traced to
    the phase that causes it (ramp-up, busy middle, ramp-down).

    Per step (counted from the instance's first start): ``envelope`` max_g s_g(k) of the best
    assignment, ``lower`` the per-step bound used (c_k; on parts proven optimal, and on steps with at
    most one active request, the envelope itself), ``active`` the number of active requests, and the
    window rows (u, v, bound on the envelope summed over [u, v)) of the parts left unproven.
    """

    workers: int
    envelope: np.ndarray
    lower: np.ndarray
    active: np.ndarray
    windows: list[tuple[int, int, float]] = field(default_factory=list)

    def blocks(self, n: int) -> list[dict]:
        """The width split over ``n`` blocks of equal step counts.

        A block's bound combines its per-step bounds with the windows inside it (module docstring), so
        it is valid for that block alone; windows that cross a block edge and a MILP's bound over a
        whole part are left out. The block widths therefore add up to at least the interval's width.
        """
        if n < 1:
            raise ValueError(f"blocks={n}: give at least one block.")
        K = len(self.envelope)
        edges = np.unique(np.linspace(0, K, n + 1).round().astype(np.int64))
        total = self.workers * int(self.envelope.sum())
        rows = []
        for x, y in zip(edges[:-1].tolist(), edges[1:].tolist()):
            inside = [(u - x, v - x, lb) for u, v, lb in self.windows if x <= u and v <= y]
            lb = combine(self.lower[x:y].astype(np.int64), inside)
            ub = int(self.envelope[x:y].sum())
            width = max(self.workers * (ub - ceil_bound(lb)), 0)  # the solver's rounding
            rows.append({"steps": [x, y], "active_mean": round(float(self.active[x:y].mean()), 1),
                         "width": width, "width_rel_compute": width / total if total else 0.0})
        spread = sum(r["width"] for r in rows)
        for r in rows:
            r["share_of_width"] = r["width"] / spread if spread else 0.0
        return rows
