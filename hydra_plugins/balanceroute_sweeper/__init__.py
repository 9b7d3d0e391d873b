"""Hydra plugin: the resumable sweeper and the progress callback of BalanceRoute's sweeps."""
