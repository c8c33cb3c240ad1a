"""The benchmark's accuracy protocols, on fixed folds, with intervals and calibration.

- ``speakers``: k-fold by speaker within each corpus, the folds read from the committed
  ``benchmarks/folds/<corpus>.csv`` (`benchmarks.folds`); every clip is predicted once, by a model that never
  heard its speaker. Metrics per corpus and their mean.
- ``corpora``: cross-corpus. Train on one corpus, test on each other one (the train x test matrix), and
  leave-one-corpus-out (train on all the others); the mean is over the leave-one-corpus-out cells.

Every cell has accuracy, UAR and macro-F1 with a 95 % interval from a bootstrap over its test speakers
(`benchmarks.bootstrap`), expected calibration error, Brier score and reliability bins of the predicted
probabilities (`zoo.metrics`), whatever the model's own calibration. A model is a registered plugin name
(trained here, any plugin) or one of the reference systems in `REFERENCES`, recomputed on the same folds.

The results file (``format`` "emozoo-protocol", ``schema_version`` 1)::

    {"format", "schema_version", "protocol", "created", "environment", "settings": {data, resamples, seed},
     "models": [{"model", "spec", "params", "reference", "description", "note", "corpora", "seconds",
                 "cells": [{"train", "test", "n", "speakers", "accuracy", "uar", "macro_f1", "per_class_recall",
                            "confusion", "intervals": {metric: {low, high}}, "ece", "brier", "reliability"}],
                 "mean": {"accuracy", "uar", "macro_f1", "intervals", "ece", "brier", "corpora"},
                 "reliability": [...pooled bins...], "ece", "brier"}],
     "skipped": [{"model", "reason"}]}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bootstrap
from benchmarks.folds import FOLDS_DIR, folds_for
from zoo.datasets import Dataset, Item, corpus_name, load_waveforms
from zoo.errors import EmozooError
from zoo.labels import LABELS
from zoo.metrics import brier_score, expected_calibration_error, reliability_bins, scores
from zoo.storage import atomic_write_json

FORMAT = "emozoo-protocol"
SCHEMA_VERSION = 1
PROTOCOLS = ("speakers", "corpora")
LOCO = "all others"  # the train side of a leave-one-corpus-out cell
OTHER_FOLDS = "other folds"  # the train side of a speakers-protocol cell
OPENSMILE_LICENCE = "openSMILE: free for research and education only (audEERING research licence)"

Log = Callable[[str], None]


class Unavailable(EmozooError):
    """A reference system that cannot run here (its optional extra is missing)."""


@dataclass
class Reference:
    description: str
    plugin: str | None = None  # a reference that is a registered plugin with fixed parameters
    params: dict[str, Any] = field(default_factory=dict)


REFERENCES: dict[str, Reference] = {
    "chance": Reference("chance: always the majority class of the training clips, with the training class shares "
                        "as its probabilities"),
    "seed-recipe": Reference("the original student recipe: librosa-svc with features=seed (yin pitch, energy, "
                             "tempo, 13 MFCC + deltas; 40,002 numbers per clip), as the student ran it: no "
                             "augmentation, no corpus balancing, no calibration", "librosa-svc",
                             {"features": "seed", "augment": "none", "balance": "none", "calibrate": "none"}),
    "egemaps-svm": Reference("openSMILE eGeMAPSv02 functionals (88) + RBF SVM (standardised, C=1, class-balanced, "
                             f"Platt probabilities); {OPENSMILE_LICENCE}"),
    "compare-svm": Reference("openSMILE ComParE 2016 functionals (6373) + linear SVM (standardised, C=1e-3, "
                             "class-balanced; probabilities: softmax of the margins, not calibrated); "
                             f"{OPENSMILE_LICENCE}"),
}
OPENSMILE_SETS = {"egemaps-svm": "eGeMAPSv02", "compare-svm": "ComParE_2016"}


# -- the data -------------------------------------------------------------------------------------------


@dataclass
class Corpora:
    """Every clip of the corpora benchmarked, each with its corpus, speaker (corpus/speaker) and fold."""

    items: list[Item]
    labels: np.ndarray
    corpora: np.ndarray
    speakers: np.ndarray
    folds: np.ndarray  # -1 where the protocol does not use folds
    describe: dict[str, Any]
    on_error: str = "skip"
    max_seconds: float | None = 600.0
    _rate: int | None = None
    _waveforms: list[np.ndarray | None] = field(default_factory=list)
    failures: list[tuple[Any, str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(self.corpora.tolist()))

    def waveforms(self, indices: np.ndarray, sample_rate: int) -> list[np.ndarray]:
        """The clips at `sample_rate`; all clips are decoded once per rate (one rate kept at a time)."""
        if self._rate != sample_rate:
            self._waveforms, self._rate = [], None
            loaded = load_waveforms(self.items, sample_rate, on_error=self.on_error, max_seconds=self.max_seconds)
            by_id = {id(item): wave for item, wave in zip(loaded.items, loaded.waveforms, strict=True)}
            self._waveforms = [by_id.get(id(item)) for item in self.items]
            self.failures += [f for f in loaded.failures if f not in self.failures]
            self._rate = sample_rate
        missing = [self.items[i].id for i in indices if self._waveforms[i] is None]
        if missing:
            raise EmozooError(f"{len(missing)} clip(s) could not be decoded (first: {missing[0]}); fix or remove them "
                              "from the corpus and its fold file")
        return [self._waveforms[i] for i in indices]  # type: ignore[misc]


def load_corpora(paths: Sequence[str], protocol: str, folds_dir: Path = FOLDS_DIR, **options: Any) -> Corpora:
    """Each --data path is one corpus; the speakers protocol checks it against its committed fold file."""
    from zoo import datasets

    if protocol not in PROTOCOLS:
        raise EmozooError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    parts: list[Dataset] = [datasets.load(p) for p in paths]
    names = [corpus_name(p.source) for p in parts]
    if len(set(names)) != len(names):
        raise EmozooError(f"each --data must be another corpus; got {', '.join(names)}")
    if protocol == "corpora" and len(parts) < 2:
        raise EmozooError("the corpora protocol needs at least two corpora (repeat --data)")
    items: list[Item] = []
    corpora: list[str] = []
    speakers: list[str] = []
    folds: list[int] = []
    describe: dict[str, Any] = {}
    for name, part in zip(names, parts, strict=True):
        bad = [i.problem for i in part.items if i.problem is not None]
        if bad:
            raise EmozooError(bad[0])
        if any(i.speaker is None or i.label is None for i in part.items):
            raise EmozooError(f"{part.source}: every clip needs a label and a speaker for a speaker-held-out benchmark")
        entry: dict[str, Any] = {"source": part.source, "clips": len(part),
                                 "speakers": len({i.speaker for i in part.items})}
        if protocol == "speakers":
            assignment, fold_of = folds_for(part, folds_dir)
            folds += fold_of.tolist()
            entry.update(folds=assignment.n_folds, fold_file=str(assignment.source))
        else:
            folds += [-1] * len(part)
        describe[name] = entry
        items += part.items
        corpora += [name] * len(part)
        speakers += [f"{name}/{i.speaker}" for i in part.items]
    labels = np.array([i.label for i in items], dtype=np.int64)
    return Corpora(items, labels, np.array(corpora), np.array(speakers), np.array(folds), describe, **options)


# -- the systems benchmarked ----------------------------------------------------------------------------


class Learner:
    """One system: trained on some clips, giving class probabilities [n, 6] for others."""

    def fit(self, data: Corpora, train: np.ndarray) -> None:
        raise NotImplementedError

    def predict_proba(self, data: Corpora, test: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ChanceLearner(Learner):
    def fit(self, data: Corpora, train: np.ndarray) -> None:
        counts = np.bincount(data.labels[train], minlength=len(LABELS)).astype(float)
        self.priors = counts / counts.sum()

    def predict_proba(self, data: Corpora, test: np.ndarray) -> np.ndarray:
        return np.tile(self.priors, (len(test), 1))


class PluginLearner(Learner):
    """Any registered model plugin, trained afresh for every cell."""

    def __init__(self, plugin: str, params: dict[str, Any]) -> None:
        from zoo.registry import create_model

        self.plugin, self.params = plugin, params
        self.model = create_model(plugin, **params)  # fails early on an unknown name or bad parameters

    def fit(self, data: Corpora, train: np.ndarray) -> None:
        from zoo.model import fit_with_speakers
        from zoo.registry import create_model

        self.model = create_model(self.plugin, **self.params)
        fit_with_speakers(self.model, data.waveforms(train, self.model.sample_rate), data.labels[train],
                          data.speakers[train].tolist(), data.corpora[train].tolist())

    def predict_proba(self, data: Corpora, test: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(data.waveforms(test, self.model.sample_rate)), dtype=np.float64)


class OpenSmileLearner(Learner):
    """openSMILE functionals of each clip (cached per corpus) + a scikit-learn SVM."""

    def __init__(self, reference: str, cache_dir: Path, log: Log) -> None:
        try:
            import opensmile  # noqa: F401
        except ImportError:
            raise Unavailable("openSMILE is not installed (optional extra: pip install 'emozoo[peers]'; research "
                              "licence)") from None
        self.reference, self.feature_set = reference, OPENSMILE_SETS[reference]
        self.cache_dir, self.log = cache_dir, log
        self.features: np.ndarray | None = None

    def _all_features(self, data: Corpora) -> np.ndarray:
        from benchmarks.opensmile_peer import extract_corpus

        if self.features is None:
            features = None
            for name in data.names:
                rows = np.flatnonzero(data.corpora == name)
                block, failures = extract_corpus(name, [data.items[i].path for i in rows], self.cache_dir, self.log,
                                                 feature_set=self.feature_set)
                if failures:
                    raise EmozooError(f"openSMILE could not read {len(failures)} clip(s): {failures[0]}")
                if features is None:
                    features = np.zeros((len(data.items), block.shape[1]), dtype=np.float32)
                features[rows] = block
            self.features = features
        return self.features  # type: ignore[return-value]

    def fit(self, data: Corpora, train: np.ndarray) -> None:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC, LinearSVC

        features = self._all_features(data)
        if self.reference == "egemaps-svm":
            from sklearn.calibration import CalibratedClassifierCV

            classifier = CalibratedClassifierCV(SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"),
                                                method="sigmoid", ensemble=False)
        else:
            classifier = LinearSVC(C=1e-3, class_weight="balanced", max_iter=20_000, random_state=0)
        self.pipeline = make_pipeline(StandardScaler(), classifier).fit(features[train], data.labels[train])

    def predict_proba(self, data: Corpora, test: np.ndarray) -> np.ndarray:
        features = self._all_features(data)[test]
        classes = self.pipeline.classes_
        if self.reference == "egemaps-svm":
            partial = self.pipeline.predict_proba(features)
        else:
            margins = np.atleast_2d(self.pipeline.decision_function(features))
            margins = margins - margins.max(axis=1, keepdims=True)
            partial = np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)
        probabilities = np.zeros((len(test), len(LABELS)))
        probabilities[:, classes] = partial  # a class never seen in training gets probability 0
        return probabilities


def make_learner(spec: str, params: dict[str, Any], cache_dir: Path, log: Log) -> tuple[Learner, str, dict[str, Any]]:
    """(learner, plugin it runs, its parameters) for a plugin name or a reference name."""
    reference = REFERENCES.get(spec)
    if reference is not None and params and reference.plugin is None:
        raise EmozooError(f"{spec} is a fixed reference system: it takes no --param")
    if spec == "chance":
        return ChanceLearner(), "", {}
    if spec in OPENSMILE_SETS:
        return OpenSmileLearner(spec, cache_dir, log), "", {"features": OPENSMILE_SETS[spec]}
    if reference is not None and reference.plugin:
        chosen = {**reference.params, **params}
        return PluginLearner(reference.plugin, chosen), reference.plugin, chosen
    learner = PluginLearner(spec, params)
    return learner, spec, learner.model.get_params()


# -- scoring --------------------------------------------------------------------------------------------


def score_cell(data: Corpora, test: np.ndarray, probabilities: np.ndarray, resamples: int, seed: int,
               train: str, corpus: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One cell's metrics with intervals and calibration, and its bootstrap replicates (for the mean)."""
    true = data.labels[test]
    predicted = probabilities.argmax(axis=1)
    speakers = data.speakers[test]
    replicates = bootstrap.speaker_replicates(true, predicted, speakers, resamples, seed)
    cell = {"train": train, "test": corpus, **scores(true, predicted),
            "speakers": len(set(speakers.tolist())),
            "intervals": {m: bootstrap.interval(replicates[m]) for m in bootstrap.METRICS},
            "ece": expected_calibration_error(true, probabilities), "brier": brier_score(true, probabilities),
            "reliability": reliability_bins(true, probabilities)}
    return cell, replicates


