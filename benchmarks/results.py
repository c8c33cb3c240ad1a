"""The versioned JSON results file: one record per model / runtime / device / scenario, plus the environment.

Layout (schema_version 1)::

    {"format": "emozoo-bench", "schema_version": 1, "created": ISO time,
     "environment": {...see benchmarks.environment.capture...},
     "settings": {"data": ..., "timing": {...}, "offline_batch_size": N, ...},
     "records": [{"model", "runtime", "device", "scenario", "batch_size", "latency_ms": {p50, p90, p99, mean,
                  stdev, min, max, n}, "accuracy": {...zoo.metrics.scores...} | null, ...}],
     "skipped": [{"model", "runtime", "device", "reason"}]}

Offline records add ``throughput`` (clips_per_second, real_time_factor, clips, audio_seconds, wall_seconds).
Records of ``emozoo bench --robustness`` add ``robustness`` (benchmarks.robustness.score_robustness:
``conditions`` [{id, family, accuracy, uar, drop_accuracy, drop_uar, ...}], ``families`` {family: {drop_accuracy,
drop_uar}}, ``runtime`` and ``device`` it was scored on); files without it stay valid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.errors import EmozooError
from zoo.storage import atomic_write_json

FORMAT = "emozoo-bench"
SCHEMA_VERSION = 1
RUNTIMES = ("native", "onnx", "int8")
DEVICES = ("cpu", "cuda")
SCENARIOS = ("single-stream", "offline")
LATENCY_KEYS = ("n", "mean", "stdev", "min", "max", "p50", "p90", "p99")
THROUGHPUT_KEYS = ("clips_per_second", "real_time_factor", "clips", "audio_seconds", "wall_seconds")
ACCURACY_KEYS = ("accuracy", "uar", "macro_f1", "per_class_recall", "confusion", "n")
ROBUSTNESS_KEYS = ("accuracy", "uar", "drop_accuracy", "drop_uar")


class ResultsError(EmozooError):
    """A results file that is not valid emozoo benchmark JSON."""


@dataclass
class BenchResults:
    environment: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "created": self.created,
                "environment": self.environment, "settings": self.settings, "records": self.records,
                "skipped": self.skipped}

    def write(self, path: str | os.PathLike[str]) -> Path:
        document = self.as_dict()
        validate(document, str(path))
        return atomic_write_json(path, document)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise ResultsError(f"{where}: a record must be a JSON object")
    for key in ("model", "runtime", "device", "scenario"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ResultsError(f"{where}: {key!r} must be a non-empty string")
    label = f"{where} ({record['model']} {record['runtime']} {record['device']} {record['scenario']})"
    if record["runtime"] not in RUNTIMES:
        raise ResultsError(f"{label}: runtime {record['runtime']!r} is not one of {', '.join(RUNTIMES)}")
    if record["device"] not in DEVICES:
        raise ResultsError(f"{label}: device {record['device']!r} is not one of {', '.join(DEVICES)}")
    if record["scenario"] not in SCENARIOS:
        raise ResultsError(f"{label}: scenario {record['scenario']!r} is not one of {', '.join(SCENARIOS)}")
    if not isinstance(record.get("batch_size"), int) or record["batch_size"] < 1:
        raise ResultsError(f"{label}: batch_size must be a positive integer")
    latency = record.get("latency_ms")
    if not isinstance(latency, dict) or any(not _number(latency.get(k)) for k in LATENCY_KEYS):
        raise ResultsError(f"{label}: latency_ms must hold numbers {', '.join(LATENCY_KEYS)}")
    for stage, summary in (record.get("stages_ms") or {}).items():
        if not isinstance(summary, dict) or any(not _number(summary.get(k)) for k in LATENCY_KEYS):
            raise ResultsError(f"{label}: stages_ms[{stage!r}] must hold numbers {', '.join(LATENCY_KEYS)}")
    if record["scenario"] == "offline":
        throughput = record.get("throughput")
        if not isinstance(throughput, dict) or any(not _number(throughput.get(k)) for k in THROUGHPUT_KEYS):
            raise ResultsError(f"{label}: an offline record needs throughput with {', '.join(THROUGHPUT_KEYS)}")
    accuracy = record.get("accuracy")
    if accuracy is not None:
        if not isinstance(accuracy, dict) or any(k not in accuracy for k in ACCURACY_KEYS):
            raise ResultsError(f"{label}: accuracy must be null or hold {', '.join(ACCURACY_KEYS)}")
        confusion = accuracy["confusion"]
        if not (isinstance(confusion, list) and all(isinstance(r, list) and len(r) == len(confusion)
                                                    for r in confusion)):
            raise ResultsError(f"{label}: accuracy.confusion must be a square list of lists")
    if record.get("robustness") is not None:
        _check_robustness(record["robustness"], label)
    samples = record.get("samples_ms", [])
    if not isinstance(samples, list) or not all(_number(s) for s in samples):
        raise ResultsError(f"{label}: samples_ms must be a list of numbers")


def _check_robustness(robustness: Any, label: str) -> None:
    conditions = robustness.get("conditions") if isinstance(robustness, dict) else None
    if not isinstance(conditions, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("family"), str)
            and all(_number(c.get(k)) for k in ROBUSTNESS_KEYS) for c in conditions):
        raise ResultsError(f"{label}: robustness.conditions must be a list of objects with id, family and numbers "
                           f"{', '.join(ROBUSTNESS_KEYS)}")
    families = robustness.get("families")
    if not isinstance(families, dict) or not all(
            isinstance(v, dict) and _number(v.get("drop_accuracy")) and _number(v.get("drop_uar"))
            for v in families.values()):
        raise ResultsError(f"{label}: robustness.families must map families to drop_accuracy and drop_uar")


def validate(document: Any, source: str = "results") -> None:
    """Raise ResultsError naming `source` and the first problem found."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ResultsError(f"{source}: not an emozoo benchmark results file (format {FORMAT!r} expected)")
    version = document.get("schema_version")
    if not isinstance(version, int):
        raise ResultsError(f"{source}: schema_version is missing")
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{source}: schema_version {version} is newer than this emozoo reads ({SCHEMA_VERSION}); "
                           "upgrade emozoo")
    if not isinstance(document.get("environment"), dict) or "machine_id" not in document["environment"]:
        raise ResultsError(f"{source}: environment (with machine_id) is missing")
    records = document.get("records")
    if not isinstance(records, list):
        raise ResultsError(f"{source}: records must be a list")
    seen = set()
    for number, record in enumerate(records):
        _check_record(record, f"{source}: record {number}")
        key = (record["model"], record["runtime"], record["device"], record["scenario"])
        if key in seen:
            raise ResultsError(f"{source}: record {number} repeats {' / '.join(key)}")
        seen.add(key)
    if not isinstance(document.get("skipped", []), list):
        raise ResultsError(f"{source}: skipped must be a list")


def load(path: str | os.PathLike[str]) -> BenchResults:
    """Read and validate a results file."""
    target = Path(path)
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{target}: no such results file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{target}: not readable JSON ({error})") from None
    validate(document, str(target))
    return BenchResults(environment=document["environment"], records=document["records"],
                        skipped=document.get("skipped", []), settings=document.get("settings", {}),
                        created=document.get("created", ""), source=str(target))
