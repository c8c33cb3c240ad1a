"""Audio input: any file libsndfile decodes, any rate and channel count in; mono float32 at one rate out.

Imports only numpy, soundfile and soxr so that the ONNX runtime path stays light.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from zoo.errors import AudioError

DEFAULT_MAX_SECONDS = 600.0
MIN_SECONDS = 0.05
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
SILENCE_PEAK = 1e-4  # about -80 dBFS: below this nothing a model says would mean anything
MAX_PEAK = 16.0  # +24 dBFS: float audio lives in -1..1; far beyond is integer PCM stored or sent as float, or noise
MAX_CHANNELS = 64


class AudioTooLongError(AudioError):
    """The audio is longer than the caller's limit (a server answers 413 rather than 422)."""


def check_waveform(
    samples: np.ndarray,
    sample_rate: int,
    source: str = "<array>",
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
) -> np.ndarray:
    """Validate decoded samples and return them as mono float32 (channels are averaged).

    `samples` is [samples] or [samples, channels].
    """
    check_sample_rate(sample_rate, source)
    array = np.asarray(samples)
    if array.dtype.kind not in "fiu":
        raise AudioError(source, f"samples have dtype {array.dtype}, expected numbers")
    if array.ndim == 2:
        array = array.mean(axis=1) if array.shape[1] > 1 else array[:, 0]
    elif array.ndim != 1:
        raise AudioError(source, f"expected a 1-D waveform or [samples, channels], got shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if array.size == 0:
        raise AudioError(source, "contains no audio samples (zero length)")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise AudioError(source, f"contains {bad} NaN or infinite samples")
    duration = array.size / sample_rate
    if duration < min_seconds:
        raise AudioError(source, f"is {duration * 1000:.0f} ms long; at least {min_seconds * 1000:.0f} ms needed")
    if max_seconds is not None and duration > max_seconds:
        raise AudioTooLongError(
            source,
            f"is {duration:.0f} s long, over the {max_seconds:.0f} s limit (raise it with max_seconds)",
        )
    peak = float(np.abs(array).max())
    if peak < SILENCE_PEAK:
        raise AudioError(source, f"is silent (peak amplitude {peak:.1e})")
    if peak > MAX_PEAK:  # one rule for files, uploads and arrays: no model was trained on such amplitudes
        raise AudioError(
            source,
            f"samples reach {peak:.3g}; float audio must lie within about -1..1 (at most {MAX_PEAK:g}): "
            "were integer PCM values stored or sent as float?",
        )
    return array


def check_layout(sample_rate: int, channels: int, frames: int, source: str) -> None:
    """A decodable file's header: a usable rate, 1..MAX_CHANNELS channels and at least one sample."""
    check_sample_rate(sample_rate, source)
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(source, f"has {channels} channels; 1..{MAX_CHANNELS} supported")
    if frames <= 0:
        raise AudioError(source, "contains no audio samples (zero length)")


def check_sample_rate(sample_rate: int, source: str) -> None:
    if not isinstance(sample_rate, (int, np.integer)) or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            source, f"sample rate {sample_rate!r} is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return samples
    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def prepare_waveform(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int,
    source: str = "<array>",
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> np.ndarray:
    """Validate an in-memory waveform and bring it to mono float32 at `target_rate`."""
    mono = check_waveform(samples, sample_rate, source, max_seconds=max_seconds)
    return resample(mono, sample_rate, target_rate)


def read_audio(
    path: str | os.PathLike[str],
    target_rate: int | None = None,
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32, resampled to `target_rate` when given.

    Returns (samples, sample_rate). Every failure is an AudioError that names the file.
    """
    source = str(path)
    file = Path(path)
    if not file.exists():
        raise AudioError(source, "no such file")
    if file.is_dir():
        raise AudioError(source, "is a directory, not an audio file")
    size = file.stat().st_size
    if size == 0:
        raise AudioError(source, "file is empty (0 bytes)")
    with file.open("rb") as handle:
        header = handle.read(4096)
    return _decode(lambda: source, header, size, source, target_rate, max_seconds, "(raise it with --max-duration)")


def decode_bytes(
    data: bytes,
    source: str = "<upload>",
    target_rate: int | None = None,
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> tuple[np.ndarray, int]:
    """Decode an in-memory audio file (anything libsndfile reads) to mono float32, like `read_audio`.

    Never decodes more than `max_seconds` of audio, whatever the header claims: a small compressed upload
    cannot expand into gigabytes. Every failure is an AudioError naming `source`.
    """
    if not data:
        raise AudioError(source, "is empty (0 bytes)")
    return _decode(lambda: io.BytesIO(data), data[:4096], len(data), source, target_rate, max_seconds)


def _decode(
    open_audio: Callable[[], str | BinaryIO],
    header: bytes,
    size: int,
    source: str,
    target_rate: int | None,
    max_seconds: float | None,
    too_long_hint: str = "",
) -> tuple[np.ndarray, int]:
    """Check the header (rate, channels, length, truncation), then decode at most `max_seconds` of audio."""
    try:
        info = sf.info(open_audio())
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(source, f"is not a readable audio file ({_short(error)})") from None
    check_layout(info.samplerate, info.channels, info.frames, source)
    if max_seconds is not None and info.frames / info.samplerate > max_seconds:
        raise AudioTooLongError(
            source,
            f"is {info.frames / info.samplerate:.0f} s long, over the {max_seconds:.0f} s limit "
            f"{too_long_hint}".rstrip(),
        )
    _check_not_truncated(header, size, info, source)
    limit = -1 if max_seconds is None else int(max_seconds * info.samplerate) + 1
    try:
        samples, sample_rate = sf.read(open_audio(), frames=limit, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(source, f"is truncated or corrupt ({_short(error)})") from None
    mono = check_waveform(samples, sample_rate, source, max_seconds=max_seconds)
    if target_rate is None:
        return mono, sample_rate
    return resample(mono, sample_rate, target_rate), target_rate


def _check_not_truncated(header: bytes, size: int, info: sf._SoundFileInfo, source: str) -> None:
    """libsndfile quietly reads what is left of a cut-off WAV; compare the header with the file size.

    `header` is the first 4 KiB of the file and `size` its length in bytes.
    """
    if info.format not in {"WAV", "WAVEX"}:
        return
    if header[:4] != b"RIFF":
        return
    position = 12
    while position + 8 <= len(header):
        chunk_id = header[position : position + 4]
        chunk_size = int.from_bytes(header[position + 4 : position + 8], "little")
        if chunk_id == b"data":
            available = size - (position + 8)
            if chunk_size != 0xFFFFFFFF and available < chunk_size:
                raise AudioError(
                    source,
                    f"is truncated: the header announces {chunk_size} bytes of audio, {available} present",
                )
            return
        position += 8 + chunk_size + (chunk_size & 1)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text
