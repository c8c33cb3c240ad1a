"""Summary statistics of timing samples: percentiles (linear interpolation), mean, sample standard deviation."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 90, 99)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default method)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(float(s) for s in samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("mean of no samples")
    return math.fsum(samples) / len(samples)


def stdev(samples: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); 0 for a single sample."""
    if not samples:
        raise ValueError("standard deviation of no samples")
    if len(samples) == 1:
        return 0.0
    centre = mean(samples)
    return math.sqrt(math.fsum((s - centre) ** 2 for s in samples) / (len(samples) - 1))


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """n, mean, stdev, min, max and p50/p90/p99 of `samples`."""
    summary: dict[str, float] = {
        "n": len(samples), "mean": mean(samples), "stdev": stdev(samples),
        "min": float(min(samples)), "max": float(max(samples)),
    }
    for q in PERCENTILES:
        summary[f"p{q}"] = percentile(samples, q)
    return summary
