"""The validation split used for early stopping: by speaker when speakers are known, stratified otherwise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def validation_split(
    labels: np.ndarray, groups: Sequence[object] | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train positions, validation positions); an empty validation set when `fraction` is 0.

    With `groups` (speaker ids), no speaker is in both parts. Without, a stratified random split.
    """
    every = np.arange(len(labels))
    if fraction <= 0:
        return every, every[:0]
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    if groups is not None:
        if len(groups) != len(labels):
            raise ValueError(f"{len(groups)} groups but {len(labels)} labels")
        keys = np.array([str(g) for g in groups])
        if len(set(keys.tolist())) >= 2:
            return _grouped(labels, keys, fraction, seed)
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(labels, return_counts=True)
    n_validation = max(int(round(fraction * len(labels))), len(classes))
    stratify = labels if counts.min() >= 2 and n_validation < len(labels) - len(classes) else None
    train, validation = train_test_split(every, test_size=n_validation, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(validation)


def _grouped(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_groups = len(set(groups.tolist()))
    n_splits = min(max(2, int(round(1 / fraction))), n_groups)
    try:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train, validation = next(splitter.split(np.zeros(len(labels)), labels, groups))
    except ValueError:  # too few clips per class for stratification
        splitter = GroupShuffleSplit(n_splits=1, test_size=1 / n_splits, random_state=seed)
        train, validation = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train), np.sort(validation)
