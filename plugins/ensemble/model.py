"""`ensemble`: several registered models combined into one, by a (weighted) probability mean or by stacking.

Members are named by the `members` parameter (plugins.ensemble.members has the grammar). Members that compute
the same features (the classic models with one feature set) compute them once per call. Saved as a directory:
manifest.json, combiner.json, and each member's own saved directory under members/<index>/.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from plugins.ensemble.combiner import COMBINE_MODES, Combiner, MeanCombiner, StackCombiner, load_combiner, save_combiner
from plugins.ensemble.members import MemberSpec, parse_members, parse_weights
from zoo.balance import balanced_sample_weights
from zoo.errors import EmozooError, ModelFileError
from zoo.labels import LABELS
from zoo.model import EmotionModel, fit_with_speakers, read_manifest
from zoo.progress import note

MEMBERS_DIR = "members"


def build_member(spec: MemberSpec) -> EmotionModel:
    """An unfitted member; an unknown model or parameter is an error naming the member."""
    from zoo.registry import create_model

    if spec.name == "ensemble":
        raise EmozooError(f"ensemble member {spec}: an ensemble cannot be a member of an ensemble")
    try:
        return create_model(spec.name, **spec.params)
    except EmozooError as error:
        raise EmozooError(f"ensemble member {spec}: {error}") from None
    except (TypeError, ValueError) as error:
        raise EmozooError(f"ensemble member {spec}: bad parameters ({error})") from None


def feature_key(member: Any) -> str | None:
    """Members with the same key compute identical features (`transform`), so they can share them."""
    if not (hasattr(member, "transform") and hasattr(member, "proba_from_features")):
        return None
    return json.dumps({"family": member.family, "config": member.feature_config()}, sort_keys=True, default=str)


def member_probabilities(members: Sequence[Any], waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each member's [clips, 6] probabilities; members sharing a feature key extract the features once."""
    features: dict[str, np.ndarray] = {}
    out = []
    for member in members:
        key = feature_key(member)
        if key is None:
            out.append(np.asarray(member.predict_proba(waveforms), dtype=np.float64))
            continue
        if key not in features:
            features[key] = member.transform(waveforms)
        out.append(np.asarray(member.proba_from_features(features[key]), dtype=np.float64))
    return out


def speaker_folds(labels: np.ndarray, groups: Sequence[object] | None, corpora: Sequence[str | None] | None,
                  folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds in which every speaker's clips are held out together (stacking's out-of-fold split).

    Speaker ids are taken per corpus ("03" of two corpora is two people); fewer speakers than `folds` give
    one fold per speaker.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if groups is None or any(g is None for g in groups):
        raise EmozooError("ensemble combine=stack needs a speaker id for every training clip (its "
                          "out-of-fold probabilities are grouped by speaker); use combine=mean otherwise")
    if corpora is not None:
        speakers = [f"{c}/{g}" for c, g in zip(corpora, groups, strict=True)]
    else:
        speakers = [str(g) for g in groups]
    distinct = len(set(speakers))
    if distinct < 2:
        raise EmozooError("ensemble combine=stack needs clips of at least two speakers")
    splitter = StratifiedGroupKFold(n_splits=min(folds, distinct), shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, speakers))


