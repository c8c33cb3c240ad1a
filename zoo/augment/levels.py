"""Level, speech activity, SNR, gain, additive noise and babble.

SNR convention (used everywhere in emozoo): ``SNR = 10 * log10(P_signal / P_noise)`` where both powers are
mean squares over the same samples: those of the **active speech** frames of the clean signal
(`active_mask`), so that pauses and leading/trailing silence do not dilute the speech level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FRAME_SECONDS = 0.02
ACTIVE_RANGE_DB = 35.0  # a frame is speech when its power is within this many dB of the loudest frame
_TINY = 1e-20


def as_mono(x: np.ndarray) -> np.ndarray:
    """The waveform as a 1-D float32 array (a view when it already is one)."""
    array = np.asarray(x, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {array.shape}")
    return array


def active_mask(x: np.ndarray, sample_rate: int, *, frame_seconds: float = FRAME_SECONDS,
                range_db: float = ACTIVE_RANGE_DB) -> np.ndarray:
    """Per-sample boolean mask of active speech: the 20 ms frames whose power is within `range_db` of the
    loudest frame. A silent clip (all zeros) counts as active everywhere."""
    x = as_mono(x)
    frame = max(1, int(round(frame_seconds * sample_rate)))
    count = -(-len(x) // frame)
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[: len(x)] = x
    power = np.mean(padded.reshape(count, frame) ** 2, axis=1)
    loudest = float(power.max()) if count else 0.0
    if loudest <= _TINY:
        return np.ones(len(x), dtype=bool)
    frames = power >= loudest * 10 ** (-range_db / 10)
    return np.repeat(frames, frame)[: len(x)]


def active_power(x: np.ndarray, mask: np.ndarray) -> float:
    """Mean square of `x` over the samples where `mask` is true."""
    values = np.asarray(x, dtype=np.float64)[mask]
    return float(np.mean(values**2)) if values.size else 0.0


def snr_db(clean: np.ndarray, noise: np.ndarray, sample_rate: int) -> float:
    """Measured SNR in dB of `clean` against `noise` (the added signal), over the clean signal's active speech."""
    mask = active_mask(clean, sample_rate)
    return 10 * np.log10(max(active_power(clean, mask), _TINY) / max(active_power(noise, mask), _TINY))


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db` decibels. Exact float32 multiplication: nothing is clipped, so after a positive gain
    samples may exceed +-1 (full scale); the channel simulations (`telephone`, `codec`) keep such signals
    unclipped too, by scaling them into full scale and back."""
    return as_mono(x) * np.float32(10 ** (db / 20))


def fit_length(signal: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A `length`-sample stretch of `signal` from a random offset, looping it when it is shorter."""
    signal = as_mono(signal)
    if len(signal) == 0:
        raise ValueError("cannot take a stretch of an empty signal")
    if len(signal) >= length:
        start = int(rng.integers(0, len(signal) - length + 1))
        return signal[start : start + length]
    return np.resize(np.roll(signal, -int(rng.integers(0, len(signal)))), length)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, noise: np.ndarray | None = None,
              sample_rate: int = 16_000) -> np.ndarray:
    """Add white Gaussian noise, or a stretch of `noise` (looped or cut from a random offset), scaled so that
    the SNR measured over the active speech of `x` (module docstring, `snr_db`) equals `snr_db` exactly.
    A silent `x` is returned unchanged. `sample_rate` only sets the 20 ms activity frames."""
    x = as_mono(x)
    target_snr = snr_db
    if noise is None:
        stretch = rng.standard_normal(len(x)).astype(np.float32)
    else:
        stretch = fit_length(noise, len(x), rng)
    mask = active_mask(x, sample_rate)
    speech = active_power(x, mask)
    added = active_power(stretch, mask)
    if added <= _TINY:  # a noise stretch silent just where the speech is: level it over the whole clip
        added = active_power(stretch, np.ones(len(x), dtype=bool))
    if speech <= _TINY or added <= _TINY:
        return x.copy()
    scale = np.sqrt(speech / (added * 10 ** (target_snr / 10)))
    return (x + stretch * np.float32(scale)).astype(np.float32)


def babble(clips: Sequence[np.ndarray], length: int, rng: np.random.Generator,
           n_talkers: int | tuple[int, int] = (4, 6), sample_rate: int = 16_000) -> np.ndarray:
    """Babble noise: `n_talkers` (a count, or an inclusive range to draw from) clips from `clips`, each with
    its pauses cut out (`active_mask`), a random `length`-sample stretch of it (looped when shorter) at unit
    level, summed and scaled to unit RMS."""
    if len(clips) == 0:
        raise ValueError("babble needs at least one clip")
    low, high = (n_talkers, n_talkers) if isinstance(n_talkers, int) else n_talkers
    talkers = int(rng.integers(low, high + 1))
    chosen = rng.choice(len(clips), size=talkers, replace=talkers > len(clips))
    mix = np.zeros(length, dtype=np.float64)
    for index in chosen:
        clip = as_mono(clips[int(index)])
        speech = active_mask(clip, sample_rate)
        talker = clip[speech] if speech.any() else clip  # pauses left out: babble is dense
        stretch = fit_length(talker, length, rng).astype(np.float64)
        level = float(np.mean(stretch**2))
        if level > _TINY:
            mix += stretch / np.sqrt(level)
    rms = np.sqrt(np.mean(mix**2))
    return (mix / rms if rms > 0 else mix).astype(np.float32)
