"""The default model shipped inside the package, and its demo clips."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).parent / "assets"


def default_model_path() -> Path:
    return ASSETS / "default" / "emozoo-default.onnx"


def demo_clips_dir() -> Path:
    return ASSETS / "demo"
