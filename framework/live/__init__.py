"""backend=live: drive a real OpenAI-compatible DP deployment with any registered policy (docs/live.md).

config (typed backend configs), state (the router's per-rank accounting, seen through ClusterView),
client (one pinned streamed request), metrics (/metrics scraping), health (ranks marked down and
probed), router (the real-time loop and its faults), recorder (samples and tokens), run (the run folder),
engine + emulator (a G-rank lockstep deployment emulator for tests and demos).
"""
