"""emonet's augmented statistics: degraded copies' statistics replace the clean ones for a share of the
training clips (the classic models' `augment=` copies), never at inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plugins.deep.augment import WaveAugment
from zoo import datasets
from zoo.errors import EmozooError
from zoo.registry import create_model


@pytest.fixture(scope="module")
def clips(ravdess_dir: Path) -> list[np.ndarray]:
    items = datasets.load(ravdess_dir).items[::90][:8]
    return [w[:24_000] for w in datasets.load_waveforms(items, 16_000).waveforms]


def test_training_batches_mix_degraded_statistics_and_inference_stays_clean(clips: list[np.ndarray]) -> None:
    model = create_model("emonet", n_jobs=1, statistics_augment="default", statistics_augment_probability=0.5)
    clean = model._clip_inputs(clips)
    copies = model._augmented_statistics(clips)
    assert copies is not None and copies.shape == clean.shape
    assert not np.allclose(copies, clean)  # noise, rooms, codecs... move the statistics
    model._statistics_copies = copies
    make_batch = model._batch_maker(clips, WaveAugment(), clean)
    positions = list(range(len(clips)))
    moved = {p for p in positions if not np.allclose(copies[p], clean[p], rtol=1e-5, atol=1e-4)}
    assert len(moved) >= len(clips) // 2  # a copy may draw no change
    swapped = set()
    for epoch in (1, 2, 3):
        statistics = make_batch(positions, epoch)[-1].numpy()
        from_copies = {p for p in positions if np.allclose(statistics[p], copies[p], rtol=1e-5, atol=1e-4)}
        from_clean = {p for p in positions if np.allclose(statistics[p], clean[p], rtol=1e-5, atol=1e-4)}
        assert from_copies | from_clean == set(positions)
        np.testing.assert_array_equal(make_batch(positions, epoch)[-1].numpy(), statistics)  # reproducible
        swapped |= {(epoch, p) for p in from_copies & moved}
    assert 0 < len(swapped) < len(moved) * 3  # about half the clips, different ones each epoch
    np.testing.assert_allclose(make_batch(positions, None)[-1].numpy(), clean, rtol=1e-6)  # validation
    inference = model._batch_maker(clips, None, clean)
    np.testing.assert_allclose(inference(positions, None)[-1].numpy(), clean, rtol=1e-6)


def test_statistics_augmentation_off_and_bad_settings() -> None:
    assert create_model("emonet", statistics_augment=None)._augmented_statistics([np.zeros(16_000)]) is None
    assert create_model("emonet", statistics_augment="none")._augmented_statistics([np.zeros(16_000)]) is None
    with pytest.raises(EmozooError, match="statistics_augment_probability"):
        create_model("emonet", statistics_augment_probability=1.5).fit([np.zeros(16_000)] * 2, [0, 1])
    with pytest.raises(EmozooError, match="statistics_augment='bogus'"):
        create_model("emonet", statistics_augment="bogus")._augmented_statistics([np.zeros(16_000)])
