"""Kept so ``python -m analysis.offline_optimum`` and old imports work; the code is in analysis/offline/."""
import sys

from analysis.offline.cli import main, read_instance, stdout_to_stderr  # noqa: F401
from analysis.offline.solve import SOLVER_REVISION, OfflineResult, solve_offline  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
