"""On-disk cache of per-clip features, keyed by the clip's content and the feature configuration.

Keys never involve file names, so an edited file or a changed configuration never serves stale features.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from zoo.storage import atomic_write_bytes


def default_cache_dir() -> Path:
    if "EMOZOO_CACHE_DIR" in os.environ:
        return Path(os.environ["EMOZOO_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "emozoo" / "features"


class FeatureCache:
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        try:
            return np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError, EOFError):
            return None

    def put(self, key: str, features: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, features, allow_pickle=False)
        try:
            atomic_write_bytes(self._path(key), buffer.getvalue())
        except OSError:
            pass  # a read-only or full cache must never break training or prediction
