"""BR-0's two decompositions against exhaustive search on small random states; prints one JSON object.

    python benchmarks/decomposition_gap.py --states 300

Per state (G <= 3 workers, N <= 6 candidates, 0-3 free slots each, work-conserving, KV never binding)
the joint F-score of each decomposition's placement is compared with the best over every placement
(tests/test_br0.py: exhaustive); gap = (optimum - value) / the candidates' prompt tokens.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.test_twostage import gaps  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--states", type=int, default=300)
    ap.add_argument("--seed", type=int, default=12345)
    a = ap.parse_args()
    out = {}
    for dec in ("paper", "envelope"):
        g = gaps(dec, a.states, a.seed)
        out[dec] = {"exact_rate": float((g < 1e-12).mean()), "mean_gap": float(g.mean()),
                    "max_gap": float(g.max())}
    print(json.dumps({"states": a.states, "seed": a.seed, **out}))


if __name__ == "__main__":
    main()
