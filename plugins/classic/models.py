"""librosa features + scikit-learn classifiers: librosa-svc, librosa-rf, librosa-logreg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plugins.classic.extraction import extract_augmented, extract_many
from plugins.classic.features import EmoStatsConfig, SeedConfig, default_meant, feature_config
from plugins.classic.invariance import check_invariance, nap_step
from zoo.balance import balanced_sample_weights
from zoo.cache import FeatureCache
from zoo.calibration import Calibration, check_method, fit_calibration, log_probabilities, skipped, speaker_folds
from zoo.errors import ModelFileError
from zoo.labels import LABELS
from zoo.model import EmotionModel, as_recorded

if TYPE_CHECKING:  # zoo.augment (scipy.signal) loads when a model trains, not when the plugin registers
    from zoo.augment import Augmenter

WEIGHTS = "model.skops"
BABBLE_POOL = 16
BABBLE_SECONDS = 4
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")


class ClassicModel(EmotionModel):
    """Utterance features from librosa, standardised, then a scikit-learn classifier."""

    family = "classic"
    features: str
    n_jobs: int | None
    use_cache: bool
    calibrate: str
    invariance: str = "none"
    invariance_dims: int = 3

    @property
    def config(self) -> EmoStatsConfig | SeedConfig:
        return feature_config(self.features)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def feature_config(self) -> dict[str, Any]:
        return self.config.as_dict()

    def _estimator(self, class_weight: str | None = "balanced") -> Any:
        raise NotImplementedError

    def transform(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        cache = FeatureCache() if self.use_cache else None
        return extract_many(waveforms, self.config, n_jobs=self.n_jobs, cache=cache)

    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int], groups: Sequence[object] | None = None,
            corpora: Sequence[str | None] | None = None) -> ClassicModel:
        """Fit on clips at `sample_rate`. `corpora` (one name per clip) balances corpora with `balance=corpus`;
        `groups` (speaker ids) lets `calibrate=temperature` fit its temperature on out-of-fold predictions of
        held-out speakers (without them the model stays uncalibrated)."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(waveforms) != len(labels):
            raise ValueError(f"{len(waveforms)} waveforms but {len(labels)} labels")
        if len(np.unique(labels)) < 2:
            raise ValueError("training needs clips of at least two emotions")
        if corpora is not None and len(corpora) != len(labels):
            raise ValueError(f"{len(corpora)} corpus names but {len(labels)} labels")
        check_method(self.calibrate)
        if check_invariance(self.invariance, self.invariance_dims) != "none" and groups is None:
            raise ValueError(f"invariance={self.invariance} needs speaker ids (a manifest 'speaker' column)")
        features = self.transform(waveforms)
        augmenter = self._augmenter(waveforms)
        copies = None
        if augmenter is not None:
            cache = FeatureCache() if self.use_cache else None
            copies = extract_augmented(waveforms, self.config, augmenter, self.augment_copies, n_jobs=self.n_jobs,
                                       cache=cache)
        every = np.arange(len(labels))
        self.pipeline_ = self._fit_pipeline(features, copies, labels, corpora, every, groups)
        self.calibration_ = self._fit_calibration(features, copies, labels, groups, corpora)
        self._record_training_data(waveforms, labels)
        return self

    def _fit_pipeline(self, features: np.ndarray, copies: np.ndarray | None, labels: np.ndarray,
                      corpora: Sequence[str | None] | None, rows: np.ndarray,
                      groups: Sequence[object] | None = None) -> Any:
        """The scaler (+ nuisance projection) + classifier fitted on the clips at `rows` (and their augmented
        copies)."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        chosen_corpora = None if corpora is None else [corpora[i] for i in rows]
        weights = balanced_sample_weights(labels[rows], chosen_corpora, self.balance)
        x, y = features[rows], labels[rows]
        if copies is not None:  # copy-major: all clips' copy 0, then copy 1, ...
            n = len(labels)
            x = np.concatenate([x, *(copies[c * n + rows] for c in range(self.augment_copies))])
            y = np.tile(y, 1 + self.augment_copies)
            weights = None if weights is None else np.tile(weights, 1 + self.augment_copies)
        estimator = self._estimator(class_weight=None if weights is not None else "balanced")
        fit_params = {} if weights is None else {"sample_weight": weights}
        if check_invariance(self.invariance, self.invariance_dims) == "none":
            pipeline = make_pipeline(StandardScaler(), estimator)
            return pipeline.fit(x, y, **{f"{pipeline.steps[-1][0]}__{k}": v for k, v in fit_params.items()})
        scaler = StandardScaler().fit(x)
        assert groups is not None, "fit() refuses invariance without speaker ids"
        # speaker ids are per corpus ("03" may be in two of them); directions from the original clips only
        speakers = [(None if corpora is None else corpora[i], groups[i]) for i in rows]
        projection = nap_step(scaler.transform(features[rows]), labels[rows], speakers, self.invariance_dims)
        estimator.fit(projection.transform(scaler.transform(x)), y, **fit_params)
        return make_pipeline(scaler, projection, estimator)

    def _fit_calibration(self, features: np.ndarray, copies: np.ndarray | None, labels: np.ndarray,
                         groups: Sequence[object] | None, corpora: Sequence[str | None] | None) -> Calibration:
        """A temperature fitted on speaker-grouped out-of-fold probabilities (the same recipe refitted per fold)."""
        if check_method(self.calibrate) == "none":
            return Calibration(fitted_on={"skipped": "calibrate=none"})
        folds = speaker_folds(labels, groups, seed=self.random_state)
        if isinstance(folds, str):
            return skipped(folds)
        held_out = np.zeros((len(labels), len(LABELS)))
        for train, test in folds:
            pipeline = self._fit_pipeline(features, copies, labels, corpora, train, groups)
            held_out[test] = _spread(pipeline, features[test])
        return fit_calibration(labels, log_probabilities(held_out), self.calibrate, folds=len(folds),
                               speakers=len({str(g) for g in groups or ()}),
                               predictions="out-of-fold, speaker-grouped")

    def _augmenter(self, waveforms: Sequence[np.ndarray]) -> Augmenter | None:
        if self.augment_copies < 1:
            return None
        return training_augmenter(self.augment, self.random_state, waveforms, self.sample_rate)

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.check_fitted()
        return self.proba_from_features(self.transform(waveforms))

    def proba_from_features(self, features: np.ndarray) -> np.ndarray:
        return self.calibrated(_spread(self.pipeline_, features))

    def _save_weights(self, directory: Path) -> None:
        import skops.io

        skops.io.dump(self.pipeline_, directory / WEIGHTS)

    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None:
        import skops.io

        saved = manifest.get("feature_config")
        if saved is not None and self.features == "default":
            self.features = default_meant(saved)
        if saved is not None and saved != as_recorded(self.feature_config()):
            raise ModelFileError(
                f"{directory}: saved with a {self.features!r} feature extractor that this emozoo version computes "
                "differently (level normalisation, new descriptors); retrain it, or export models to ONNX, whose "
                "features travel inside the file")
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


def training_augmenter(spec: str, seed: int, waveforms: Sequence[np.ndarray], sample_rate: int) -> Augmenter | None:
    """The augmenter of the training copies (None when `spec` turns augmentation off). Babble is mixed from a
    few training clips chosen by `seed`: the same clips and seed give the same copies, hence the same cache
    entries (emonet's augmented statistics reuse the classic models' cached copies this way)."""
    from zoo.augment import Augmenter

    augmenter = Augmenter(spec, seed=seed)
    if not augmenter.enabled:
        return None
    if "babble" in augmenter.kinds:
        # a few other training clips make the babble; kept small, as it travels to every worker
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(waveforms), size=min(BABBLE_POOL, len(waveforms)), replace=False)
        augmenter.set_noise_pool([np.asarray(waveforms[i])[: BABBLE_SECONDS * sample_rate] for i in chosen])
    return augmenter


def _spread(pipeline: Any, features: np.ndarray) -> np.ndarray:
    """The pipeline's probabilities in the six label columns (zero for classes it never saw)."""
    probabilities = np.zeros((features.shape[0], len(LABELS)), dtype=np.float64)
    probabilities[:, pipeline.classes_] = pipeline.predict_proba(features)
    return probabilities


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
        balance: str = "corpus",
        augment: str = "default",
        augment_copies: int = 1,
        calibrate: str = "temperature",
        invariance: str = "none",
        invariance_dims: int = 3,
    ) -> None:
        self.features = features
        self.C = C
        self.gamma = gamma
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.use_cache = use_cache
        self.balance = balance
        self.augment = augment
        self.augment_copies = augment_copies
        self.calibrate = calibrate
        self.invariance = invariance
        self.invariance_dims = invariance_dims

    def _estimator(self, class_weight: str | None = "balanced") -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import SVC

        # Platt-scaled probabilities from one SVC fitted on all data (what SVC(probability=True) did)
        folds = StratifiedKFold(5, shuffle=True, random_state=self.random_state)
        return CalibratedClassifierCV(
            SVC(C=self.C, gamma=self.gamma, class_weight=class_weight), method="sigmoid", cv=folds, ensemble=False
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
        balance: str = "corpus",
        augment: str = "default",
        augment_copies: int = 1,
        calibrate: str = "temperature",
        invariance: str = "none",
        invariance_dims: int = 3,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.use_cache = use_cache
        self.balance = balance
        self.augment = augment
        self.augment_copies = augment_copies
        self.calibrate = calibrate
        self.invariance = invariance
        self.invariance_dims = invariance_dims

    def _estimator(self, class_weight: str | None = "balanced") -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            class_weight=class_weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs if self.n_jobs is not None else -1,
        )


class LibrosaLogReg(ClassicModel):
    name = "librosa-logreg"

    def __init__(
        self,
        features: str = "default",
        C: float = 0.01,
        max_iter: int = 5000,
        random_state: int = 0,
        n_jobs: int | None = None,
        use_cache: bool = True,
        balance: str = "corpus",
        augment: str = "default",
        augment_copies: int = 1,
        calibrate: str = "temperature",
        invariance: str = "none",
        invariance_dims: int = 3,
    ) -> None:
        self.features = features
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.use_cache = use_cache
        self.balance = balance
        self.augment = augment
        self.augment_copies = augment_copies
        self.calibrate = calibrate
        self.invariance = invariance
        self.invariance_dims = invariance_dims

    def _estimator(self, class_weight: str | None = "balanced") -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=self.C, max_iter=self.max_iter, class_weight=class_weight, random_state=self.random_state
        )
