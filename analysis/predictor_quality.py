"""How good a termination predictor is, in the paper's two numbers (DESIGN.md section 9).

For every test request and every age d = 0, stride, 2*stride, ... < o (tokens already decoded), the
predictor gives q(h) = P(still runs h steps ahead), h = 0..H. With r = o - d the steps left:
- AUC of "finishes within H" (r <= H), score 1 - q(H), over all (request, age) pairs (Mann-Whitney);
- MAE of the remainder: |E[r | r <= H] - r| over the pairs that do finish within H, with
  E[r | r <= H] = sum_{h=1..H} h (q(h-1) - q(h)) / (1 - q(H)) (our reading of "MAE of the remainder").
The paper reports, on Azure 2024 conv, Survival 0.993 / 5.4 and ExactMatch 0.995 / 5.4.

    python -m analysis.predictor_quality --dataset conv --horizon 80
    python -m analysis.predictor_quality --path trace.jsonl      # a Mooncake file (hash_ids: ExactMatch keys)

ExactMatch keys on prompt hashes (Mooncake hash_ids, a CSV hash column); the shared Azure traces have
none, so there it equals Survival.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import rankdata

from framework.classifier import make_classifier
from framework.oracle import OracleChannel
from framework.policy import PolicyContext
from framework.state import ClusterState
from framework.view import ClusterView
from framework.workload import Workload


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), via the rank-sum statistic."""
    label = np.asarray(label, bool)
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def predictor_quality(name: str, train: Workload, test: Workload, horizon: int = 80, stride: int = 16,
                      **params) -> dict[str, float]:
    """AUC and MAE of classifier ``name`` fitted on ``train``, evaluated on ``test`` (see module doc)."""
    ctx = PolicyContext(workers=1, max_running=np.array([10**9]), kv_capacity=np.array([10**12]),
                        training=train, oracle_channel=OracleChannel(test.output_tokens))
    clf = make_classifier(name, ctx, **params)
    o, p, H = test.output_tokens, test.prompt_tokens, int(horizon)
    scores, labels, errs = [], [], []
    for d in range(0, int(o.max()), int(stride)):
        ids = np.flatnonzero(o > d)
        state = ClusterState.build(step=0, now_s=0.0, max_running=[10**9], kv_capacity=[10**12],
                                   prompt=p, running=[(int(i), 0, d) for i in ids], keys=test.prompt_key)
        q = clf.survival(ClusterView(state), H, np.empty(0, np.int64)).running
        r = o[ids] - d
        fin = 1.0 - q[:, H]
        scores.append(fin)
        labels.append(r <= H)
        ok = (r <= H) & (fin > 0)
        pmf = q[:, :-1] - q[:, 1:]  # P(r = h), h = 1..H
        cond = (pmf * np.arange(1, H + 1)).sum(axis=1)[ok] / fin[ok]
        errs.append(np.abs(cond - r[ok]))
    return {"predictor": name, "auc": auc(np.concatenate(scores), np.concatenate(labels)),
            "mae": float(np.concatenate(errs).mean()), "pairs": int(sum(len(s) for s in scores)),
            "horizon": H}


def _split(dataset: str, min_out: int | None, n: int, seed: int, path: str | None = None
           ) -> tuple[Workload, Workload]:
    from framework.workloads import load_workload, workload_config

    if path:
        kind = "mooncake" if path.endswith((".jsonl", ".json")) else "trace"
        cfg = workload_config(kind=kind, path=path, min_output_tokens=min_out, max_requests=n,
                              train_fraction=0.0)
    else:
        preset = {"conv": "azure_conv_2023", "code": "azure_code_2023", "conv2024": "azure_conv_2024"}[dataset]
        cfg = workload_config(kind="trace", preset=preset, min_output_tokens=min_out, max_requests=n,
                              train_fraction=0.0)
    w = load_workload(cfg, seed)
    half = len(w) // 2  # the head is the history, the tail is predicted
    return w.take(slice(0, half)), w.take(slice(half, None))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="conv", choices=["conv", "code", "conv2024"])
    ap.add_argument("--min-output", type=int, default=None, help="keep outputs >= this (paper: 1000)")
    ap.add_argument("--requests", type=int, default=8000)
    ap.add_argument("--horizon", type=int, default=80)
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--path", default=None, help="a Mooncake jsonl or trace CSV instead of --dataset")
    a = ap.parse_args(argv)
    train, test = _split(a.dataset, a.min_output, a.requests, 0, a.path)
    for name in ("survival", "exact_match", "noisy_oracle", "oracle"):
        print(json.dumps(predictor_quality(name, train, test, a.horizon, a.stride)))


if __name__ == "__main__":
    main()
