"""invariance=nap (nuisance-attribute projection) in the classic models: the projection itself, accuracy on
unseen speakers, save/load and ONNX parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import zoo
from exporters import export_model
from plugins.classic.invariance import nap_step, nuisance_directions
from zoo import datasets
from zoo.onnx_runtime import OnnxEmotionModel

TRAIN_SPEAKERS = 10  # of RAVDESS's 16; the rest are held out


def test_the_projection_removes_a_planted_speaker_offset() -> None:
    rng = np.random.default_rng(0)
    n_features, nuisance = 12, np.eye(12)[3] + np.eye(12)[7]
    nuisance /= np.linalg.norm(nuisance)
    labels = np.repeat(np.arange(3), 40)
    speakers = np.tile(np.repeat(np.arange(8), 5), 3)
    offsets = rng.normal(scale=5.0, size=8)[speakers]
    features = rng.normal(scale=0.3, size=(len(labels), n_features)) + offsets[:, None] * nuisance + labels[:, None]
    direction = nuisance_directions(features, labels, speakers, dims=1)[0]
    assert abs(direction @ nuisance) > 0.99
    projected = nap_step(features, labels, speakers, dims=1).transform(features)
    assert np.abs(projected @ direction).max() < 1e-9
    assert np.std(projected @ nuisance) < 0.05 * np.std(features @ nuisance)  # the speakers' spread is gone
    other = np.eye(n_features)[0]  # a direction orthogonal to the nuisance passes almost unchanged
    np.testing.assert_allclose(projected @ other, features @ (other - (other @ direction) * direction), atol=1e-9)


@pytest.fixture(scope="module")
def split(ravdess_dir: Path) -> dict:
    dataset = datasets.load(ravdess_dir)
    speakers = sorted({item.speaker for item in dataset.items})
    train = [i for i, item in enumerate(dataset.items) if item.speaker in speakers[:TRAIN_SPEAKERS]]
    test = [i for i, item in enumerate(dataset.items) if item.speaker not in speakers[:TRAIN_SPEAKERS]]
    audio = datasets.load_waveforms(dataset.items, 16_000)
    labels = dataset.labels
    return {
        "train": ([audio.waveforms[i] for i in train], labels[train], [dataset.items[i].speaker for i in train]),
        "test": ([audio.waveforms[i] for i in test], labels[test]),
    }


@pytest.fixture(scope="module")
def fitted(split: dict) -> zoo.EmotionModel:
    waveforms, labels, speakers = split["train"]
    model = zoo.create_model("librosa-logreg", invariance="nap", invariance_dims=3, augment="none")
    return model.fit(waveforms, labels, groups=speakers)


def test_nap_logreg_beats_chance_on_unseen_speakers(fitted: zoo.EmotionModel, split: dict) -> None:
    assert [name for name, _ in fitted.pipeline_.steps][1] == "truncatedsvd"  # the projection is in the pipeline
    waveforms, labels = split["test"]
    accuracy = float((fitted.predict(waveforms) == labels).mean())
    assert accuracy > 0.35, f"accuracy {accuracy:.3f} on {len(labels)} clips of unseen speakers (chance ~0.18)"


def test_nap_model_round_trips_and_exports(fitted: zoo.EmotionModel, split: dict, tmp_path: Path) -> None:
    waveforms, labels = split["test"]
    clips = (waveforms[:24], labels[:24])
    native = fitted.predict_proba(clips[0])
    loaded = zoo.load(fitted.save(tmp_path / "nap"))
    assert loaded.get_params()["invariance"] == "nap"
    np.testing.assert_allclose(loaded.predict_proba(clips[0]), native, atol=1e-12)
    report = export_model(fitted, tmp_path / "nap.onnx", validate_on=clips)
    assert report.validation.passed and report.validation.agreement == 1.0
    onnx_probabilities = OnnxEmotionModel(tmp_path / "nap.onnx", threads=1).predict_proba(clips[0])
    assert np.abs(onnx_probabilities - native).max() <= 1e-3


def test_nap_needs_speaker_ids_and_a_known_mode(split: dict) -> None:
    waveforms, labels, _ = split["train"]
    with pytest.raises(ValueError, match="needs speaker ids"):
        zoo.create_model("librosa-logreg", invariance="nap", augment="none").fit(waveforms[:12], labels[:12])
    with pytest.raises(ValueError, match="invariance must be one of"):
        zoo.create_model("librosa-logreg", invariance="whiten").fit(waveforms[:12], labels[:12])
