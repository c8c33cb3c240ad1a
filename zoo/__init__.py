"""emozoo: a speech-emotion-recognition model zoo."""

from __future__ import annotations

from importlib import metadata

from zoo.api import create_model, list_models, load
from zoo.hookspecs import hookimpl
from zoo.labels import LABELS
from zoo.model import EmotionModel
from zoo.timeline import timeline

try:
    __version__ = metadata.version("emozoo")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["LABELS", "EmotionModel", "__version__", "create_model", "hookimpl", "list_models", "load", "timeline"]
