"""Feature extraction over many clips: cached by content, parallel over every core."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from plugins.classic.features import EmoStatsConfig, SeedConfig, extract
from zoo.cache import FeatureCache
from zoo.fingerprint import config_digest, waveform_digest
from zoo.progress import progress_bar

PARALLEL_THRESHOLD = 8
# part of every cache key: bump it whenever an extractor's output changes while its config does not, so that
# features cached by the older code are never served again
EXTRACTOR_VERSION = 2


def extract_many(
    waveforms: Sequence[np.ndarray],
    config: EmoStatsConfig | SeedConfig,
    *,
    n_jobs: int | None = None,
    cache: FeatureCache | None = None,
    description: str = "features",
) -> np.ndarray:
    """Return [n_clips, n_features]; clips already in `cache` are not recomputed."""
    config_key = config_digest(config.as_dict())
    keys = [f"{waveform_digest(w)}-{config_key[:16]}-v{EXTRACTOR_VERSION}" for w in waveforms]
    rows: list[np.ndarray | None] = [cache.get(k) if cache else None for k in keys]
    missing = [i for i, row in enumerate(rows) if row is None]
    if missing:
        jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
        if jobs != 1 and len(missing) >= PARALLEL_THRESHOLD:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=jobs, return_as="generator", batch_size=4)
            results = parallel(delayed(extract)(waveforms[i], config) for i in missing)
        else:
            results = (extract(waveforms[i], config) for i in missing)
        with progress_bar(len(missing), f"{description} ({config.name})") as advance:
            for index, features in zip(missing, results, strict=True):
                rows[index] = features
                if cache:
                    cache.put(keys[index], features)
                advance()
    return np.stack(rows)  # type: ignore[arg-type]
