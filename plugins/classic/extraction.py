"""Feature extraction over many clips: cached by content, parallel over every core."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from plugins.classic.features import EmoStatsConfig, SeedConfig, extract
from zoo.augment import Augmenter
from zoo.cache import FeatureCache
from zoo.fingerprint import config_digest, waveform_digest
from zoo.progress import progress_bar

PARALLEL_THRESHOLD = 8
# part of every cache key: bump it whenever an extractor's output changes while its config does not, so that
# features cached by the older code are never served again
EXTRACTOR_VERSION = 3


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


def _augmented_features(waveform: np.ndarray, sample_rate: int, augmenter: Augmenter, key: str, index: int,
                        config: EmoStatsConfig | SeedConfig) -> np.ndarray:
    return extract(augmenter.copy(waveform, sample_rate, key, index), config)


def extract_augmented(
    waveforms: Sequence[np.ndarray],
    config: EmoStatsConfig | SeedConfig,
    augmenter: Augmenter,
    copies: int,
    *,
    n_jobs: int | None = None,
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """Features of `copies` degraded copies of every clip: [len(waveforms) * copies, n_features], copy-major
    (all clips' copy 0, then copy 1, ...). A copy is drawn from (augmenter seed, clip content, copy index), so
    its features are cached without making the copy again."""
    digests = [waveform_digest(w) for w in waveforms]
    config_key = config_digest(config.as_dict())[:16]
    augment_key = augmenter.fingerprint[:16]
    jobs_list = [(i, c) for c in range(copies) for i in range(len(waveforms))]
    keys = [f"{digests[i]}-aug{augment_key}-{c}-{config_key}-v{EXTRACTOR_VERSION}" for i, c in jobs_list]
    rows: list[np.ndarray | None] = [cache.get(k) if cache else None for k in keys]
    missing = [j for j, row in enumerate(rows) if row is None]
    if missing:
        jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
        sample_rate = config.sample_rate
        if jobs != 1 and len(missing) >= PARALLEL_THRESHOLD:
            from joblib import Parallel, delayed

            # large batches: the augmenter (with its babble pool) is pickled once per batch
            parallel = Parallel(n_jobs=jobs, return_as="generator", batch_size=32)
            results = parallel(
                delayed(_augmented_features)(waveforms[jobs_list[j][0]], sample_rate, augmenter,
                                             digests[jobs_list[j][0]], jobs_list[j][1], config)
                for j in missing
            )
        else:
            results = (_augmented_features(waveforms[jobs_list[j][0]], sample_rate, augmenter,
                                           digests[jobs_list[j][0]], jobs_list[j][1], config) for j in missing)
        with progress_bar(len(missing), f"augmented copies ({augmenter.spec_string}, {config.name})") as advance:
            for index, features in zip(missing, results, strict=True):
                rows[index] = features
                if cache:
                    cache.put(keys[index], features)
                advance()
    return np.stack(rows)  # type: ignore[arg-type]
