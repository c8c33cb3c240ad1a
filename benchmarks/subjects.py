"""What is benchmarked: a plugin name (trained here on the training speakers), a saved model directory or an
exported .onnx file (evaluated only), together with the speaker-held-out split it is scored on."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.datasets import Dataset, LoadedAudio, load_waveforms, speaker_split
from zoo.errors import EmozooError


@dataclass
class Split:
    """The speaker-held-out split of a dataset, and its clips decoded at each sample rate asked for."""

    dataset: Dataset
    train: np.ndarray
    test: np.ndarray
    on_error: str = "skip"
    max_seconds: float | None = 600.0
    _audio: dict[tuple[str, int], LoadedAudio] = field(default_factory=dict)
    failures: list[tuple[Any, str]] = field(default_factory=list)

    @classmethod
    def of(cls, dataset: Dataset, test_fraction: float = 0.2, seed: int = 0, **options: Any) -> Split:
        train, test = speaker_split(dataset, test_fraction, seed)
        return cls(dataset, train, test, **options)

    def audio(self, part: str, sample_rate: int) -> LoadedAudio:
        """Decoded clips of "train" or "test" at `sample_rate` (decoded once, then kept)."""
        key = (part, sample_rate)
        if key not in self._audio:
            indices = self.train if part == "train" else self.test
            loaded = load_waveforms([self.dataset.items[i] for i in indices], sample_rate, on_error=self.on_error,
                                    max_seconds=self.max_seconds)
            self.failures += loaded.failures
            self._audio[key] = loaded
        return self._audio[key]

    def describe(self) -> dict[str, Any]:
        speakers = self.dataset.speakers
        return {
            "source": self.dataset.source,
            "clips": len(self.dataset),
            "train_clips": int(len(self.train)),
            "test_clips": int(len(self.test)),
            "test_speakers": sorted({str(speakers[i]) for i in self.test}),
        }


@dataclass
class Subject:
    """A model ready to benchmark. `native` is None for an .onnx file (only onnxruntime can run it)."""

    label: str
    kind: str  # "plugin", "directory" or "onnx"
    native: Any | None
    model_path: Path | None
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    onnx_path: Path | None = None
    train_seconds: float | None = None
    plugin: str = ""
    exports: dict[str, Path] = field(default_factory=dict)
    export_failures: dict[str | None, str] = field(default_factory=dict)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _label(name: str, file_name: str) -> str:
    return name if file_name == name else f"{name} ({file_name})"


def prepare(spec: str, split: Split, params: dict[str, Any], work_dir: Path) -> Subject:
    """Load `spec` (a .onnx file or a model directory) or train the plugin it names on the training speakers."""
    from zoo.api import load
    from zoo.model import check_save_target, fit_with_speakers
    from zoo.registry import create_model

    target = Path(spec)
    if target.suffix == ".onnx":
        if params:
            raise EmozooError(f"{spec}: parameters cannot be given to an exported ONNX model")
        from zoo.onnx_runtime import OnnxEmotionModel

        model = OnnxEmotionModel(target)
        return Subject(_label(model.name, target.name), "onnx", None, target,
                       model.family, dict(model.metadata.get("params", {}) or {}), onnx_path=target,
                       plugin=model.name)
    if target.is_dir():
        if params:
            raise EmozooError(f"{spec}: parameters cannot be given to a trained model directory")
        model = load(target)
        return Subject(_label(model.name, target.resolve().name), "directory", model, target, model.family,
                       model.get_params())
    model = create_model(spec, **params)
    label = spec + "".join(f" {k}={v}" for k, v in sorted(params.items()))
    check_save_target(work_dir / safe_name(label), advice="choose another --work-dir")  # before training
    audio = split.audio("train", model.sample_rate)
    labels = np.array([item.label for item in audio.items], dtype=np.int64)
    started = time.perf_counter()
    fit_with_speakers(model, audio.waveforms, labels, [item.speaker for item in audio.items],
                      [item.corpus for item in audio.items])
    seconds = round(time.perf_counter() - started, 2)
    model.metrics_ = {"training_seconds": seconds, "training_clips": len(labels)}
    saved = model.save(work_dir / safe_name(label))
    return Subject(label, "plugin", model, saved, model.family, model.get_params(), train_seconds=seconds)
