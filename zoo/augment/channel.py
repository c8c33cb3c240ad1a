"""A telephone line: 8 kHz sampling, the 300-3400 Hz voice band and optional G.711 mu-law quantisation."""

from __future__ import annotations

import numpy as np
import soxr
from scipy import signal

from zoo.augment.levels import as_mono

TELEPHONE_RATE = 8_000
TELEPHONE_BAND = (300.0, 3400.0)
MU = 255.0


def match_length(x: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad (at the end) to `length` samples."""
    if len(x) >= length:
        return x[:length]
    return np.concatenate([x, np.zeros(length - len(x), dtype=x.dtype)])


def full_scale(x: np.ndarray) -> float:
    """The factor that brings a signal over full scale (|x| > 1) back to a peak of 1; 1 otherwise.
    Channel simulations divide by it before and multiply after, so they never clip."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return max(1.0, peak)


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Mu-law (mu = 255) companding, uniform quantisation of the companded value to `bits` bits, expansion:
    the quantisation noise of G.711, which follows the signal's level. `x` is in [-1, 1]."""
    companded = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    steps = 2**bits - 1
    quantised = np.round((companded + 1) / 2 * steps) / steps * 2 - 1
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU)) / MU).astype(np.float32)


def telephone(x: np.ndarray, sample_rate: int, *, mu_law_quantise: bool = True,
              band: tuple[float, float] = TELEPHONE_BAND) -> np.ndarray:
    """Resample to 8 kHz (soxr), band-pass `band` (4th-order Butterworth, run forwards and backwards so the
    output stays aligned), optionally mu-law quantise (G.711), resample back to `sample_rate`; same length.
    Signals over full scale are scaled down for the line and back up after (`full_scale`), never clipped."""
    x = as_mono(x)
    scale = full_scale(x)
    narrow = soxr.resample(x / scale, sample_rate, TELEPHONE_RATE, quality="HQ")
    bandpass = signal.butter(4, band, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    narrow = signal.sosfiltfilt(bandpass, narrow).astype(np.float32)
    if mu_law_quantise:
        narrow = mu_law(np.clip(narrow, -1.0, 1.0))
    wide = soxr.resample(narrow, TELEPHONE_RATE, sample_rate, quality="HQ")
    return (match_length(wide, len(x)) * np.float32(scale)).astype(np.float32)
