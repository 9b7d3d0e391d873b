"""The F-score and the joint placement value (DESIGN.md section 3), as small pure functions.

Notation: G workers with loads s_g; margins m_g = max_h s_h - s_g (the load g can take without raising
the envelope). Admitting requests Q to worker g adds Ds = sum of p_i over Q.

    F_g(Q) = -DI_g(Q) = Ds - G * (Ds - m_g)^+

Safe regime (Ds <= m_g): imbalance I = G*max s - sum s falls by Ds. Overflow (Ds > m_g): the envelope
rises by Ds - m_g for all G workers, slope 1 - G. When several workers receive D_g in the same step only
the largest overflow raises the envelope:

    DI = G * max_g (D_g - m_g)^+ - sum_g D_g,      joint value = -DI.

Horizon form (BR-H, section 5): with predicted margins m_g(h) and admitted loads D_g(h), h = 0..H,

    V^H = sum_h gamma^h [ sum_g D_g(h) - G * max_g (D_g(h) - m_g(h))^+ ],   V^0 = joint value.

Every policy that needs these (br0, brh, lp) uses these functions, and the tests check them by hand.
"""
from __future__ import annotations

import numpy as np
from numba import njit


def margins(loads: np.ndarray) -> np.ndarray:
    """m_g = max_h s_h - s_g for a (G,) vector, or per horizon column of a (G, H+1) array."""
    s = np.asarray(loads, dtype=np.float64)
    return s.max(axis=0) - s


def f_score(ds: np.ndarray | float, margin: np.ndarray | float, G: int) -> np.ndarray:
    """F_g = Ds - G*(Ds - m_g)^+ (elementwise): the imbalance reduction of adding Ds to one worker."""
    ds = np.asarray(ds, dtype=np.float64)
    return ds - G * np.maximum(ds - np.asarray(margin, dtype=np.float64), 0.0)


def joint_delta_imbalance(D: np.ndarray, m: np.ndarray) -> float:
    """DI = G*max_g (D_g - m_g)^+ - sum_g D_g for loads D_g added to all G workers in one step."""
    D = np.asarray(D, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    G = len(D)
    return float(G * max(float(np.max(D - m)), 0.0) - D.sum())


def joint_value(D: np.ndarray, m: np.ndarray) -> float:
    """-DI: the joint F-score of a whole step's placement (what br0 maximises)."""
    return -joint_delta_imbalance(D, m)


def imbalance(loads: np.ndarray) -> float:
    """I = G*max_g s_g - sum_g s_g (load units), so that joint_delta_imbalance = I(s + D) - I(s)."""
    s = np.asarray(loads, dtype=np.float64)
    return float(len(s) * s.max() - s.sum())


def discount_weights(horizon: int, gamma: float) -> np.ndarray:
    """gamma^h for h = 0..H."""
    return float(gamma) ** np.arange(int(horizon) + 1, dtype=np.float64)


def horizon_value(D: np.ndarray, m: np.ndarray, gamma: float) -> float:
    """V^H = sum_h gamma^h [sum_g D_g(h) - G*max_g (D_g(h) - m_g(h))^+] for (G, H+1) arrays."""
    D = np.asarray(D, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    if D.ndim == 1:
        D, m = D[:, None], m[:, None]
    G, H1 = D.shape
    over = np.maximum((D - m).max(axis=0), 0.0)
    return float(discount_weights(H1 - 1, gamma) @ (D.sum(axis=0) - G * over))


def predicted_loads(q_running: np.ndarray, l_running: np.ndarray, worker: np.ndarray, G: int,
                    base: np.ndarray | None = None) -> np.ndarray:
    """s_g(h) = sum over R_g of q_i(h)*(l_i + h) (+ base_g, e.g. tokens committed to prefill): (G, H+1)."""
    q = np.ascontiguousarray(q_running, dtype=np.float64)
    if q.ndim != 2:
        q = q.reshape(len(q), -1)
    out = _predicted_loads(q, np.ascontiguousarray(l_running, np.float64),
                           np.ascontiguousarray(worker, np.int64), int(G))
    if base is not None:
        out += np.asarray(base, np.float64)[:, None]
    return out


@njit(cache=True, nogil=True)
def _predicted_loads(q, l, worker, G):  # pragma: no cover - compiled
    R, H1 = q.shape
    out = np.zeros((G, H1))
    for i in range(R):
        g = worker[i]
        for h in range(H1):
            out[g, h] += q[i, h] * (l[i] + h)
    return out


def admitted_loads(q_candidates: np.ndarray, prompt: np.ndarray) -> np.ndarray:
    """a_i(h) = q_i(h)*(p_i + h): what admitting candidate i adds to its worker h steps ahead."""
    q = np.asarray(q_candidates, dtype=np.float64)
    return q * (np.asarray(prompt, np.float64)[:, None] + np.arange(q.shape[1]))


def lifetime_loads(c_running: np.ndarray, l_running: np.ndarray, worker: np.ndarray, G: int,
                   base: np.ndarray | None = None, horizon: int = 0) -> np.ndarray:
    """BR-H's paper form: L_g(h) = sum over R_g of (l_i + h) * clip(c_i - h, 0, 1), h = 0..H.

    c_i = E[min(r_i, H+1)] (= sum_h q_i(h)) is the predicted number of the next H+1 steps request i
    still runs; it is taken to run exactly that long (fractionally in its last step). (G, H+1).
    """
    out = _lifetime_loads(np.ascontiguousarray(c_running, np.float64),
                          np.ascontiguousarray(l_running, np.float64),
                          np.ascontiguousarray(worker, np.int64), int(G), int(horizon) + 1)
    if base is not None:
        out += np.asarray(base, np.float64)[:, None]
    return out


@njit(cache=True, nogil=True)
def _lifetime_loads(c, l, worker, G, H1):  # pragma: no cover - compiled
    out = np.zeros((G, H1))
    for i in range(len(c)):
        g = worker[i]
        for h in range(H1):
            x = c[i] - h
            if x <= 0.0:
                break
            out[g, h] += (l[i] + h) * (x if x < 1.0 else 1.0)
    return out


@njit(cache=True, nogil=True)
def envelope(L: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """M_h = max_g L[g, h] for a (G, H1) predicted-load matrix (numba has no axis= for max)."""
    G, H1 = L.shape
    M = np.empty(H1)
    for h in range(H1):
        M[h] = L[0, h]
        for g in range(1, G):
            if L[g, h] > M[h]:
                M[h] = L[g, h]
    return M