def summarise(cells: Sequence[dict[str, Any]], replicates: Sequence[dict[str, np.ndarray]],
              pooled_true: np.ndarray, pooled_probabilities: np.ndarray) -> dict[str, Any]:
    return {
        "mean": {**{m: float(np.mean([c[m] for c in cells])) for m in bootstrap.METRICS},
                 "intervals": bootstrap.mean_intervals(replicates),
                 "ece": float(np.mean([c["ece"] for c in cells])), "brier": float(np.mean([c["brier"] for c in cells])),
                 "corpora": [c["test"] for c in cells]},
        "reliability": reliability_bins(pooled_true, pooled_probabilities),
        "ece": expected_calibration_error(pooled_true, pooled_probabilities),
        "brier": brier_score(pooled_true, pooled_probabilities),
    }


def run_speakers(learner: Learner, data: Corpora, corpora: Sequence[str], resamples: int, seed: int,
                 log: Log) -> dict[str, Any]:
    cells, replicates, pooled = [], [], []
    started = time.perf_counter()
    for number, corpus in enumerate(corpora):
        members = np.flatnonzero(data.corpora == corpus)
        probabilities = np.zeros((len(members), len(LABELS)))
        for fold in sorted(set(data.folds[members].tolist())):
            in_fold = data.folds[members] == fold
            learner.fit(data, members[~in_fold])
            probabilities[in_fold] = learner.predict_proba(data, members[in_fold])
            log(f"    {corpus} fold {fold}: {int(in_fold.sum())} clips scored ({time.perf_counter() - started:.0f} s)")
        cell, reps = score_cell(data, members, probabilities, resamples, seed + number, OTHER_FOLDS, corpus)
        log(f"  {corpus}: UAR {cell['uar']:.3f} [{cell['intervals']['uar']['low']:.3f}, "
            f"{cell['intervals']['uar']['high']:.3f}], ECE {cell['ece']:.3f}")
        cells.append(cell)
        replicates.append(reps)
        pooled.append((data.labels[members], probabilities))
    true = np.concatenate([t for t, _ in pooled])
    probabilities = np.concatenate([p for _, p in pooled])
    return {"cells": cells, **summarise(cells, replicates, true, probabilities)}


