"""``python -m analysis.offline``: the offline optimum's command line (analysis.offline.cli)."""
import sys

from analysis.offline.cli import main

sys.exit(main())
