"""The timing loop every scenario shares: warm-up runs, then at least N iterations and at least T seconds.

A step receives a `Laps` stopwatch and calls ``laps.lap(stage)`` after each stage it wants timed on its own
(for example "features" then "classifier"); the device is synchronised before every reading, so work queued
on a GPU is counted in the stage that queued it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Synchronize = Callable[[], None]


def _no_sync() -> None:
    return None


@dataclass(frozen=True)
class TimingConfig:
    """Warm-up iterations (not recorded), then at least `min_iterations` and at least `min_seconds` of
    recorded iterations, stopping at `max_iterations` or `max_seconds` whichever comes first."""

    warmup: int = 2
    min_iterations: int = 10
    min_seconds: float = 1.0
    max_iterations: int = 100_000
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_iterations < 1 or self.max_iterations < self.min_iterations:
            raise ValueError(f"invalid timing settings {self}: need warmup >= 0, 1 <= min_iterations <= "
                             "max_iterations")
        if self.min_seconds < 0 or self.max_seconds < self.min_seconds:
            raise ValueError(f"invalid timing settings {self}: need 0 <= min_seconds <= max_seconds")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Laps:
    """A stopwatch for one iteration: `lap(name)` records the time since the previous lap under `name`."""

    def __init__(self, synchronize: Synchronize = _no_sync) -> None:
        self._synchronize = synchronize
        self._synchronize()
        self.started = self._last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        self._synchronize()
        now = time.perf_counter()
        self.stages[name] = self.stages.get(name, 0.0) + now - self._last
        self._last = now

    def total(self) -> float:
        return self._last - self.started


@dataclass
class Measurement:
    """Seconds per recorded iteration, in total and per stage (stages only when the step lapped them)."""

    totals: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    items: list[int] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.totals)


Step = Callable[[int, Laps], int]
"""A step runs iteration `index` and returns how many items (clips) it processed."""


def measure(step: Step, config: TimingConfig, synchronize: Synchronize = _no_sync) -> Measurement:
    """Run `step` for warm-up, then until both minimums are met (or a maximum is reached)."""
    for index in range(config.warmup):
        step(index, Laps(synchronize))
    result = Measurement()
    began = time.perf_counter()
    index = config.warmup
    while True:
        laps = Laps(synchronize)
        items = step(index, laps)
        if not laps.stages:
            laps.lap("total")
        result.totals.append(laps.total())
        result.items.append(items)
        for name, seconds in laps.stages.items():
            result.stages.setdefault(name, []).append(seconds)
        index += 1
        elapsed = time.perf_counter() - began
        if result.iterations >= config.max_iterations or elapsed >= config.max_seconds:
            break
        if result.iterations >= config.min_iterations and elapsed >= config.min_seconds:
            break
    if len(result.stages) == 1:  # one stage is the total itself
        result.stages = {}
    return result
