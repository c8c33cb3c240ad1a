"""Top-level functions: list, create and load models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.model import read_manifest
from zoo.registry import create_model, list_models, model_spec

__all__ = ["DEVICES", "create_model", "list_models", "load", "load_for_inference"]

DEVICES = ("auto", "cpu", "cuda")


def load(path: str | os.PathLike[str], **runtime_options: Any) -> Any:
    """Load a saved model directory, or an exported ``.onnx`` file (with onnxruntime only)."""
    target = Path(path)
    if target.suffix == ".onnx":
        from zoo.onnx_runtime import OnnxEmotionModel

        return OnnxEmotionModel(target, **runtime_options)
    manifest = read_manifest(target)
    return model_spec(manifest["plugin"]).factory.load(target)


def load_for_inference(path: str | os.PathLike[str], *, threads: int | None = None, device: str = "auto") -> Any:
    """Load a model to predict with, on `device` ("auto": CUDA where usable) with `threads` CPU threads.

    For an ONNX file these pick onnxruntime's providers and intra-op threads; for a saved model they set
    its own knobs (a classic model's feature-extraction processes, a deep model's device and torch threads).
    Asking for CUDA where it cannot be had is an error, not a quiet fallback to the CPU.
    """
    from zoo.errors import EmozooError

    if device not in DEVICES:
        raise EmozooError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    if threads is not None and threads < 1:
        raise EmozooError(f"threads must be at least 1, got {threads}")
    target = Path(path)
    if target.suffix == ".onnx":
        from zoo.onnx_runtime import CPU, CUDA, cuda_usable

        if device == "cuda" and not cuda_usable():
            raise EmozooError(f"{target}: CUDA asked for, but onnxruntime's CUDA provider is not usable here "
                              "(it needs onnxruntime-gpu, an NVIDIA GPU and driver, and the CUDA libraries)")
        providers = {"auto": None, "cpu": [CPU], "cuda": [CUDA, CPU]}[device]
        return load(target, threads=threads, providers=providers)
    model = load(target)
    if threads is not None:
        for knob in ("n_jobs", "num_threads"):
            if hasattr(model, knob):
                setattr(model, knob, threads)
    if device != "auto":
        if hasattr(model, "device"):
            model.device = device
        elif device == "cuda":
            raise EmozooError(f"{target}: {model.name} runs on the CPU only (export it to ONNX for CUDA)")
    return model