class Ensemble(EmotionModel):
    """Members' probabilities averaged (`combine=mean`, optional `weights`) or stacked (`combine=stack`)."""

    name = "ensemble"
    family = "ensemble"

    def __init__(
        self,
        members: str | Sequence[str] = "emonet,librosa-logreg",
        combine: str = "mean",
        weights: str | Sequence[float] | None = None,
        stack_folds: int = 5,
        stack_C: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.members = members
        self.combine = combine
        self.weights = weights
        self.stack_folds = stack_folds
        self.stack_C = stack_C
        self.random_state = random_state
        # checked here, so that a bad setting fails before any training
        self.specs_ = parse_members(members)
        if combine not in COMBINE_MODES:
            raise EmozooError(f"ensemble combine={combine!r}: choose one of {', '.join(COMBINE_MODES)}")
        self.weights_ = parse_weights(weights, len(self.specs_))
        if combine == "stack" and self.weights_ is not None:
            raise EmozooError("ensemble weights apply to combine=mean; combine=stack learns its own")
        if combine == "stack" and (int(stack_folds) != stack_folds or stack_folds < 2):
            raise EmozooError(f"ensemble stack_folds={stack_folds!r}: needs a whole number >= 2")
        self.members_ = [build_member(spec) for spec in self.specs_]
        rates = {m.sample_rate for m in self.members_}
        if len(rates) > 1:
            listed = ", ".join(f"{spec} at {m.sample_rate} Hz" for spec, m in zip(self.specs_, self.members_,
                                                                                   strict=True))
            raise EmozooError(f"ensemble members must share one sample rate: {listed}")

    @property
    def sample_rate(self) -> int:
        return int(self.members_[0].sample_rate)

    # run-time knobs (threads, the feature cache) that `load_for_inference` and `emozoo bench` set: each
    # reaches the members that have it
    def _member_knob(self, knob: str) -> Any:
        return next((getattr(m, knob) for m in self.members_ if hasattr(m, knob)), None)

    def _set_member_knob(self, knob: str, value: Any) -> None:
        for member in self.members_:
            if hasattr(member, knob):
                setattr(member, knob, value)

    n_jobs = property(lambda self: self._member_knob("n_jobs"), lambda self, v: self._set_member_knob("n_jobs", v))
    num_threads = property(lambda self: self._member_knob("num_threads"),
                           lambda self, v: self._set_member_knob("num_threads", v))
    use_cache = property(lambda self: self._member_knob("use_cache"),
                         lambda self, v: self._set_member_knob("use_cache", v))

    def feature_config(self) -> dict[str, Any]:
        return {"members": [{"model": str(spec), "feature_config": m.feature_config()}
                            for spec, m in zip(self.specs_, self.members_, strict=True)]}

    # -- training ------------------------------------------------------------------------------------------
    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int], groups: Sequence[object] | None = None,
            corpora: Sequence[str | None] | None = None) -> Ensemble:
        """Fit every member on all clips. `groups` (speaker ids) are needed by `combine=stack`, whose
        regression is fitted on out-of-fold member probabilities, folds by speaker; `corpora` reach the
        members (corpus balancing) and weigh the regression's clips the same way."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(waveforms) != len(labels):
            raise ValueError(f"{len(waveforms)} waveforms but {len(labels)} labels")
        if self.combine == "stack":
            self.combiner_: Combiner = self._fit_stack(waveforms, labels, groups, corpora)
        else:
            count = len(self.members_)
            self.combiner_ = MeanCombiner(np.asarray(self.weights_ or [1.0 / count] * count))
        fitted = []
        for index, spec in enumerate(self.specs_):
            note(f"ensemble: fitting member {index + 1}/{len(self.specs_)} {spec} on {len(labels)} clips")
            fitted.append(self._fit_member(spec, waveforms, labels, groups, corpora))
        self.members_ = fitted
        self._record_training_data(waveforms, labels)
        return self

    @staticmethod
    def _fit_member(spec: MemberSpec, waveforms: Sequence[np.ndarray], labels: np.ndarray,
                    groups: Sequence[object] | None, corpora: Sequence[str | None] | None) -> EmotionModel:
        member = build_member(spec)
        speakers = list(groups) if groups is not None else [None] * len(labels)
        return fit_with_speakers(member, waveforms, labels, speakers, corpora)

    def _fit_stack(self, waveforms: Sequence[np.ndarray], labels: np.ndarray, groups: Sequence[object] | None,
                   corpora: Sequence[str | None] | None) -> StackCombiner:
        splits = speaker_folds(labels, groups, corpora, int(self.stack_folds), self.random_state)
        stacked = np.zeros((len(labels), len(LABELS) * len(self.specs_)))
        for number, (train, test) in enumerate(splits):
            note(f"ensemble: out-of-fold member probabilities, fold {number + 1}/{len(splits)}")
            train_corpora = [corpora[i] for i in train] if corpora is not None else None
            members = [self._fit_member(spec, [waveforms[i] for i in train], labels[train],
                                        [groups[i] for i in train], train_corpora)  # type: ignore[index]
                       for spec in self.specs_]
            stacked[test] = np.concatenate(member_probabilities(members, [waveforms[i] for i in test]), axis=1)
        weights = balanced_sample_weights(labels, corpora, "corpus") if corpora is not None else None
        return StackCombiner.fit(stacked, labels, weights, self.stack_C, self.random_state)

    # -- inference -----------------------------------------------------------------------------------------
    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.check_fitted()
        return self.combiner_.combine(member_probabilities(self.members_, waveforms))

    # -- persistence ---------------------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        for index, member in enumerate(self.members_):
            member.save(directory / MEMBERS_DIR / str(index))
        save_combiner(self.combiner_, directory)

    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None:
        from zoo.registry import model_spec

        loaded = []
        for index, spec in enumerate(self.specs_):
            path = directory / MEMBERS_DIR / str(index)
            saved = read_manifest(path)
            if saved["plugin"] != spec.name:
                raise ModelFileError(f"{path}: holds a {saved['plugin']!r} model, the ensemble's member {index} "
                                     f"is {spec}")
            loaded.append(model_spec(spec.name).factory.load(path))
        self.members_ = loaded
        self.combiner_ = load_combiner(directory, len(loaded), self.combine)