def run_corpora(learner: Learner, data: Corpora, corpora: Sequence[str], resamples: int, seed: int,
                log: Log) -> dict[str, Any]:
    cells, replicates, pooled = [], [], []
    plans = [(name, [name], [t for t in corpora if t != name]) for name in corpora]
    plans += [(LOCO, [t for t in corpora if t != held], [held]) for held in corpora]
    predicted: dict[tuple[tuple[str, ...], str], np.ndarray] = {}  # with two corpora, LOCO = single-corpus training
    for number, (train_name, train_corpora, tests) in enumerate(plans):
        train = np.flatnonzero(np.isin(data.corpora, train_corpora))
        if any((tuple(train_corpora), t) not in predicted for t in tests):
            learner.fit(data, train)
        for test_corpus in tests:
            test = np.flatnonzero(data.corpora == test_corpus)
            key = (tuple(train_corpora), test_corpus)
            if key not in predicted:
                predicted[key] = learner.predict_proba(data, test)
            probabilities = predicted[key]
            cell, reps = score_cell(data, test, probabilities, resamples, seed + 100 * number + len(cells),
                                    train_name, test_corpus)
            log(f"  train {'+'.join(train_corpora)}, test {test_corpus}: UAR {cell['uar']:.3f} "
                f"[{cell['intervals']['uar']['low']:.3f}, {cell['intervals']['uar']['high']:.3f}]")
            cells.append(cell)
            if train_name == LOCO:
                replicates.append(reps)
                pooled.append((data.labels[test], probabilities))
    loco = [c for c in cells if c["train"] == LOCO]
    true = np.concatenate([t for t, _ in pooled])
    probabilities = np.concatenate([p for _, p in pooled])
    return {"cells": cells, **summarise(loco, replicates, true, probabilities)}


