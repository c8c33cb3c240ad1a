"""Feature extraction over many clips: cached by content, parallel over every core."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from plugins.classic.features import EmoStatsConfig, SeedConfig, extract
from zoo.cache import FeatureCache
from zoo.fingerprint import config_digest, waveform_digest
from zoo.interrupts import workers_ignore_ctrl_c
from zoo.progress import progress_bar

if TYPE_CHECKING:
    from zoo.augment import Augmenter

PARALLEL_THRESHOLD = 8
# part of every cache key: bump it whenever an extractor's output changes while its config does not, so that
# features cached by the older code are never served again
EXTRACTOR_VERSION = 3


def _cached_rows(keys: Sequence[str], task: Callable[..., np.ndarray], arguments: Callable[[int], tuple],
                 *, n_jobs: int | None, cache: FeatureCache | None, batch_size: int, description: str) -> np.ndarray:
    """Row i is `task(*arguments(i))`, read from `cache` under keys[i] when there, else computed (in parallel
    over `n_jobs` processes, every core by default) and stored."""
    rows: list[np.ndarray | None] = [cache.get(k) if cache else None for k in keys]
    missing = [i for i, row in enumerate(rows) if row is None]
    if missing:
        jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
        if jobs != 1 and len(missing) >= PARALLEL_THRESHOLD:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=jobs, return_as="generator", batch_size=batch_size)
            with workers_ignore_ctrl_c():  # joblib starts its worker processes (and dispatches) here
                results = parallel(delayed(task)(*arguments(i)) for i in missing)
        else:
            results = (task(*arguments(i)) for i in missing)
        with progress_bar(len(missing), description) as advance:
            for index, features in zip(missing, results, strict=True):
                rows[index] = features
                if cache:
                    cache.put(keys[index], features)
                advance()
    return np.stack(rows)  # type: ignore[arg-type]


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
    return _cached_rows(keys, extract, lambda i: (waveforms[i], config), n_jobs=n_jobs, cache=cache, batch_size=4,
                        description=f"{description} ({config.name})")


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
    plan = [(i, c) for c in range(copies) for i in range(len(waveforms))]
    keys = [f"{digests[i]}-aug{augmenter.copy_fingerprint(digests[i], c)[:16]}-{c}-{config_key}-v{EXTRACTOR_VERSION}"
            for i, c in plan]

    def arguments(j: int) -> tuple:
        clip, copy = plan[j]
        return waveforms[clip], config.sample_rate, augmenter, digests[clip], copy, config

    # large batches: the augmenter (with its babble pool) is pickled once per batch
    return _cached_rows(keys, _augmented_features, arguments, n_jobs=n_jobs, cache=cache, batch_size=32,
                        description=f"augmented copies ({augmenter.spec_string}, {config.name})")
