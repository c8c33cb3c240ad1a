"""The models a server answers with: anything with `sample_rate` and `predict_proba` (ONNX file or native)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zoo.errors import EmozooError


class Scorer(Protocol):
    @property
    def sample_rate(self) -> int: ...

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class ServedModel:
    name: str
    model: Scorer
    kind: str  # "onnx" or "native"
    plugin: str
    metadata: dict[str, Any]

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)


def describe(name: str, model: Scorer) -> ServedModel:
    """Wrap a loaded model; its metadata comes from `.manifest()` (native) or `.metadata` (ONNX and others)."""
    from zoo.model import EmotionModel

    if not isinstance(getattr(model, "sample_rate", None), (int, np.integer)) or not callable(
        getattr(model, "predict_proba", None)
    ):
        raise EmozooError(f"model {name!r} has no integer sample_rate and predict_proba(); cannot serve it")
    if isinstance(model, EmotionModel):
        kind = "native"
        metadata = {k: v for k, v in model.manifest().items() if k not in {"created", "library_versions"}}
    else:
        kind = "onnx" if type(model).__name__ == "OnnxEmotionModel" else "custom"
        metadata = dict(getattr(model, "metadata", None) or {})
    plugin = str(metadata.get("plugin") or getattr(model, "name", "") or name)
    return ServedModel(name, model, kind, plugin, _json_safe(metadata))


def _json_safe(value: Any) -> Any:
    """Plain JSON: arrays to lists, NaN and infinities to None (a JSON response cannot carry them)."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def parse_model_argument(text: str) -> tuple[str, Path]:
    """`NAME=PATH` or `PATH`; the name defaults to the file stem or directory name."""
    name, sep, rest = text.partition("=")
    if sep and name and "/" not in name and not Path(text).exists():
        return name, Path(rest)
    path = Path(text)
    return (path.stem if path.suffix == ".onnx" else path.resolve().name), path


def model_names(arguments: Sequence[str | os.PathLike[str]]) -> dict[str, Path]:
    """Name -> path for each command-line model; names must be unique (say NAME=PATH to choose)."""
    named: dict[str, Path] = {}
    for argument in arguments:
        name, path = parse_model_argument(str(argument))
        if name in named:
            raise EmozooError(f"two models are called {name!r}; name them apart with NAME=PATH")
        named[name] = path
    return named


def load_models(arguments: Sequence[str | os.PathLike[str]], *, threads: int | None = None,
                device: str = "auto") -> dict[str, Any]:
    """Load each model named on the command line (see `model_names`) on `device`; `threads` per ONNX model."""
    from zoo.api import load_for_inference

    models: dict[str, Any] = {}
    for name, path in model_names(arguments).items():
        if path.suffix == ".onnx":
            if not path.is_file():
                raise EmozooError(f"{path}: no such ONNX file")
            models[name] = load_for_inference(path, threads=threads, device=device)
        else:
            model = load_for_inference(path, device=device)
            # a server sees endless new clips: caching their features on disk would only grow without bound,
            # and its threads already run requests side by side
            for attribute, value in (("use_cache", False), ("n_jobs", 1)):
                if hasattr(model, attribute):
                    setattr(model, attribute, value)
            models[name] = model
    return models
