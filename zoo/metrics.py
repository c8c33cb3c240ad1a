"""Classification metrics for emotion recognition (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.labels import LABELS


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int = len(LABELS)) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return matrix


def scores(true: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, unweighted average recall (over classes present), macro-F1, per-class recall, confusion."""
    matrix = confusion_matrix(true, predicted)
    support = matrix.sum(axis=1)
    predicted_counts = matrix.sum(axis=0)
    hits = np.diag(matrix)
    present = support > 0
    recall = np.divide(hits, support, out=np.zeros(len(LABELS)), where=present)
    precision = np.divide(hits, predicted_counts, out=np.zeros(len(LABELS)), where=predicted_counts > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(LABELS)),
                   where=(precision + recall) > 0)
    return {
        "n": int(support.sum()),
        "accuracy": float(hits.sum() / max(support.sum(), 1)),
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_recall": {LABELS[i]: float(recall[i]) for i in range(len(LABELS)) if present[i]},
        "confusion": matrix.tolist(),
        "labels": list(LABELS),
    }
