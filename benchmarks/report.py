"""Leaderboard rows from benchmark records: one row per model / runtime / device / machine, the single-stream
and offline records joined, with the Pareto front of accuracy (UAR) against single-stream latency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.environment import describe_machine
from benchmarks.results import BenchResults


@dataclass
class Row:
    model: str
    runtime: str
    device: str
    machine: str
    gpu: str
    accuracy: dict[str, Any] | None = None
    single: dict[str, Any] | None = None
    offline: dict[str, Any] | None = None
    pareto: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.model} · {self.runtime} · {self.device}"

    def metric(self, name: str) -> float | None:
        if name in ("accuracy", "uar", "macro_f1"):
            return self.accuracy[name] if self.accuracy else None
        if name in ("ece", "brier"):  # calibration of the predicted probabilities (files since issue 16)
            return self.accuracy.get(name) if self.accuracy else None
        if name in ("p50", "p90", "p99", "mean", "stdev"):
            return self.single["latency_ms"][name] if self.single else None
        if name == "features_p50":
            stages = (self.single or {}).get("stages_ms") or {}
            return stages["features"]["p50"] if "features" in stages else None
        if name in ("clips_per_second", "real_time_factor"):
            return self.offline["throughput"][name] if self.offline else None
        if name == "batch_size":
            return self.offline["batch_size"] if self.offline else None
        if name == "size_mb":
            size = (self.single or self.offline or {}).get("size_bytes")
            return size / 2**20 if size else None
        if name == "train_seconds":
            return (self.single or self.offline or {}).get("train_seconds")
        if name.startswith("drop_"):  # drop_<family>: accuracy lost from clean, in points (robustness)
            family = (self.robustness or {}).get("families", {}).get(name[len("drop_"):])
            return 100 * family["drop_accuracy"] if family else None
        raise KeyError(name)


def build_rows(results: Sequence[BenchResults]) -> list[Row]:
    rows: dict[tuple[str, str, str, str], Row] = {}
    for result in results:
        machine = result.environment.get("machine_id", "?")
        gpus = ", ".join(g.get("name", "?") for g in result.environment.get("gpus", []))
        for record in result.records:
            key = (record["model"], record["runtime"], record["device"], machine)
            row = rows.setdefault(key, Row(*key, gpu=gpus if record["device"] == "cuda" else ""))
            row.accuracy = record.get("accuracy") or row.accuracy
            row.robustness = record.get("robustness") or row.robustness
            if record["scenario"] == "single-stream":
                row.single = record
            else:
                row.offline = record
    ordered = list(rows.values())
    mark_pareto(ordered)
    ordered.sort(key=lambda r: (-(r.metric("uar") or -1), r.metric("p50") or float("inf")))
    return ordered


def mark_pareto(rows: Sequence[Row]) -> None:
    """A row is on the front when no other row is at least as accurate (UAR) and at least as fast (p50),
    and strictly better in one of the two."""
    points = [(r, r.metric("uar"), r.metric("p50")) for r in rows]
    scored = [(r, u, p) for r, u, p in points if u is not None and p is not None]
    for row, uar, p50 in scored:
        row.pareto = not any((u >= uar and p <= p50) and (u > uar or p < p50) for _, u, p in scored)


def machines(results: Sequence[BenchResults]) -> dict[str, str]:
    """machine_id -> description, for every machine the results came from."""
    return {r.environment.get("machine_id", "?"): describe_machine(r.environment) for r in results}


def warnings_for(results: Sequence[BenchResults]) -> list[str]:
    found = []
    seen = machines(results)
    if len(seen) > 1:
        found.append("records come from different machines, so their latencies are not directly comparable: "
                     + "; ".join(f"{k}: {v}" for k, v in seen.items()))
    splits = {repr(r.settings.get("data", {}).get("test_speakers")) + str(r.settings.get("data", {}).get("source"))
              for r in results}
    if len(splits) > 1:
        found.append("records were scored on different data or test speakers, so their accuracies are not "
                     "directly comparable")
    for result in results:
        cores = result.environment.get("usable_cores") or 1
        loads = [v[0] for v in (result.environment.get("load_average_at_start"), result.environment.get("load_average"))
                 if v]
        if loads and max(loads) > cores:
            found.append(f"{result.source or 'results'}: the machine was busy while measuring (load average up to "
                         f"{max(loads):.1f} on {cores} cores), so its latencies are pessimistic")
    dirty = [r.source for r in results if r.environment.get("git", {}).get("dirty")]
    if dirty:
        found.append(f"measured from a working tree with uncommitted changes: {', '.join(dirty)}")
    return found


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def print_summary(results: BenchResults) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table("model", "runtime", "device", "UAR", "accuracy", "p50 ms", "p99 ms", "clips/s", "RTF",
                  title="emozoo bench")
    for row in build_rows([results]):
        table.add_row(row.model, row.runtime, row.device, fmt(row.metric("uar")), fmt(row.metric("accuracy")),
                      fmt(row.metric("p50"), 2), fmt(row.metric("p99"), 2), fmt(row.metric("clips_per_second"), 1),
                      fmt(row.metric("real_time_factor"), 4))
    # off a terminal (a log, a pipe) rich would cut the table to 80 columns: let it be as wide as it is
    Console(stderr=True, width=None if sys.stderr.isatty() else 1000).print(table)
