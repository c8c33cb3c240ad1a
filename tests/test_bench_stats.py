"""Statistics and the timing loop of the benchmark harness."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.stats import mean, percentile, stdev, summarize
from benchmarks.timing import Laps, TimingConfig, measure


def test_percentiles_of_one_to_ten() -> None:
    samples = list(range(1, 11))
    assert percentile(samples, 50) == pytest.approx(5.5)
    assert percentile(samples, 90) == pytest.approx(9.1)
    assert percentile(samples, 99) == pytest.approx(9.91)
    assert percentile(samples, 0) == 1 and percentile(samples, 100) == 10


def test_percentiles_ignore_order_and_interpolate() -> None:
    assert percentile([40, 10, 30, 20], 50) == pytest.approx(25.0)
    assert percentile([40, 10, 30, 20], 25) == pytest.approx(17.5)
    assert percentile([7.0], 99) == 7.0


def test_mean_and_sample_standard_deviation() -> None:
    samples = [2, 4, 4, 4, 5, 5, 7, 9]
    assert mean(samples) == 5.0
    assert stdev(samples) == pytest.approx(np.sqrt(32 / 7))  # n - 1 denominator
    assert stdev([3.0]) == 0.0


def test_summary_holds_every_statistic() -> None:
    summary = summarize([1.0, 2.0, 3.0, 4.0])
    assert summary == pytest.approx({"n": 4, "mean": 2.5, "stdev": np.std([1, 2, 3, 4], ddof=1), "min": 1.0,
                                     "max": 4.0, "p50": 2.5, "p90": 3.7, "p99": 3.97})


def test_empty_samples_and_bad_percentiles_are_refused() -> None:
    for function in (mean, stdev, summarize):
        with pytest.raises(ValueError):
            function([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpy(samples: list[float], q: float) -> None:
    assert percentile(samples, q) == pytest.approx(float(np.percentile(samples, q)), rel=1e-9, abs=1e-6)


def test_measure_meets_minimum_iterations_and_duration() -> None:
    calls: list[int] = []

    def step(index: int, laps: Laps) -> int:
        calls.append(index)
        time.sleep(0.002)
        return 1

    result = measure(step, TimingConfig(warmup=3, min_iterations=5, min_seconds=0.05))
    assert calls[:3] == [0, 1, 2]  # warm-up runs come first and are not recorded
    assert result.iterations == len(calls) - 3 >= 5
    # the minimum duration is wall time of the loop; the laps' own totals leave out the loop's overhead
    assert sum(result.totals) >= 0.045
    assert all(t >= 0.002 for t in result.totals)


def test_measure_stops_at_the_maximum() -> None:
    result = measure(lambda i, laps: 1, TimingConfig(warmup=0, min_iterations=1, min_seconds=5.0,
                                                     max_iterations=20, max_seconds=5.0))
    assert result.iterations == 20


def test_stages_are_timed_separately_and_synchronised() -> None:
    synced: list[int] = []

    def step(index: int, laps: Laps) -> int:
        time.sleep(0.003)
        laps.lap("features")
        time.sleep(0.001)
        laps.lap("classifier")
        return 1

    result = measure(step, TimingConfig(warmup=1, min_iterations=4, min_seconds=0.0), lambda: synced.append(1))
    assert set(result.stages) == {"features", "classifier"}
    assert all(f > c for f, c in zip(result.stages["features"], result.stages["classifier"], strict=True))
    for total, features, classifier in zip(result.totals, result.stages["features"], result.stages["classifier"],
                                           strict=True):
        assert total == pytest.approx(features + classifier)
    assert len(synced) == 5 * 3  # start and each lap, warm-up included


def test_invalid_timing_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TimingConfig(min_iterations=0)
    with pytest.raises(ValueError):
        TimingConfig(min_seconds=10, max_seconds=1)
