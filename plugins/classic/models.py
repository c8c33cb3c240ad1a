"""librosa features + scikit-learn classifiers: librosa-svc, librosa-rf, librosa-logreg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from plugins.classic.extraction import extract_many
from plugins.classic.features import EmoStatsConfig, SeedConfig, feature_config
from zoo.cache import FeatureCache
from zoo.errors import ModelFileError
from zoo.labels import LABELS
from zoo.model import EmotionModel

WEIGHTS = "model.skops"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")


class ClassicModel(EmotionModel):
    """Utterance features from librosa, standardised, then a scikit-learn classifier."""

    family = "classic"
    features: str
    n_jobs: int | None
    use_cache: bool

    @property
    def config(self) -> EmoStatsConfig | SeedConfig:
        return feature_config(self.features)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def feature_config(self) -> dict[str, Any]:
        return self.config.as_dict()

    def _estimator(self) -> Any:
        raise NotImplementedError

    def transform(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        cache = FeatureCache() if self.use_cache else None
        return extract_many(waveforms, self.config, n_jobs=self.n_jobs, cache=cache)

    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int]) -> ClassicModel:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        labels = np.asarray(labels, dtype=np.int64)
        if len(waveforms) != len(labels):
            raise ValueError(f"{len(waveforms)} waveforms but {len(labels)} labels")
        if len(np.unique(labels)) < 2:
            raise ValueError("training needs clips of at least two emotions")
        features = self.transform(waveforms)
        self.pipeline_ = make_pipeline(StandardScaler(), self._estimator()).fit(features, labels)
        self._record_training_data(waveforms, labels)
        return self

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.check_fitted()
        return self.proba_from_features(self.transform(waveforms))

    def proba_from_features(self, features: np.ndarray) -> np.ndarray:
        known = self.pipeline_.predict_proba(features)
        probabilities = np.zeros((features.shape[0], len(LABELS)), dtype=np.float64)
        probabilities[:, self.pipeline_.classes_] = known
        return probabilities

    def _save_weights(self, directory: Path) -> None:
        import skops.io

        skops.io.dump(self.pipeline_, directory / WEIGHTS)

    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None:
        import skops.io

        path = directory / WEIGHTS
        if not path.is_file():
            raise ModelFileError(f"{directory}: {WEIGHTS} is missing")
        try:
            untrusted = skops.io.get_untrusted_types(file=path)
            foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
            if foreign:
                raise ModelFileError(f"{path}: refuses to load types outside scikit-learn: {', '.join(foreign)}")
            self.pipeline_ = skops.io.load(path, trusted=untrusted)
        except ModelFileError:
            raise
        except Exception as error:  # skops reports corrupt archives with many exception types
            raise ModelFileError(f"{path}: corrupt model weights ({error})") from None


class LibrosaSVC(ClassicModel):
    name = "librosa-svc"

    def __init__(
        self,
        features: str = "default",
        C: float = 10.0,
        gamma: str | float = "scale",
        random_state: int = 0,
        n_jobs: int | None = None,
        use_cache: bool = True,
    ) -> None:
        self.features = features
        self.C = C
        self.gamma = gamma
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.use_cache = use_cache

    def _estimator(self) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import SVC

        # Platt-scaled probabilities from one SVC fitted on all data (what SVC(probability=True) did)
        folds = StratifiedKFold(5, shuffle=True, random_state=self.random_state)
        return CalibratedClassifierCV(
            SVC(C=self.C, gamma=self.gamma, class_weight="balanced"), method="sigmoid", cv=folds, ensemble=False
        )


class LibrosaRF(ClassicModel):
    name = "librosa-rf"

    def __init__(
        self,
        features: str = "default",
        n_estimators: int = 500,
        min_samples_leaf: int = 1,
        random_state: int = 0,
        n_jobs: int | None = None,
        use_cache: bool = True,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.use_cache = use_cache

    def _estimator(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            class_weight="balanced",
            random_state=self.random_state,
            n_jobs=self.n_jobs if self.n_jobs is not None else -1,
        )


class LibrosaLogReg(ClassicModel):
    name = "librosa-logreg"

    def __init__(
        self,
        features: str = "default",
        C: float = 0.1,
        max_iter: int = 5000,
        random_state: int = 0,
        n_jobs: int | None = None,
        use_cache: bool = True,
    ) -> None:
        self.features = features
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.use_cache = use_cache

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=self.C, max_iter=self.max_iter, class_weight="balanced", random_state=self.random_state
        )
