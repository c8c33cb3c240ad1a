"""Benchmark results built from known numbers, for the schema and leaderboard tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import environment
from benchmarks.results import BenchResults
from benchmarks.stats import summarize
from zoo.metrics import scores


def record(model: str, runtime: str, device: str, scenario: str, *, correct: int, p50: float) -> dict[str, Any]:
    """A record whose accuracy is `correct` of 12 clips and whose latency samples centre on `p50` ms."""
    truth = np.arange(12) % 6
    predicted = truth.copy()
    predicted[correct:] = (predicted[correct:] + 1) % 6
    samples = [p50 * f for f in (0.9, 0.95, 1.0, 1.05, 1.3)]
    entry: dict[str, Any] = {
        "model": model, "runtime": runtime, "device": device, "scenario": scenario,
        "batch_size": 1 if scenario == "single-stream" else 8, "accuracy": scores(truth, predicted),
        "latency_ms": summarize(samples), "samples_ms": samples, "size_bytes": 1000, "iterations": 5,
    }
    if scenario == "offline":
        entry["throughput"] = {"clips_per_second": 8000 / p50, "real_time_factor": p50 / 16000, "clips": 40,
                               "audio_seconds": 80.0, "wall_seconds": 40 * p50 / 8000}
    return entry


def results(rows: list[tuple[str, str, str, int, float]], **environment_changes: Any) -> BenchResults:
    """(model, runtime, device, correct of 12, p50 ms) per row; both scenarios for each."""
    records = [record(m, r, d, s, correct=c, p50=p) for m, r, d, c, p in rows for s in ("single-stream", "offline")]
    env = {**environment.capture(), **environment_changes}
    env["machine_id"] = environment.machine_id(env)
    return BenchResults(environment=env, records=records,
                        skipped=[{"model": rows[0][0], "runtime": "int8", "device": "cuda", "reason": "no GPU"}],
                        settings={"data": {"source": "synthetic", "test_clips": 12, "test_speakers": ["a", "b"]}})
