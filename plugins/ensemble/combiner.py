"""How the ensemble turns its members' probabilities into one: a weighted mean, or a stacked logistic regression.

The stacked regression reads the members' probabilities side by side ([clips, 6 * members], member order) and
is fitted on out-of-fold probabilities: each clip's member probabilities come from members that never saw
its speaker, so the combiner learns how far to trust each member on unseen speakers, not on memorised ones.
Both combiners are plain arrays, saved as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ModelFileError
from zoo.labels import LABELS
from zoo.storage import atomic_write_json

COMBINER = "combiner.json"
COMBINE_MODES = ("mean", "stack")


@dataclass
class MeanCombiner:
    weights: np.ndarray  # [members], sums to 1

    def combine(self, probabilities: list[np.ndarray]) -> np.ndarray:
        return np.einsum("m,mnk->nk", self.weights, np.stack(probabilities))

    def as_dict(self) -> dict[str, Any]:
        return {"combine": "mean", "weights": self.weights.tolist()}


@dataclass
class StackCombiner:
    """softmax(stacked probabilities @ coef.T + intercept) over `classes`, spread over the six label ids."""

    coef: np.ndarray  # [n_classes, 6 * members]; a two-class regression is stored as two rows (0, w)
    intercept: np.ndarray  # [n_classes]
    classes: np.ndarray  # label ids the regression was fitted on

    @classmethod
    def fit(cls, stacked: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, C: float,
            random_state: int) -> StackCombiner:
        from sklearn.linear_model import LogisticRegression

        regression = LogisticRegression(C=C, max_iter=5000, random_state=random_state,
                                        class_weight=None if weights is not None else "balanced")
        regression.fit(stacked, labels, sample_weight=weights)
        coef, intercept = regression.coef_, regression.intercept_
        if len(regression.classes_) == 2:  # binary: p1 = sigmoid(z) = softmax([0, z])
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        return cls(coef.astype(np.float64), intercept.astype(np.float64), regression.classes_.astype(np.int64))

    def combine(self, probabilities: list[np.ndarray]) -> np.ndarray:
        logits = np.concatenate(probabilities, axis=1) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        known = np.exp(logits)
        known /= known.sum(axis=1, keepdims=True)
        spread = np.zeros((known.shape[0], len(LABELS)))
        spread[:, self.classes] = known
        return spread

    def as_dict(self) -> dict[str, Any]:
        return {"combine": "stack", "coef": self.coef.tolist(), "intercept": self.intercept.tolist(),
                "classes": self.classes.tolist()}


Combiner = MeanCombiner | StackCombiner


def save_combiner(combiner: Combiner, directory: Path) -> None:
    atomic_write_json(directory / COMBINER, combiner.as_dict())


def load_combiner(directory: Path, members: int, combine: str) -> Combiner:
    """Read `combiner.json`, checking that it fits `members` members and the `combine` mode saved."""
    import json

    path = directory / COMBINER
    if not path.is_file():
        raise ModelFileError(f"{directory}: {COMBINER} is missing")
    try:
        data = json.loads(path.read_text())
        if data.get("combine") != combine:
            raise ModelFileError(f"{path}: holds a {data.get('combine')!r} combiner, the manifest says {combine!r}")
        if combine == "mean":
            combiner: Combiner = MeanCombiner(np.asarray(data["weights"], dtype=np.float64))
            shape_ok = combiner.weights.shape == (members,)
        else:
            combiner = StackCombiner(np.asarray(data["coef"], dtype=np.float64),
                                     np.asarray(data["intercept"], dtype=np.float64),
                                     np.asarray(data["classes"], dtype=np.int64))
            n = len(combiner.classes)
            shape_ok = (combiner.coef.shape == (n, len(LABELS) * members) and combiner.intercept.shape == (n,)
                        and bool(np.all((combiner.classes >= 0) & (combiner.classes < len(LABELS)))))
    except ModelFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelFileError(f"{path}: corrupt combiner ({type(error).__name__}: {error})") from None
    if not shape_ok:
        raise ModelFileError(f"{path}: combiner does not fit {members} members")
    return combiner
