"""Benchmarks: `emozoo bench` (accuracy on held-out speakers, single-stream latency and offline throughput of
every model, runtime and device) and `emozoo leaderboard` (Markdown and HTML from its results files)."""