@dataclass
class ProtocolSettings:
    protocol: str
    resamples: int = bootstrap.DEFAULT_RESAMPLES
    seed: int = 0
    restrict: dict[str, list[str]] = field(default_factory=dict)  # model -> the corpora it is run on
    notes: dict[str, str] = field(default_factory=dict)  # model -> why its row is cut down
    cache_dir: Path = Path("build") / "opensmile-cache"


def label_of(spec: str, params: dict[str, Any]) -> str:
    return spec + "".join(f" {k}={'none' if v is None else v}" for k, v in sorted(params.items()))


def _device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def run_protocol(specs: Sequence[str], data: Corpora, settings: ProtocolSettings,
                 params: dict[str | None, dict[str, Any]] | None = None, log: Log = lambda _: None) -> dict[str, Any]:
    """The protocol's results document for every model spec (plugin or reference name)."""
    from benchmarks import environment

    params = params or {}
    for spec, corpora in settings.restrict.items():
        unknown = [c for c in corpora if c not in data.names]
        if spec not in specs or unknown:
            raise EmozooError(f"--restrict {spec}={','.join(corpora)}: "
                              + (f"{spec} is not benchmarked" if spec not in specs else
                                 f"no corpus {', '.join(unknown)} among {', '.join(data.names)}"))
    learners = {}
    skipped = []
    for spec in specs:  # every name and parameter checked before any training
        chosen = {**(params.get(None, {}) if spec not in REFERENCES else {}), **params.get(spec, {})}
        try:
            learners[spec] = make_learner(spec, chosen, settings.cache_dir, log)
        except Unavailable as reason:
            skipped.append({"model": spec, "reason": str(reason)})
            log(f"{spec}: skipped ({reason})")
    models = []
    run = run_speakers if settings.protocol == "speakers" else run_corpora
    for spec, (learner, plugin, chosen) in learners.items():
        corpora = settings.restrict.get(spec, data.names)
        if settings.protocol == "corpora" and len(corpora) < 2:
            skipped.append({"model": spec, "reason": "restricted to one corpus: no cross-corpus cell"})
            continue
        label = spec if spec in REFERENCES else label_of(spec, params.get(None, {}) | params.get(spec, {}))
        log(f"{label}: {settings.protocol} protocol on {', '.join(corpora)}")
        started = time.perf_counter()
        outcome = run(learner, data, corpora, settings.resamples, settings.seed, log)
        note = settings.notes.get(spec)
        if corpora != data.names:
            limited = f"run on {', '.join(corpora)} only"
            note = f"{limited}: {note}" if note else limited
        models.append({"model": label, "spec": spec, "plugin": plugin, "params": chosen,
                       "reference": spec in REFERENCES,
                       "description": REFERENCES[spec].description if spec in REFERENCES else "",
                       "note": note, "corpora": list(corpora), "device": _device() if plugin else "cpu",
                       "seconds": round(time.perf_counter() - started, 1), **outcome})
        log(f"{label}: mean UAR {outcome['mean']['uar']:.3f} ({models[-1]['seconds']:.0f} s)")
    env = environment.capture()
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "protocol": settings.protocol,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "environment": env,
            "settings": {"data": data.describe, "resamples": settings.resamples, "seed": settings.seed,
                         "interval": "95 % percentile bootstrap over test speakers"},
            "models": models, "skipped": skipped}


