"""Synthetic reverberation: a room impulse response from a direct path, sparse early reflections and
exponentially decaying low-passed noise with a given RT60, and its Schroeder RT60 estimate."""

from __future__ import annotations

import numpy as np
from scipy import signal

from zoo.augment.levels import as_mono

LN_1000 = np.log(1000.0)  # energy falls 60 dB (amplitude 1000x) in RT60 seconds
REFERENCE_RT60 = 0.3  # the direct-to-reverberant ratio range below holds at this RT60
DRR_DB = (0.0, 8.0)  # direct-to-reverberant energy ratio drawn at REFERENCE_RT60; lower for longer RT60


def room_impulse_response(sample_rate: int, rt60: float, rng: np.random.Generator, *,
                          drr_db: float | None = None) -> np.ndarray:
    """An impulse response with a unit direct path at sample 0 (so the output stays aligned with the input
    and its direct sound has the input's level), 4-8 early reflections within 40 ms, and a diffuse tail:
    Gaussian noise low-passed at 3-7 kHz (air and wall absorption) under an envelope decaying 60 dB in
    `rt60` seconds, starting 3-10 ms after the direct sound and 1.5 x RT60 long.

    The reverberant energy sits `drr_db` below the direct sound; by default drawn uniformly from DRR_DB
    minus 10 log10(rt60 / 0.3): in one room, doubling the reverberation time adds 3 dB of reverberant
    energy (Sabine).
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    length = int(sample_rate * (1.5 * rt60 + 0.05))
    t = np.arange(length) / sample_rate
    envelope = np.exp(-LN_1000 * t / rt60)
    cutoff = min(float(rng.uniform(3000.0, 7000.0)), 0.45 * sample_rate)
    lowpass = signal.butter(2, cutoff, btype="low", fs=sample_rate, output="sos")
    tail = signal.sosfilt(lowpass, rng.standard_normal(length)) * envelope
    onset = int(rng.uniform(0.003, 0.010) * sample_rate)
    ramp = int(0.005 * sample_rate)
    tail[:onset] = 0.0
    tail[onset : onset + ramp] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(len(tail[onset : onset + ramp])) / ramp)
    early = np.zeros(length)
    for _ in range(int(rng.integers(4, 9))):
        position = int(rng.uniform(0.001, 0.040) * sample_rate)
        early[position] += rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 1.0) * envelope[position]
    early *= np.sqrt(np.sum(tail**2) / max(np.sum(early**2), 1e-20)) * 0.5  # early energy ~ -6 dB of the tail
    reverberant = tail + early
    if drr_db is None:
        drr_db = float(rng.uniform(*DRR_DB)) - 10 * np.log10(rt60 / REFERENCE_RT60)
    reverberant *= np.sqrt(10 ** (-drr_db / 10) / np.sum(reverberant**2))
    response = reverberant
    response[0] += 1.0
    return response.astype(np.float32)


def reverberate(x: np.ndarray, sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """`x` in a synthetic room (`room_impulse_response`), cut to the input's length (the tail after the
    clip's end is dropped); the direct sound keeps the input's level and timing."""
    x = as_mono(x)
    response = room_impulse_response(sample_rate, rt60, rng)
    return signal.fftconvolve(x, response)[: len(x)].astype(np.float32)


def estimate_rt60(response: np.ndarray, sample_rate: int, *, fit_db: tuple[float, float] = (-5.0, -25.0)) -> float:
    """RT60 of an impulse response by Schroeder backward integration: the energy decay curve's slope fitted
    between `fit_db` (T20 by default), extrapolated to 60 dB."""
    energy = np.cumsum(np.asarray(response, dtype=np.float64)[::-1] ** 2)[::-1]
    curve = 10 * np.log10(np.maximum(energy / energy[0], 1e-30))
    upper, lower = fit_db
    chosen = np.nonzero((curve <= upper) & (curve >= lower))[0]
    if len(chosen) < 2:
        raise ValueError(f"the decay curve does not span {upper}..{lower} dB")
    slope, _ = np.polyfit(chosen / sample_rate, curve[chosen], 1)
    return float(-60.0 / slope)
