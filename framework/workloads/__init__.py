"""Workload sources: Azure traces (2023/2024), Mooncake jsonl, lengths tables with synthetic arrivals,
and the embedded synthetic default. The runner calls ``load_workload(cfg, seed)``; code builds a config
with ``workload_config(kind, **options)``.
"""
from framework.workloads.config import WorkloadConfig, workload_config
from framework.workloads.loader import SOURCES, load_workload
from framework.workloads.presets import PRESETS

__all__ = ["load_workload", "workload_config", "WorkloadConfig", "SOURCES", "PRESETS"]
