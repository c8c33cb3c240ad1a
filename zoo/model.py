"""The common model interface every plugin implements (scikit-learn's estimator contract)."""

from __future__ import annotations

import inspect
import json
import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from zoo.calibration import IDENTITY, Calibration
from zoo.errors import ModelFileError
from zoo.fingerprint import training_data_fingerprint, waveform_digest
from zoo.labels import LABELS
from zoo.storage import atomic_directory, atomic_write_json, check_directory_target

MANIFEST = "manifest.json"
FORMAT = "emozoo-model"
FORMAT_VERSION = 1
_VERSIONED_LIBRARIES = (
    "emozoo", "numpy", "scikit-learn", "librosa", "torch", "transformers", "skops", "safetensors", "onnx",
)


def library_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Python's version and those of the installed libraries a model depends on (plus `extra` names)."""
    versions = {"python": platform.python_version()}
    for name in (*_VERSIONED_LIBRARIES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


class EmotionModel(ABC):
    """A speech-emotion classifier: waveforms in, probabilities over the six labels out.

    Subclasses set ``name`` (the registry name) and ``family`` (which exporter handles them), store only
    hyperparameters in ``__init__`` and keep fitted state in attributes ending in ``_``.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    classes_: np.ndarray = np.arange(len(LABELS))
    # set by fit (zoo.calibration); predict_proba returns calibrated probabilities, `calibrated` applies it
    calibration_: Calibration = IDENTITY

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Rate, in Hz, the waveforms given to fit and predict must have."""

    @abstractmethod
    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int]) -> EmotionModel: ...

    @abstractmethod
    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Return [n_clips, 6] probabilities, columns in label-id order (``classes_``)."""

    def predict(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(waveforms), axis=1)]

    def calibrated(self, probabilities: np.ndarray) -> np.ndarray:
        """`probabilities` rescaled by the fitted calibration: call at the end of ``predict_proba``."""
        return self.calibration_.apply(probabilities)

    def get_params(self) -> dict[str, Any]:
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}

    def feature_config(self) -> dict[str, Any]:
        return {}

    # -- persistence -------------------------------------------------------------------------------------
    @abstractmethod
    def _save_weights(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None: ...

    def _record_training_data(self, waveforms: Sequence[np.ndarray], labels: Sequence[int]) -> None:
        counts = np.bincount(np.asarray(labels, dtype=int), minlength=len(LABELS))
        self.training_data_ = {
            "fingerprint": training_data_fingerprint((waveform_digest(w) for w in waveforms), labels),
            "n_clips": len(labels),
            "class_counts": {LABELS[i]: int(c) for i, c in enumerate(counts)},
        }

    def check_fitted(self) -> None:
        if not hasattr(self, "training_data_"):
            raise ModelFileError(f"{self.name} model is not fitted yet: call fit() first")

    def manifest(self) -> dict[str, Any]:
        self.check_fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "plugin": self.name,
            "family": self.family,
            "params": self.get_params(),
            "labels": {str(i): label for i, label in enumerate(LABELS)},
            "sample_rate": self.sample_rate,
            "feature_config": self.feature_config(),
            "library_versions": library_versions(),
            "training_data": self.training_data_,
            "metrics": getattr(self, "metrics_", {}),
            "calibration": self.calibration_.as_dict(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, directory: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the model to `directory` atomically (manifest.json plus pickle-free weights).

        An earlier saved model there is replaced; anything else (a file, a folder holding other files) only
        with `force` (see `check_save_target`).
        """
        manifest = self.manifest()
        with atomic_directory(directory, **_save_rule(force)) as staging:
            self._save_weights(staging)
            atomic_write_json(staging / MANIFEST, manifest)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmotionModel:
        manifest = read_manifest(directory)
        if cls.name and manifest["plugin"] != cls.name:
            raise ModelFileError(f"{directory}: holds a {manifest['plugin']!r} model, not {cls.name!r}")
        model = cls(**manifest["params"])
        model._load_weights(Path(directory), manifest)
        model.training_data_ = manifest["training_data"]
        model.metrics_ = manifest.get("metrics", {})
        model.calibration_ = Calibration.from_dict(manifest.get("calibration"), str(Path(directory) / MANIFEST))
        return model


def is_saved_model(directory: str | os.PathLike[str]) -> bool:
    """Whether `directory` holds a saved emozoo model (its manifest.json reads as one)."""
    try:
        read_manifest(directory)
    except ModelFileError:
        return False
    return True


def _save_rule(force: bool, advice: str = "choose another folder, or use --force to replace it") -> dict[str, Any]:
    return {"replace_if": is_saved_model, "what": "a saved emozoo model", "force": force, "advice": advice}


def check_save_target(directory: str | os.PathLike[str], *, force: bool = False,
                      advice: str = "choose another folder, or use --force to replace it") -> Path:
    """Refuse early (before training) a `save` target that `save` would refuse: see `zoo.storage`."""
    return check_directory_target(directory, **_save_rule(force, advice))


def as_recorded(value: Any) -> Any:
    """`value` as a manifest reads back after saving it (tuples become lists), to compare with what one holds."""
    return json.loads(json.dumps(value))


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise ModelFileError(f"{directory}: no such model directory")
    if not path.is_file():
        raise ModelFileError(f"{directory}: not a saved emozoo model ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: corrupt manifest ({error})") from None
    if manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an emozoo model manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer emozoo (format {manifest['format_version']})")
    return manifest


def fit_with_speakers(model: EmotionModel, waveforms: Sequence[np.ndarray], labels: Sequence[int],
                      speakers: Sequence[str | None], corpora: Sequence[str | None] | None = None) -> EmotionModel:
    """Fit, passing speaker ids as `groups` and corpus names as `corpora` to models whose `fit` takes them
    (speaker-independent early stopping, corpus-balanced sample weights)."""
    parameters = inspect.signature(model.fit).parameters
    extra: dict[str, Any] = {}
    if "groups" in parameters and all(s is not None for s in speakers):
        extra["groups"] = list(speakers)
    if "corpora" in parameters and corpora is not None and all(c is not None for c in corpora):
        extra["corpora"] = list(corpora)
    return model.fit(waveforms, labels, **extra)  # type: ignore[call-arg]
