"""How many processes a tool should start by default: the CPUs this process may run on, capped.

Why affinity and not os.cpu_count(): under a container or `taskset` the machine may have many CPUs while
this process may use two; starting more processes than that only makes them take turns.
"""
from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process is allowed to run on (all of them where affinity is not available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_jobs(cap: int = 2) -> int:
    """Processes to start by default: the usable CPUs, at most ``cap``."""
    return max(1, min(cap, usable_cpus()))
