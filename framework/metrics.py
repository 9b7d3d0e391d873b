"""Run-level metrics from the step and request logs (DESIGN.md section 2); the run summary uses them.

avg_dp_imbalance: mean over steps with load of (max_g s_g - mean_g s_g) / max_g s_g (0 = perfect).
balance_ratio: mean over steps with load of mean_g s_g / max_g s_g (TensorRT-LLM's form).
idle_fraction: sum_k sum_g (T_k - t_g) / sum_k G*T_k (time-weighted wasted compute).
imbalance_tokens: sum_k (G*max_g s_g - sum_g s_g), the load-unit objective J of analysis.objective.
imbalance_tokens_mean / max_min_tokens_mean: the papers' per-step means, in KV tokens, of G*max - sum
and of max - min over steps with load (the BalanceRoute summaries report one or the other); each also
``*_to_last_admit``: over steps 0..last admission only, BF-IO's cut, which leaves out the drain after
the pool empties (there every policy is reduced to waiting for the last requests).
"""
from __future__ import annotations

import numpy as np


def imbalance_metrics(load: np.ndarray, compute: np.ndarray, duration: np.ndarray) -> dict[str, float]:
    """Imbalance figures from per-step arrays: load (K,G), compute t_g (K,G), duration T (K,)."""
    K, G = load.shape if load.ndim == 2 else (0, 0)
    out = {"avg_dp_imbalance": float("nan"), "balance_ratio": float("nan"), "idle_fraction": float("nan"),
           "imbalance_tokens": 0.0, "steps_with_load": 0}
    if K == 0:
        return out
    mx = load.max(axis=1).astype(np.float64)
    mean = load.mean(axis=1)
    has = mx > 0
    out["steps_with_load"] = int(has.sum())
    if has.any():
        out["avg_dp_imbalance"] = float(np.mean((mx[has] - mean[has]) / mx[has]))
        out["balance_ratio"] = float(np.mean(mean[has] / mx[has]))
    out["imbalance_tokens"] = float(np.sum(G * mx - load.sum(axis=1)))
    total = float(np.sum(G * duration))
    out["idle_fraction"] = float(np.sum(duration[:, None] - compute) / total) if total > 0 else 0.0
    return out


def paper_imbalance_metrics(load: np.ndarray, last_admit_step: int | None = None) -> dict[str, float]:
    """Per-step means of G*max - sum and max - min, in tokens, over steps with load; and to the cut.

    load is the (K, G) per-step load matrix; last_admit_step the step of the last admission (None or
    < 0: no cut is possible and the *_to_last_admit figures are NaN). The cut keeps steps 0..last
    admission, loaded or not, as BF-IO's evaluation does.
    """
    nan = float("nan")
    out = {"imbalance_tokens_mean": nan, "max_min_tokens_mean": nan,
           "imbalance_tokens_mean_to_last_admit": nan, "max_min_tokens_mean_to_last_admit": nan}
    if load.ndim != 2 or load.shape[0] == 0:
        return out
    G = load.shape[1]
    mx = load.max(axis=1).astype(np.float64)
    imb = G * mx - load.sum(axis=1)
    spread = mx - load.min(axis=1)
    has = mx > 0
    if has.any():
        out["imbalance_tokens_mean"] = float(imb[has].mean())
        out["max_min_tokens_mean"] = float(spread[has].mean())
    if last_admit_step is not None and last_admit_step >= 0:
        cut = min(int(last_admit_step) + 1, len(imb))
        out["imbalance_tokens_mean_to_last_admit"] = float(imb[:cut].mean())
        out["max_min_tokens_mean_to_last_admit"] = float(spread[:cut].mean())
    return out


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def latency_samples(arrival_s: np.ndarray, first_token_s: np.ndarray, finish_s: np.ndarray,
                    output_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TTFT of every completed request and TPOT of those with more than one output token (id order)."""
    done = np.isfinite(finish_s)
    ttft = first_token_s[done] - arrival_s[done]
    multi = done & (output_tokens > 1)
    tpot = (finish_s[multi] - first_token_s[multi]) / (output_tokens[multi] - 1)
    return ttft, tpot


def latency_metrics(arrival_s: np.ndarray, first_token_s: np.ndarray, finish_s: np.ndarray,
                    output_tokens: np.ndarray) -> dict[str, float]:
    """TTFT, TPOT percentiles and token throughput over completed requests."""
    done = np.isfinite(finish_s)
    ttft, tpot = latency_samples(arrival_s, first_token_s, finish_s, output_tokens)
    span = (np.nanmax(finish_s) - arrival_s.min()) if done.any() else 0.0
    return latency_from_samples(ttft, tpot, output_tokens[done].sum(), span)


def latency_from_samples(ttft: np.ndarray, tpot: np.ndarray, tokens_done: np.integer,
                         span: float) -> dict[str, float]:
    """The figures of ``latency_metrics`` from its samples (what a streamed run keeps per request)."""
    return {
        "ttft_p50_s": _pct(ttft, 50), "ttft_p99_s": _pct(ttft, 99), "ttft_mean_s": float(ttft.mean()) if len(ttft) else float("nan"),
        "tpot_p50_s": _pct(tpot, 50), "tpot_p99_s": _pct(tpot, 99),
        "throughput_tokens_per_s": float(tokens_done / span) if span > 0 else float("nan"),
        "makespan_s": float(span),
    }


def decision_metrics(decision_ns: np.ndarray) -> dict[str, float]:
    ms = decision_ns / 1e6
    return {"decision_ms_p50": _pct(ms, 50), "decision_ms_p99": _pct(ms, 99),
            "decision_ms_max": float(ms.max()) if len(ms) else float("nan"), "decisions": int(len(ms))}


def imbalance_from_accumulators(acc: dict, workers: int) -> dict[str, float]:
    """The imbalance figures of ``imbalance_metrics`` from the step core's running sums.

    Used when the run kept no per-(step, worker) table (record=steps|sampled|summary). The sums are
    sequential where numpy's are pairwise, so the figures agree with the table's to rounding (~1e-12
    relative), not bit for bit.
    """
    n = int(acc["steps_with_load"])
    out = {"avg_dp_imbalance": float("nan"), "balance_ratio": float("nan"), "idle_fraction": float("nan"),
           "imbalance_tokens": float(acc["imbalance_tokens"]), "steps_with_load": n}
    if n:
        out["avg_dp_imbalance"] = acc["sum_imbalance"] / n
        out["balance_ratio"] = acc["sum_balance"] / n
    total = acc["sum_GT"]
    out["idle_fraction"] = acc["sum_idle"] / total if total > 0 else (0.0 if workers else float("nan"))
    return out
