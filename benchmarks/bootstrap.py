"""95 % intervals from a bootstrap over speakers: resample the test speakers with replacement, recompute the
metric from all their clips, take the 2.5th and 97.5th percentiles (seeded, so a rerun gives the same interval).

Speakers, not clips, are the unit: clips of one speaker are not independent, and a benchmark's uncertainty
comes mostly from which speakers happen to be tested.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zoo.metrics import confusion_matrix

METRICS = ("accuracy", "uar", "macro_f1")
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


def metrics_of_confusions(confusions: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, UAR and macro-F1 of a stack of confusion matrices [..., K, K], as `zoo.metrics.scores` computes
    them (UAR and macro-F1 over the classes present in each matrix)."""
    support = confusions.sum(axis=-1)
    predicted = confusions.sum(axis=-2)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    present = support > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(present, hits / np.maximum(support, 1), 0.0)
        precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    n_present = np.maximum(present.sum(axis=-1), 1)
    return {
        "accuracy": hits.sum(axis=-1) / np.maximum(support.sum(axis=-1), 1),
        "uar": (recall * present).sum(axis=-1) / n_present,
        "macro_f1": (f1 * present).sum(axis=-1) / n_present,
    }


def speaker_replicates(true: np.ndarray, predicted: np.ndarray, speakers: Sequence[str],
                       resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    """Each metric recomputed on `resamples` bootstrap samples of the speakers: {metric: array[resamples]}."""
    true, predicted = np.asarray(true, dtype=int), np.asarray(predicted, dtype=int)
    keys = np.asarray([str(s) for s in speakers])
    if not (len(true) == len(predicted) == len(keys)) or len(keys) == 0:
        raise ValueError("the bootstrap needs one true label, prediction and speaker per clip, and some clips")
    names = np.unique(keys)
    per_speaker = np.stack([confusion_matrix(true[keys == n], predicted[keys == n]) for n in names]).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(resamples, len(names)))
    weights = np.stack([np.bincount(row, minlength=len(names)) for row in draws]).astype(float)
    confusions = np.tensordot(weights, per_speaker, axes=(1, 0))  # [resamples, K, K]
    return metrics_of_confusions(confusions)


def interval(replicates: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """The percentile interval {low, high} of bootstrap replicates."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return {"low": float(low), "high": float(high)}


def speaker_intervals(true: np.ndarray, predicted: np.ndarray, speakers: Sequence[str],
                      resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, dict[str, float]]:
    """{metric: {low, high}}: the 95 % interval of accuracy, UAR and macro-F1 over speakers."""
    replicates = speaker_replicates(true, predicted, speakers, resamples, seed)
    return {metric: interval(replicates[metric]) for metric in METRICS}


def mean_intervals(replicates: Sequence[dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """The interval of the mean over corpora: each corpus resampled on its own, the replicates averaged."""
    return {metric: interval(np.mean([r[metric] for r in replicates], axis=0)) for metric in METRICS}

