"""Lossy codecs through libsndfile, in memory: MP3 (LAME / mpg123), Opus and Vorbis (in Ogg).

The bitrate asked for becomes libsndfile's compression level (soundfile's ``compression_level``):

- MP3: constant bitrate (``bitrate_mode="CONSTANT"``); libsndfile maps the level linearly onto LAME's
  bitrate range for the MPEG version of the rate (8-160 kbps below 32 kHz, 32-320 at 32 kHz and above),
  and LAME takes the nearest standard bitrate.
- Opus: the level maps linearly onto the encoder's target of 6-256 kbps; Opus varies its rate with the
  content, so speech with pauses comes out below the target (32 kbps asked: about 27 on speech).
- Vorbis: libsndfile offers only a quality setting; the level for a bitrate is interpolated from a table
  measured on 20 speech clips at 16 kHz mono (`VORBIS_KBPS`): about 30 to 77 kbps, so lower asks give
  Vorbis's lowest quality (about 30 kbps).

Decoded audio is realigned on the input: the codec's delay (LAME's encoder delay plus mpg123's decoder
delay when the file carries no gapless information, 1105 samples at 16 kHz and 32 kbps) is measured once
per setting by cross-correlating a probe signal (`codec_delay`), then removed, and the result cut or padded
to the input's length.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import soundfile as sf
import soxr

from zoo.augment.channel import full_scale, match_length
from zoo.augment.levels import as_mono

FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "vorbis": ("OGG", "VORBIS")}
MP3_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
# (compression level, kbps) measured for Vorbis on speech at 16 kHz mono
VORBIS_KBPS = ((0.0, 76.5), (0.1, 70.7), (0.2, 64.8), (0.3, 59.2), (0.4, 53.5), (0.5, 48.0), (0.6, 44.0),
               (0.7, 39.9), (0.8, 36.0), (0.9, 32.4), (1.0, 29.9))
_MAX_DELAY = 4096


def available(format: str) -> bool:
    """Whether this libsndfile can encode `format` ("mp3", "opus" or "vorbis")."""
    major, subtype = FORMATS[_check_format(format)]
    return major in sf.available_formats() and subtype in sf.available_subtypes(major)


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"unknown codec {format!r}; choose one of {', '.join(FORMATS)}")
    return format


def coding_rate(format: str, sample_rate: int) -> int:
    """The rate the codec runs at: the input's where the codec supports it, else 48 kHz."""
    supported = {"mp3": MP3_RATES, "opus": OPUS_RATES}.get(_check_format(format))
    return sample_rate if supported is None or sample_rate in supported else 48_000


def compression_level(format: str, sample_rate: int, bitrate_kbps: float) -> float:
    """libsndfile's compression level (0 best .. 1 smallest) for `bitrate_kbps` (module docstring)."""
    if _check_format(format) == "mp3":
        low, high = (8.0, 160.0) if sample_rate < 32_000 else (32.0, 320.0)
        # libsndfile truncates the bitrate it computes to an integer: aim half a kbps above
        level = (high - (bitrate_kbps + 0.5)) / (high - low)
        return float(np.clip(level, 0.0, 0.99))
    if format == "opus":
        return float(np.clip(1.0 - (bitrate_kbps * 1000 - 6000) / 250_000, 0.0, 1.0))
    levels, rates = zip(*VORBIS_KBPS, strict=True)
    return float(np.interp(bitrate_kbps, rates[::-1], levels[::-1]))


def _encode_decode(x: np.ndarray, sample_rate: int, format: str, level: float) -> np.ndarray:
    major, subtype = FORMATS[format]
    buffer = io.BytesIO()
    mode = "CONSTANT" if format == "mp3" else None
    with sf.SoundFile(buffer, "w", sample_rate, 1, subtype, format=major, compression_level=level,
                      bitrate_mode=mode) as handle:
        handle.write(x)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return decoded if decoded.ndim == 1 else decoded[:, 0]


@functools.lru_cache(maxsize=256)
def codec_delay(format: str, sample_rate: int, level: float) -> int:
    """Samples by which the decoded signal lags the input for this setting, measured on a probe (a second
    of noise in speech-like bursts) by cross-correlation."""
    rng = np.random.default_rng(20_240_601)
    t = np.arange(sample_rate) / sample_rate
    probe = (0.3 * rng.standard_normal(sample_rate) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    decoded = _encode_decode(probe, sample_rate, format, level)
    size = 1 << int(np.ceil(np.log2(len(probe) + len(decoded) + _MAX_DELAY)))
    correlation = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(probe, size)), size)
    lags = np.concatenate([np.arange(0, _MAX_DELAY + 1), np.arange(-_MAX_DELAY, 0)])
    window = np.concatenate([correlation[: _MAX_DELAY + 1], correlation[-_MAX_DELAY:]])
    return int(lags[int(np.argmax(np.abs(window)))])


def codec(x: np.ndarray, sample_rate: int, format: str = "mp3", bitrate_kbps: float = 32.0) -> np.ndarray:
    """Encode `x` with `format` ("mp3", "opus", "vorbis") at about `bitrate_kbps` and decode it again, in
    memory; resampled to 48 kHz and back where the codec does not take `sample_rate`. Aligned on the input
    and of its length (module docstring); a signal over full scale is scaled into it and back, not clipped."""
    x = as_mono(x)
    rate = coding_rate(format, sample_rate)
    scale = full_scale(x)
    signal = x / np.float32(scale)
    if rate != sample_rate:
        signal = soxr.resample(signal, sample_rate, rate, quality="HQ")
    level = compression_level(format, rate, bitrate_kbps)
    decoded = _encode_decode(signal, rate, format, level)
    delay = codec_delay(format, rate, level)
    decoded = decoded[delay:] if delay >= 0 else np.concatenate([np.zeros(-delay, np.float32), decoded])
    if rate != sample_rate:
        decoded = soxr.resample(decoded, rate, sample_rate, quality="HQ")
    return (match_length(decoded.astype(np.float32), len(x)) * np.float32(scale)).astype(np.float32)
