"""Run metrics now live in framework.metrics (the run summary is built in framework); re-exported here."""
from framework.metrics import *  # noqa: F401,F403
from framework.metrics import decision_metrics, imbalance_metrics, latency_metrics, paper_imbalance_metrics  # noqa: F401
