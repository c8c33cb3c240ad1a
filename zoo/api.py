"""Top-level functions: list, create and load models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.model import read_manifest
from zoo.registry import create_model, list_models, model_spec

__all__ = ["create_model", "list_models", "load"]


def load(path: str | os.PathLike[str], **runtime_options: Any) -> Any:
    """Load a saved model directory, or an exported ``.onnx`` file (with onnxruntime only)."""
    target = Path(path)
    if target.suffix == ".onnx":
        from zoo.onnx_runtime import OnnxEmotionModel

        return OnnxEmotionModel(target, **runtime_options)
    manifest = read_manifest(target)
    return model_spec(manifest["plugin"]).factory.load(target)
