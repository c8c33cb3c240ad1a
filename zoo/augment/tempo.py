"""Speed perturbation by resampling (tempo and pitch change together, as in Kaldi's speed perturbation)."""

from __future__ import annotations

import numpy as np
import soxr

from zoo.augment.levels import as_mono


def speed(x: np.ndarray, sample_rate: int, factor: float, *, keep_length: bool = True) -> np.ndarray:
    """Play `factor` times faster (1.1: 10 % faster and higher). With `keep_length` (the default) the result
    is centred in the input's length: a slower, longer clip loses equal parts of both ends, a faster,
    shorter one is zero-padded equally on both sides. With keep_length=False it is len(x) / factor long."""
    x = as_mono(x)
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if abs(factor - 1.0) < 1e-9:
        return x.copy()
    changed = soxr.resample(x, sample_rate * factor, sample_rate, quality="HQ").astype(np.float32)
    if not keep_length:
        return changed
    n = len(x)
    if len(changed) >= n:
        start = (len(changed) - n) // 2
        return changed[start : start + n]
    before = (n - len(changed)) // 2
    return np.pad(changed, (before, n - len(changed) - before))
