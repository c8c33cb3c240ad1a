"""Speaker-independent evaluation: cross-validation of a model family, or scoring of a trained model."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.calibration import calibration_scores
from zoo.datasets import Dataset, LoadedAudio, speaker_kfold
from zoo.labels import LABELS
from zoo.metrics import scores
from zoo.model import fit_with_speakers
from zoo.normalize import normalization_groups, normalize_probabilities
from zoo.progress import note


@dataclass
class CrossValidationResult:
    model: str
    params: dict[str, Any]
    n_folds: int
    pooled: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # every clip's held-out probabilities [clips, 6] and the fold (1..k) that held it out, in `audio.items` order
    probabilities: np.ndarray | None = None
    splits: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        per_fold = {k: [f[k] for f in self.folds] for k in ("accuracy", "uar", "macro_f1")}
        return {
            "model": self.model,
            "params": self.params,
            "folds": self.n_folds,
            **{k: self.pooled[k] for k in ("accuracy", "uar", "macro_f1", "ece", "brier")},
            **{f"{k}_std": float(np.std(v)) for k, v in per_fold.items()},
            "seconds": round(self.seconds, 1),
        }


def probabilities_normalized(model: Any, waveforms: list[np.ndarray], speakers: list[str | None],
                             normalize: str = "none", source: str = "") -> np.ndarray:
    """[clips, 6] probabilities of `waveforms`; with `normalize` 'speaker' or 'session', group-normalised."""
    probabilities = np.asarray(model.predict_proba(waveforms), dtype=np.float64)
    if normalize == "none":
        return probabilities
    return normalize_probabilities(probabilities, normalization_groups(normalize, speakers, source))


def predict_normalized(model: Any, waveforms: list[np.ndarray], speakers: list[str | None], normalize: str = "none",
                       source: str = "") -> np.ndarray:
    """Label ids of `waveforms`; with `normalize` 'speaker' or 'session', from group-normalised probabilities."""
    return probabilities_normalized(model, waveforms, speakers, normalize, source).argmax(axis=1)


def scored(true: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """`zoo.metrics.scores` of the top labels plus expected calibration error and Brier score."""
    return {**scores(true, probabilities.argmax(axis=1)), **calibration_scores(true, probabilities)}


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
    normalize: str = "none",
) -> CrossValidationResult:
    """k-fold by speaker over the clips in `audio`; metrics pooled over all held-out predictions."""
    kept = Dataset(audio.items, dataset.source, dataset.layout)
    labels = kept.labels
    probabilities = np.zeros((len(kept), len(LABELS)))
    splits = [""] * len(kept)
    folds = []
    started = time.perf_counter()
    model = make_model()
    for number, (train, test) in enumerate(speaker_kfold(kept, n_folds, seed)):
        model = make_model()
        fit_with_speakers(model, [audio.waveforms[i] for i in train], labels[train],
                          [kept.items[i].speaker for i in train], [kept.items[i].corpus for i in train])
        probabilities[test] = probabilities_normalized(model, [audio.waveforms[i] for i in test],
                                                       [kept.items[i].speaker for i in test], normalize, kept.source)
        fold = scored(labels[test], probabilities[test])
        for i in test:
            splits[i] = str(number + 1)
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
        pooled=scored(labels, probabilities),
        folds=folds,
        seconds=time.perf_counter() - started,
        probabilities=probabilities,
        splits=splits,
    )


@dataclass
class CorpusTransferResult:
    """Leave-one-corpus-out: one row per held-out corpus, trained on all the others."""

    model: str
    params: dict[str, Any]
    normalize: str
    held_out: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    # each scored clip's probabilities [clips, 6] when its corpus was held out, that corpus, and the clip's
    # position in `audio.items` (every clip, unless only some corpora were held out)
    probabilities: np.ndarray | None = None
    splits: list[str] = field(default_factory=list)
    positions: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        rows = list(self.held_out.values())
        means = {k: float(np.mean([r[k] for r in rows])) for k in ("accuracy", "uar", "macro_f1", "ece", "brier")}
        return {
            "model": self.model,
            "params": self.params,
            "protocol": "leave-one-corpus-out",
            "normalize": self.normalize,
            **means,
            "min_uar": float(min(r["uar"] for r in rows)),
            "per_corpus": {name: {k: r[k] for k in ("n", "accuracy", "uar", "macro_f1", "ece", "brier")}
                           for name, r in self.held_out.items()},
            "seconds": round(self.seconds, 1),
        }


def leave_one_corpus_out(
    make_model: Callable[[], Any],
    dataset: Dataset,
    audio: LoadedAudio,
    normalize: str = "none",
    on_corpus: Callable[[str, dict[str, Any]], None] | None = None,
    only: Sequence[str] = (),
) -> CorpusTransferResult:
    """Train on every corpus but one and score on it, for each corpus in turn (each of `only`, when given:
    the held-out corpora of one run can then go to separate processes).

    UAR counts only the classes present in the held-out corpus (nEMO has no disgust), so a missing class
    neither helps nor hurts; a prediction of it is simply wrong.
    """
    kept = Dataset(audio.items, dataset.source, dataset.layout)
    corpora = [item.corpus for item in kept.items]
    names = sorted({c for c in corpora if c is not None})
    if any(c is None for c in corpora) or len(names) < 2:
        raise ValueError("leave-one-corpus-out needs at least two corpora (repeat --data), every clip from one")
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ValueError(f"no corpus named {', '.join(unknown)} to hold out (the corpora are {', '.join(names)})")
    chosen = [name for name in names if not only or name in only]
    labels = kept.labels
    started = time.perf_counter()
    held_out: dict[str, dict[str, Any]] = {}
    all_probabilities = np.zeros((len(kept), len(LABELS)))
    for name in chosen:
        test = np.array([c == name for c in corpora])
        train = np.flatnonzero(~test)
        test = np.flatnonzero(test)
        model = make_model()
        fit_with_speakers(model, [audio.waveforms[i] for i in train], labels[train],
                          [kept.items[i].speaker for i in train], [corpora[i] for i in train])
        probabilities = probabilities_normalized(model, [audio.waveforms[i] for i in test],
                                                 [kept.items[i].speaker for i in test], normalize, name)
        all_probabilities[test] = probabilities
        held_out[name] = scored(labels[test], probabilities)
        held_out[name]["train_corpora"] = [n for n in names if n != name]
        if on_corpus:
            on_corpus(name, held_out[name])
    scored_clips = np.flatnonzero([c in chosen for c in corpora])
    return CorpusTransferResult(model.name, model.get_params(), normalize, held_out, time.perf_counter() - started,
                                all_probabilities[scored_clips], [str(corpora[i]) for i in scored_clips],
                                scored_clips)
