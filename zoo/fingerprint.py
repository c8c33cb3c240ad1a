"""Content fingerprints: of waveforms (feature cache keys, training data) and of configurations."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def waveform_digest(samples: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).data).hexdigest()  # no copy


def config_digest(config: Any) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def training_data_fingerprint(digests: Iterable[str], labels: Sequence[int]) -> str:
    """Order-independent fingerprint of (clip, label) pairs."""
    pairs = sorted(f"{digest}:{int(label)}" for digest, label in zip(digests, labels, strict=True))
    return "sha256:" + hashlib.sha256("\n".join(pairs).encode()).hexdigest()
