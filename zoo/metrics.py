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


def _checked_probabilities(true: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != true.shape[0]:
        raise ValueError(f"probabilities of shape {probabilities.shape} do not match {true.shape[0]} labels")
    return true, probabilities


def reliability_bins(true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Top-label reliability: per confidence bin, its range, clip count, mean confidence and accuracy.

    Empty bins are left out. The bins are equal-width over [0, 1]; the last one includes 1.0.
    """
    true, probabilities = _checked_probabilities(true, probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = which == b
        if members.any():
            bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(members.sum()),
                         "confidence": float(confidence[members].mean()),
                         "accuracy": float(correct[members].mean())})
    return bins


def expected_calibration_error(true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: the clip-weighted mean gap between confidence and accuracy over equal-width bins."""
    bins = reliability_bins(true, probabilities, n_bins)
    total = sum(b["n"] for b in bins)
    return float(sum(b["n"] * abs(b["confidence"] - b["accuracy"]) for b in bins) / max(total, 1))


def brier_score(true: np.ndarray, probabilities: np.ndarray) -> float:
    """Multi-class Brier score: mean over clips of the squared distance to the one-hot label (0 is perfect)."""
    true, probabilities = _checked_probabilities(true, probabilities)
    one_hot = np.zeros_like(probabilities)
    one_hot[np.arange(len(true)), true] = 1.0
    return float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1)))
