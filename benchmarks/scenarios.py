"""MLPerf-style scenarios over decoded clips (decoding happens before, outside every timed region).

single-stream: one clip per query, latency of each query (p50/p90/p99, mean, stdev), stages separately.
offline: batches of N clips, throughput in clips per second and the real-time factor (processing time per
second of audio; below 1 is faster than real time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from benchmarks.stats import summarize
from benchmarks.timing import Laps, Measurement, TimingConfig, measure

MAX_KEPT_SAMPLES = 2000


class TimedRunner(Protocol):
    sample_rate: int

    def timed(self, waveforms: Sequence[np.ndarray], laps: Laps) -> None: ...

    def synchronize(self) -> None: ...


def _milliseconds(seconds: Sequence[float]) -> list[float]:
    return [s * 1000.0 for s in seconds]


def _summaries(measurement: Measurement) -> dict[str, Any]:
    totals = _milliseconds(measurement.totals)
    return {
        "iterations": measurement.iterations,
        "latency_ms": summarize(totals),
        "stages_ms": {name: summarize(_milliseconds(v)) for name, v in measurement.stages.items()},
        "samples_ms": [round(v, 4) for v in totals[:MAX_KEPT_SAMPLES]],
    }


def single_stream(runner: TimedRunner, clips: Sequence[np.ndarray], config: TimingConfig) -> dict[str, Any]:
    """Batch 1: the clips in turn, one query at a time."""
    if not clips:
        raise ValueError("single-stream needs at least one clip")
    used: list[int] = []

    def step(index: int, laps: Laps) -> int:
        runner.timed([clips[index % len(clips)]], laps)
        used.append(index % len(clips))
        return 1

    measurement = measure(step, config, runner.synchronize)
    recorded = used[config.warmup:]
    audio = sum(clips[i].shape[0] for i in recorded) / runner.sample_rate
    return {"scenario": "single-stream", "batch_size": 1, **_summaries(measurement),
            "audio_seconds_mean": audio / len(recorded)}


def offline(runner: TimedRunner, clips: Sequence[np.ndarray], batch_size: int,
            config: TimingConfig) -> dict[str, Any]:
    """Batch N: consecutive batches of the clips; throughput over every recorded batch."""
    if not clips:
        raise ValueError("offline needs at least one clip")
    if batch_size < 1:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    batches = [list(clips[i:i + batch_size]) for i in range(0, len(clips), batch_size)]
    audio_per_batch: list[float] = []

    def step(index: int, laps: Laps) -> int:
        batch = batches[index % len(batches)]
        runner.timed(batch, laps)
        audio_per_batch.append(sum(c.shape[0] for c in batch) / runner.sample_rate)
        return len(batch)

    measurement = measure(step, config, runner.synchronize)
    wall = sum(measurement.totals)
    processed = sum(measurement.items)
    audio = sum(audio_per_batch[config.warmup:])
    return {
        "scenario": "offline", "batch_size": batch_size, **_summaries(measurement),
        "throughput": {"clips_per_second": processed / wall, "real_time_factor": wall / audio, "clips": processed,
                       "audio_seconds": audio, "wall_seconds": wall},
    }
