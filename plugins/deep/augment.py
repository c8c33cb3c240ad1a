"""Waveform augmentation for training (one generator per epoch and clip, so runs are reproducible): a random
crop, cheap speed / gain / white-noise changes, and, with ``augment=SPEC``, chains of zoo.augment degradations
(noise, babble, reverberation, telephone, codecs, ...) drawn on the fly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from zoo.errors import EmozooError

if TYPE_CHECKING:
    from zoo.augment import Augmenter


@dataclass(frozen=True)
class WaveAugment:
    """Random crop, speed change (resampling), gain and additive noise; all off means a plain crop."""

    max_samples: int | None = None
    speed: float = 0.0  # maximum relative speed change, e.g. 0.1 for 0.9x..1.1x
    gain_db: float = 0.0  # maximum gain change in dB, either way
    noise_snr_db: tuple[float, float] | None = None  # SNR range of added white noise
    noise_probability: float = 0.5
    chain: Augmenter | None = None  # zoo.augment chains, applied after the above to a share of the clips
    chain_probability: float = 1.0
    sample_rate: int = 16_000

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(waveform, dtype=np.float32)
        if self.speed > 0:
            factor = float(rng.uniform(1 - self.speed, 1 + self.speed))
            out = change_speed(out, factor)
        if self.max_samples is not None and len(out) > self.max_samples:
            start = int(rng.integers(0, len(out) - self.max_samples + 1))
            out = out[start : start + self.max_samples]
        if self.gain_db > 0:
            out = out * np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
        if self.noise_snr_db is not None and rng.random() < self.noise_probability:
            power = float(np.mean(out.astype(np.float64) ** 2)) + 1e-12
            snr = rng.uniform(*self.noise_snr_db)
            noise = rng.standard_normal(len(out)).astype(np.float32)
            out = out + noise * np.float32(np.sqrt(power / 10 ** (snr / 10)))
        if self.chain is not None and rng.random() < self.chain_probability:
            out = self.chain.apply(out, self.sample_rate, rng)
        return np.ascontiguousarray(out, dtype=np.float32)


def chain_augmenter(spec: str | bool | None, probability: float, seed: int,
                    pool: Sequence[np.ndarray] = ()) -> Augmenter | None:
    """The zoo.augment Augmenter of a deep model's ``augment=SPEC`` (None for none/false), the training clips
    as its babble pool. A bad spec or probability is an EmozooError, raised before any training."""
    if spec is None or spec is False or (isinstance(spec, str) and spec.strip().lower() in ("none", "false", "")):
        return None
    if not isinstance(spec, str):
        raise EmozooError(f"augment must be a comma list of kinds, 'default' or 'none'; got {spec!r}")
    if not 0 < probability <= 1:
        raise EmozooError(f"augment_probability must be in (0, 1], got {probability!r}")
    from zoo.augment import Augmenter

    try:
        augmenter = Augmenter(spec, seed=seed)
    except ValueError as error:
        raise EmozooError(f"augment={spec!r}: {error}") from None
    augmenter.set_noise_pool(pool)
    return augmenter


def change_speed(waveform: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (pitch moves with it, like tape or Kaldi's speed perturbation)."""
    if abs(factor - 1.0) < 1e-6 or len(waveform) < 2:
        return waveform
    new_length = max(2, int(round(len(waveform) / factor)))
    positions = np.linspace(0, len(waveform) - 1, new_length)
    return np.interp(positions, np.arange(len(waveform)), waveform).astype(np.float32)


def crop_center(waveform: np.ndarray, max_samples: int | None) -> np.ndarray:
    if max_samples is None or len(waveform) <= max_samples:
        return waveform
    start = (len(waveform) - max_samples) // 2
    return waveform[start : start + max_samples]
