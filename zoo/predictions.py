"""Per-clip held-out probabilities of an evaluation run, as a CSV that can be read back.

`emozoo cv --predictions-out` writes one row per clip and model run: who ran (model, its parameters), which
split held the clip out (the fold number, or the held-out corpus), the clip (path, corpus, speaker, true
label) and its six probabilities. Models can then be compared clip by clip, or combined offline (weights,
stacking) without training them again (benchmarks/combine_predictions.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.datasets import Item
from zoo.errors import EmozooError
from zoo.labels import LABELS
from zoo.storage import atomic_write_text

PROBABILITY_COLUMNS = [f"p_{label}" for label in LABELS]
COLUMNS = ["model", "params", "protocol", "split", "path", "corpus", "speaker", "label", *PROBABILITY_COLUMNS]


@dataclass
class RunPredictions:
    """One model run's held-out probabilities, one row per clip."""

    model: str
    params: dict[str, Any]
    protocol: str  # "speaker-kfold" or "leave-one-corpus-out"
    splits: list[str]
    items: list[Item]
    probabilities: np.ndarray

    @property
    def run(self) -> str:
        """The model and its parameters as one key (how runs are told apart when read back)."""
        return f"{self.model} {json.dumps(self.params, sort_keys=True, default=str)}"

    @property
    def labels(self) -> np.ndarray:
        return np.array([item.label for item in self.items], dtype=np.int64)


def write_predictions(path: str | os.PathLike[str], runs: Sequence[RunPredictions]) -> Path:
    """All `runs` in one CSV (written atomically: an interrupted run leaves the previous file whole)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for run in runs:
        if len(run.items) != len(run.probabilities) or len(run.splits) != len(run.items):
            raise ValueError(f"{run.model}: {len(run.items)} clips, {len(run.splits)} splits and "
                             f"{len(run.probabilities)} probability rows")
        params = json.dumps(run.params, sort_keys=True, default=str)
        for item, split, row in zip(run.items, run.splits, run.probabilities, strict=True):
            writer.writerow([run.model, params, run.protocol, split, str(item.path), item.corpus or "",
                             item.speaker or "", item.label, *(f"{p:.8g}" for p in row)])
    return atomic_write_text(path, buffer.getvalue())


def read_predictions(path: str | os.PathLike[str]) -> list[RunPredictions]:
    """The runs of a `write_predictions` CSV, in file order; a malformed file is an EmozooError naming it."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise EmozooError(f"{path}: not a predictions file (missing columns {', '.join(missing)})")
            runs: dict[tuple[str, str, str], RunPredictions] = {}
            rows: dict[tuple[str, str, str], list[list[float]]] = {}
            for line, record in enumerate(reader, start=2):
                key = (record["model"], record["params"], record["protocol"])
                if key not in runs:
                    runs[key] = RunPredictions(record["model"], json.loads(record["params"]), record["protocol"],
                                               [], [], np.zeros((0, len(LABELS))))
                    rows[key] = []
                try:
                    label = int(record["label"])
                    probabilities = [float(record[c]) for c in PROBABILITY_COLUMNS]
                except (TypeError, ValueError):
                    raise EmozooError(f"{path}, line {line}: label and probabilities must be numbers") from None
                runs[key].splits.append(record["split"])
                runs[key].items.append(Item(Path(record["path"]), label, record["speaker"] or None,
                                            corpus=record["corpus"] or None))
                rows[key].append(probabilities)
    except OSError as error:
        raise EmozooError(f"{path}: cannot read predictions ({error.strerror or error})") from None
    except json.JSONDecodeError:
        raise EmozooError(f"{path}: the params column must hold JSON") from None
    for key, run in runs.items():
        run.probabilities = np.asarray(rows[key], dtype=np.float64).reshape(-1, len(LABELS))
    return list(runs.values())
