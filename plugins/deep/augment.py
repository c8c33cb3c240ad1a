"""Cheap waveform augmentation for training (numpy, one generator per clip so runs are reproducible)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WaveAugment:
    """Random crop, speed change (resampling), gain and additive noise; all off means a plain crop."""

    max_samples: int | None = None
    speed: float = 0.0  # maximum relative speed change, e.g. 0.1 for 0.9x..1.1x
    gain_db: float = 0.0  # maximum gain change in dB, either way
    noise_snr_db: tuple[float, float] | None = None  # SNR range of added white noise
    noise_probability: float = 0.5

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
        return np.ascontiguousarray(out, dtype=np.float32)


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
