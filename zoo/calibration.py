"""Confidence calibration: temperature scaling fitted on held-out speakers' predictions.

A model's probabilities are calibrated when, of the clips it labels with confidence 0.7, about 70 % are right.
Classifiers trained on a few dozen speakers are usually over-confident on new ones. Temperature scaling
(Guo et al., ICML 2017) divides the logits by one number T fitted to minimise the negative log-likelihood of
held-out predictions: T > 1 softens over-confident outputs, T < 1 sharpens timid ones. It never changes which
label wins. For models that give probabilities rather than logits, log-probabilities stand in for the logits
(``softmax(log p / T)``, the same thing for a softmax model).

A model stores its fitted `Calibration` in its manifest and applies it in ``predict_proba``; the ONNX exporter
appends the same step to the graph (exporters/calibration.py). See docs/calibration.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.errors import ModelFileError
from zoo.metrics import brier_score, expected_calibration_error

METHODS = ("temperature", "none")
# probabilities are clipped here before the logarithm: a zero probability (a forest with no vote for a class)
# must stay finite, and the ONNX graph clips at the same value
MIN_PROBABILITY = 1e-12
# search range of T; outside it a model is either uniform or one-hot whatever the input
T_BOUNDS = (0.02, 50.0)
MIN_SPEAKERS = 3


def check_method(method: str | None) -> str:
    """The method named; None (how `--param calibrate=none` arrives from the command line) is "none"."""
    if method is None:
        return "none"
    if method not in METHODS:
        raise ValueError(f"calibrate={method!r} is not one of: {', '.join(METHODS)}")
    return method


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), MIN_PROBABILITY, None))


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    from scipy.special import softmax

    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def negative_log_likelihood(true: np.ndarray, logits: np.ndarray, temperature: float = 1.0) -> float:
    from scipy.special import log_softmax

    scaled = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-scaled[np.arange(len(true)), np.asarray(true, dtype=int)].mean())


def fit_temperature(true: np.ndarray, logits: np.ndarray) -> float:
    """The T in `T_BOUNDS` minimising the mean negative log-likelihood of softmax(logits / T) (search on log T)."""
    from scipy.optimize import minimize_scalar

    true = np.asarray(true, dtype=int)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(true) != len(logits) or len(true) == 0:
        raise ValueError(f"need [n, classes] logits for n > 0 labels, got {logits.shape} for {len(true)} labels")
    result = minimize_scalar(lambda log_t: negative_log_likelihood(true, logits, float(np.exp(log_t))),
                             bounds=tuple(np.log(T_BOUNDS)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


@dataclass(frozen=True)
class Calibration:
    """How a model's outputs are rescaled: `method` "none" (identity) or "temperature" with `temperature`.

    `fitted_on` records the held-out predictions T was fitted on and what it did to them (or why none was
    fitted); it is information for people, not used in computing.
    """

    method: str = "none"
    temperature: float = 1.0
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.method == "temperature" and self.temperature != 1.0

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from a model's raw ones (unchanged when not `active`)."""
        if not self.active or len(probabilities) == 0:
            return probabilities
        return softmax_with_temperature(log_probabilities(probabilities), self.temperature)

    def apply_logits(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from logits."""
        return softmax_with_temperature(logits, self.temperature if self.active else 1.0)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "temperature": self.temperature, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Calibration:
        """Read a manifest's "calibration" entry; models saved before calibration existed have none (T = 1)."""
        if data is None:
            return cls(fitted_on={"note": "saved before emozoo fitted calibrations"})
        try:
            method = check_method(str(data["method"]))
            temperature = float(data.get("temperature", 1.0))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{where}: bad calibration entry {data!r} ({error})") from None
        if not np.isfinite(temperature) or temperature <= 0:
            raise ModelFileError(f"{where}: calibration temperature must be a positive number, got {temperature}")
        return cls(method, temperature, dict(data.get("fitted_on") or {}))


IDENTITY = Calibration()


def skipped(reason: str) -> Calibration:
    return Calibration("none", 1.0, {"skipped": reason})


def calibration_scores(true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Expected calibration error (top label, equal-width bins) and multi-class Brier score."""
    return {"ece": expected_calibration_error(true, probabilities, n_bins), "brier": brier_score(true, probabilities)}


def fit_calibration(true: np.ndarray, logits: np.ndarray, method: str, **context: Any) -> Calibration:
    """Fit `method` on held-out (`true`, `logits`) and record what it changed there.

    On by default where it helps: a temperature that does not lower the held-out expected calibration error is
    not kept (the model stays uncalibrated, with the reason recorded). `context` (clips, speakers, folds...) goes
    into `fitted_on`.
    """
    check_method(method)
    if method == "none":
        return Calibration(fitted_on={"skipped": "calibrate=none"})
    true = np.asarray(true, dtype=int)
    temperature = fit_temperature(true, logits)
    before = softmax_with_temperature(logits, 1.0)
    after = softmax_with_temperature(logits, temperature)
    report = {
        **context,
        "clips": len(true),
        "temperature_fitted": round(temperature, 4),
        "nll_before": round(negative_log_likelihood(true, logits), 4),
        "nll_after": round(negative_log_likelihood(true, logits, temperature), 4),
        **{f"{k}_before": round(v, 4) for k, v in calibration_scores(true, before).items()},
        **{f"{k}_after": round(v, 4) for k, v in calibration_scores(true, after).items()},
    }
    if report["ece_after"] >= report["ece_before"]:
        return Calibration("none", 1.0, {**report, "skipped": "the fitted temperature did not lower held-out ECE"})
    return Calibration("temperature", round(temperature, 6), report)


def speaker_folds(labels: np.ndarray, speakers: Sequence[object] | None, n_folds: int = 5,
                  seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]] | str:
    """Speaker-disjoint (train, held-out) folds covering every clip once, stratified by class where possible;
    or, when there are too few speakers to hold any out, the reason as a string."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if speakers is None or any(s is None for s in speakers):
        return "no speaker ids: held-out predictions would share speakers with training"
    groups = np.array([str(s) for s in speakers])
    n_speakers = len(set(groups.tolist()))
    if n_speakers < MIN_SPEAKERS:
        return f"{n_speakers} speaker(s): at least {MIN_SPEAKERS} are needed to hold some out"
    folds = min(n_folds, n_speakers)
    labels = np.asarray(labels)
    try:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(labels)), labels, groups))
    except ValueError:  # a class with fewer clips than folds
        splits = list(GroupKFold(n_splits=folds).split(np.zeros(len(labels)), labels, groups))
    usable = [(train, test) for train, test in splits if len(np.unique(labels[train])) >= 2 and len(test)]
    if len(usable) < len(splits):
        return "a speaker fold would leave training with fewer than two emotions"
    return usable


UNCERTAIN = "uncertain"


def check_min_confidence(value: float | None, what: str = "min_confidence") -> float | None:
    if value is not None and not (np.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{what} must be a probability in [0, 1], got {value}")
    return value


def decide(probabilities: np.ndarray, min_confidence: float | None = None) -> tuple[str, int | None, float]:
    """(label, label id, confidence) of one clip's probabilities; the label is `UNCERTAIN` (and the id None)
    when the top probability is below `min_confidence`."""
    from zoo.labels import LABELS

    label_id = int(np.argmax(probabilities))
    confidence = float(probabilities[label_id])
    if min_confidence is not None and confidence < min_confidence:
        return UNCERTAIN, None, confidence
    return LABELS[label_id], label_id, confidence
