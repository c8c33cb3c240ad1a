"""One model on one runtime and device, behind a common face the scenarios time.

`NativeRunner` wraps an `EmotionModel` (a classic pipeline is timed in two stages, feature extraction and
classifier, with its feature cache switched off); `OnnxRunner` wraps `zoo.onnx_runtime.OnnxEmotionModel` on
onnxruntime's CPU or CUDA provider.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import Laps


class Unavailable(Exception):
    """This model / runtime / device combination cannot run here; the message says why."""


def torch_cuda_usable() -> bool:
    if os.environ.get("EMOZOO_DISABLE_CUDA") == "1":
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def path_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def limit_threads(model: Any, threads: int) -> None:
    """Run a native model on `threads` threads: torch intra-op threads for the deep plugins, joblib workers
    for feature extraction and scikit-learn estimators for the classic ones."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if hasattr(model, "num_threads"):
        model.num_threads = threads
    if hasattr(model, "n_jobs"):
        model.n_jobs = threads
    for step in getattr(getattr(model, "pipeline_", None), "steps", []):
        estimator = step[1]
        for part in (estimator, getattr(estimator, "estimator", None)):
            if part is not None and hasattr(part, "n_jobs"):
                part.n_jobs = threads


class NativeRunner:
    runtime = "native"

    def __init__(self, model: Any, device: str, path: Path | None = None, threads: int | None = None) -> None:
        self.model = model
        self.device = device
        self.path = path
        self.threads = threads
        if device == "cuda":
            if not hasattr(model, "network_"):
                raise Unavailable(f"{model.name} runs natively on the CPU only (no CUDA implementation)")
            if not torch_cuda_usable():
                raise Unavailable("torch sees no usable CUDA GPU")
        if hasattr(model, "network_"):
            model.device = device  # the deep plugins resolve it on every predict
        self._cache_setting = getattr(model, "use_cache", None)
        if self._cache_setting is not None:
            model.use_cache = False  # time the extraction, not a cache lookup
        self.staged = hasattr(model, "transform") and hasattr(model, "proba_from_features")
        if threads is not None:
            limit_threads(model, threads)

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Untimed predictions (for accuracy): the feature cache, if the model has one, is allowed."""
        if self._cache_setting is None:
            return np.asarray(self.model.predict_proba(waveforms))
        self.model.use_cache = self._cache_setting
        try:
            return np.asarray(self.model.predict_proba(waveforms))
        finally:
            self.model.use_cache = False

    def timed(self, waveforms: Sequence[np.ndarray], laps: Laps) -> None:
        if self.staged:
            features = self.model.transform(waveforms)
            laps.lap("features")
            self.model.proba_from_features(features)
            laps.lap("classifier")
        else:
            self.model.predict_proba(waveforms)
            laps.lap("model")

    def synchronize(self) -> None:
        if self.device == "cuda" and "torch" in sys.modules:
            sys.modules["torch"].cuda.synchronize()

    def describe(self) -> dict[str, Any]:
        threads = self.threads
        if "torch" in sys.modules and hasattr(self.model, "network_"):
            threads = sys.modules["torch"].get_num_threads()
        return {"staged": self.staged, "threads": threads,
                "size_bytes": path_size(self.path) if self.path else None}


class OnnxRunner:
    def __init__(self, path: Path, device: str, runtime: str = "onnx", threads: int | None = None) -> None:
        from zoo.onnx_runtime import CPU, CUDA, OnnxEmotionModel, cuda_usable

        self.runtime = runtime
        self.device = device
        self.path = Path(path)
        self.threads = threads
        if device == "cuda" and not cuda_usable():
            raise Unavailable("onnxruntime's CUDA provider is not usable here")
        providers = [CUDA, CPU] if device == "cuda" else [CPU]
        self.model = OnnxEmotionModel(self.path, threads=threads, providers=providers)
        if device == "cuda" and CUDA not in self.model.providers:
            raise Unavailable(f"{self.path.name}: onnxruntime fell back to {self.model.providers}")

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(waveforms))

    def timed(self, waveforms: Sequence[np.ndarray], laps: Laps) -> None:
        self.model.predict_proba(waveforms, batch_size=len(waveforms))  # one session run
        laps.lap("model")

    def synchronize(self) -> None:
        return None  # session.run returns host arrays: it has waited for the GPU already

    def describe(self) -> dict[str, Any]:
        return {"staged": False, "threads": self.threads, "providers": self.model.providers,
                "size_bytes": path_size(self.path)}