# -- the file -------------------------------------------------------------------------------------------


def validate(document: Any, source: str) -> None:
    """Raise EmozooError naming `source` and the first problem of a protocol results document."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EmozooError(f"{source}: not an emozoo protocol results file (format {FORMAT!r} expected)")
    if not isinstance(document.get("schema_version"), int) or document["schema_version"] > SCHEMA_VERSION:
        raise EmozooError(f"{source}: schema_version missing or newer than this emozoo reads ({SCHEMA_VERSION})")
    if document.get("protocol") not in PROTOCOLS:
        raise EmozooError(f"{source}: protocol must be one of {', '.join(PROTOCOLS)}")
    models = document.get("models")
    if not isinstance(models, list):
        raise EmozooError(f"{source}: models must be a list")
    for number, model in enumerate(models):
        where = f"{source}: model {number}"
        if not isinstance(model, dict) or not isinstance(model.get("model"), str):
            raise EmozooError(f"{where}: needs a model name")
        cells = model.get("cells")
        if not isinstance(cells, list) or not cells:
            raise EmozooError(f"{where} ({model['model']}): cells must be a non-empty list")
        for cell in cells:
            if not isinstance(cell, dict) or not all(isinstance(cell.get(k), (int, float)) for k in
                                                     (*bootstrap.METRICS, "ece", "brier")) \
                    or not isinstance(cell.get("intervals"), dict) or not isinstance(cell.get("test"), str):
                raise EmozooError(f"{where} ({model['model']}): each cell needs test, {', '.join(bootstrap.METRICS)}, "
                                  "ece, brier and intervals")
        if not isinstance(model.get("mean"), dict):
            raise EmozooError(f"{where} ({model['model']}): mean is missing")


def write(document: dict[str, Any], path: str | Path) -> Path:
    validate(document, str(path))
    return atomic_write_json(path, document)


def is_protocol_file(document: Any) -> bool:
    return isinstance(document, dict) and document.get("format") == FORMAT
