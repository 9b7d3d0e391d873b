"""The numbers arXiv 2605.06113 reports (shared/DESIGN.md section 9), to draw beside the simulator's."""
from __future__ import annotations

# G = 8 table: (imbalance KV tokens, TPOT p95 ms, throughput tok/s) per trace
TABLE_G8 = {
    "production": {
        "random": (438_225, 85.2, 811), "round_robin": (254_798, 83.2, 847), "p2c": (262_940, 84.0, 836),
        "jsq": (215_110, 83.2, 843), "br0": (51_927, 79.3, 943), "brh_oracle": (23_577, 78.0, 1029),
        "brh_survival": (40_757, 78.7, 979), "brh_exact_match": (36_277, 78.8, 977)},
    "azure_2024": {
        "random": (146_564, 90.3, 706), "round_robin": (110_049, 89.1, 771), "p2c": (109_033, 89.3, 794),
        "jsq": (104_737, 89.3, 785), "br0": (54_051, 83.3, 854), "brh_oracle": (35_301, 77.3, 957),
        "brh_survival": (44_010, 82.1, 893), "brh_exact_match": (38_496, 82.3, 909)},
}
# scaling on the production trace, tok/s: G -> (best baseline, BR-0, BR-H oracle)
SCALING = {4: (366.4, 407.1, 415.3), 8: (846.7, 942.5, 1028.9), 16: (927.3, 1117.8, 1247.4)}
# beta x gamma sensitivity at G = 8 (oracle, H = 80): the reported range of throughput, tok/s
SENSITIVITY_RANGE = (945.0, 1043.0)
# predictor quality: trace -> predictor -> (AUC of "finishes within H", MAE of the remainder, steps)
PREDICTORS = {"azure": {"survival": (0.993, 5.4), "exact_match": (0.995, 5.4)},
              "production": {"survival": (0.700, 20.1), "exact_match": (0.974, 2.9)}}
HORIZON = 80
DECISION_MS_G8 = (1.20, 2.77)  # p50, p99
