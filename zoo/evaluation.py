"""Speaker-independent evaluation: cross-validation of a model family, or scoring of a trained model."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.datasets import Dataset, LoadedAudio, speaker_kfold
from zoo.metrics import scores
from zoo.model import fit_with_speakers
from zoo.progress import note


@dataclass
class CrossValidationResult:
    model: str
    params: dict[str, Any]
    n_folds: int
    pooled: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        per_fold = {k: [f[k] for f in self.folds] for k in ("accuracy", "uar", "macro_f1")}
        return {
            "model": self.model,
            "params": self.params,
            "folds": self.n_folds,
            **{k: self.pooled[k] for k in ("accuracy", "uar", "macro_f1")},
            **{f"{k}_std": float(np.std(v)) for k, v in per_fold.items()},
            "seconds": round(self.seconds, 1),
        }


def _run_name(model: Any) -> str:
    """The model's name and the parameters it was given other than their defaults."""
    defaults = {name: p.default for name, p in inspect.signature(type(model).__init__).parameters.items()}
    changed = [f"{key}={value}" for key, value in model.get_params().items() if defaults.get(key) != value]
    return " ".join([model.name, *changed])


def cross_validate(
    make_model: Callable[[], Any],
    dataset: Dataset,
    audio: LoadedAudio,
    n_folds: int = 5,
    seed: int = 0,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
) -> CrossValidationResult:
    """k-fold by speaker over the clips in `audio`; metrics pooled over all held-out predictions."""
    kept = Dataset(audio.items, dataset.source, dataset.layout)
    labels = kept.labels
    predictions = np.empty(len(kept), dtype=np.int64)
    folds = []
    started = time.perf_counter()
    model = make_model()
    for number, (train, test) in enumerate(speaker_kfold(kept, n_folds, seed)):
        model = make_model()
        fit_with_speakers(model, [audio.waveforms[i] for i in train], labels[train],
                          [kept.items[i].speaker for i in train])
        predictions[test] = model.predict([audio.waveforms[i] for i in test])
        fold = scores(labels[test], predictions[test])
        fold["test_speakers"] = sorted({kept.items[i].speaker for i in test})
        folds.append(fold)
        note(f"cv {_run_name(model)}: fold {number + 1}/{n_folds} done, accuracy {fold['accuracy']:.3f} "
             f"({time.perf_counter() - started:.0f} s so far)")  # a long sweep shows life in a log too
        if on_fold:
            on_fold(number, fold)
    return CrossValidationResult(
        model=model.name,
        params=model.get_params(),
        n_folds=n_folds,
        pooled=scores(labels, predictions),
        folds=folds,
        seconds=time.perf_counter() - started,
    )
