"""Workload sources: Azure traces (2023/2024), Mooncake jsonl, lengths tables with synthetic arrivals,
and the embedded synthetic default. The runner calls ``load_workload(cfg, seed)``.
"""
from framework.workloads.loader import check_config, load_workload
from framework.workloads.presets import PRESETS

__all__ = ["load_workload", "check_config", "PRESETS"]
