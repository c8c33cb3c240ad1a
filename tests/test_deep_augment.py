"""On-the-fly zoo.augment chains in the deep plugins (``--param augment=SPEC``), on real RAVDESS clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plugins.deep.augment import WaveAugment, chain_augmenter
from zoo import datasets
from zoo.errors import EmozooError
from zoo.registry import create_model

TINY_CNN = {"channels": [8, 16], "epochs": 2, "batch_size": 8, "max_train_seconds": 1.5, "num_threads": 1,
            "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def clips(ravdess_dir: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Two clips of each emotion (different speakers), cut to 2 s at 16 kHz."""
    chosen = []
    for label in range(6):
        chosen += [item for item in datasets.load(ravdess_dir).items if item.label == label][::20][:2]
    audio = datasets.load_waveforms(chosen, 16_000)
    return [w[:32_000] for w in audio.waveforms], np.array([item.label for item in audio.items])


def test_chains_are_drawn_per_epoch_and_clip(clips):
    waveforms, _ = clips
    chain = chain_augmenter("noise,babble,reverb,telephone,mp3", 1.0, seed=0, pool=waveforms)
    augment = WaveAugment(max_samples=16_000, chain=chain, chain_probability=1.0)
    plain = WaveAugment(max_samples=16_000)

    def rng(epoch: int, clip: int) -> np.random.Generator:
        return np.random.default_rng([0, epoch, clip])  # as DeepEmotionModel's batch maker seeds it

    first = augment(waveforms[0], rng(1, 0))
    assert len(first) == 16_000 and first.dtype == np.float32
    assert np.array_equal(first, augment(waveforms[0], rng(1, 0)))  # same epoch and clip: same copy
    assert not np.array_equal(first, augment(waveforms[0], rng(2, 0)))  # next epoch: another draw
    assert not np.array_equal(first, plain(waveforms[0], rng(1, 0)))
    # without a chain the old augmentation is unchanged, draw for draw
    assert np.array_equal(plain(waveforms[1], rng(3, 1)), WaveAugment(max_samples=16_000)(waveforms[1], rng(3, 1)))


def test_chain_probability_leaves_a_share_of_clips_clean(clips):
    waveforms, _ = clips
    augment = WaveAugment(chain=chain_augmenter("noise", 0.5, 0), chain_probability=0.5)
    changed = [not np.array_equal(augment(waveforms[0], np.random.default_rng([0, e, 0])), waveforms[0])
               for e in range(40)]
    assert 0.25 < np.mean(changed) < 0.75


def test_bad_specs_are_refused_before_training(clips):
    waveforms, labels = clips
    assert chain_augmenter("none", 0.5, 0) is None and chain_augmenter(None, 0.5, 0) is None
    with pytest.raises(EmozooError, match="unknown augmentation 'echo'"):
        create_model("logmel-cnn", **TINY_CNN, augment="noise,echo").fit(waveforms, labels)
    with pytest.raises(EmozooError, match="augment_probability"):
        chain_augmenter("noise", 0.0, 0)


def test_logmel_cnn_trains_with_augment_and_reloads(clips, tmp_path):
    waveforms, labels = clips
    model = create_model("logmel-cnn", **TINY_CNN, augment="default", augment_probability=0.8)
    model.fit(waveforms, labels)
    probabilities = model.predict_proba(waveforms)
    assert probabilities.shape == (len(waveforms), 6) and np.isfinite(probabilities).all()
    saved = model.save(tmp_path / "cnn")
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["params"]["augment"] == "default" and manifest["params"]["augment_probability"] == 0.8
    from zoo.api import load

    np.testing.assert_allclose(load(saved).predict_proba(waveforms), probabilities, atol=1e-6)
    again = create_model("logmel-cnn", **TINY_CNN, augment="default", augment_probability=0.8).fit(waveforms, labels)
    np.testing.assert_allclose(again.predict_proba(waveforms), probabilities, atol=1e-6)  # reproducible


def test_wav2vec2_augment_accepts_a_spec_and_keeps_the_old_switch(clips):
    waveforms, _ = clips
    legacy = create_model("wav2vec2", augment=True)._augmentation(waveforms)
    assert legacy.chain is None and legacy.gain_db == 6.0 and legacy.noise_snr_db == (15.0, 40.0)
    off = create_model("wav2vec2")._augmentation(waveforms)
    assert off.chain is None and off.gain_db == 0 and off.noise_snr_db is None
    spec = create_model("wav2vec2", augment="reverb,opus", augment_probability=0.3)._augmentation(waveforms)
    assert spec.chain is not None and spec.chain.spec_string == "reverb,opus" and spec.chain_probability == 0.3
