"""Request bytes to a prediction: decode, validate, cut long audio into windows, average.

Blocking code, run on the inference pool."""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.audio import (
    AudioError,
    AudioTooLongError,
    check_sample_rate,
    check_waveform,
    decode_bytes,
    resample,
)
from zoo.calibration import decide
from zoo.labels import LABELS
from zoo.segments import fixed_windows
from zoo.serve.models import ServedModel
from zoo.serve.settings import ServeSettings
from zoo.timeline import score_pieces

FLOAT32_BYTES = 4


def decode_file(data: bytes, source: str, served: ServedModel, settings: ServeSettings) -> tuple[np.ndarray, int]:
    """An uploaded audio file -> (mono float32 at the model's rate, the file's own rate).

    Decoded and checked (amplitude included) exactly as `emozoo predict` reads a file: `zoo.audio`."""
    waveform, rate = decode_bytes(data, source, None, max_seconds=settings.max_duration)
    return resample(waveform, rate, served.sample_rate), rate


def decode_raw(
    data: bytes, sample_rate: int | None, source: str, served: ServedModel, settings: ServeSettings
) -> tuple[np.ndarray, int]:
    """Raw little-endian float32 mono samples -> (mono float32 at the model's rate, `sample_rate`)."""
    if not data:
        raise AudioError(source, "is empty (0 bytes)")
    if sample_rate is None:
        raise AudioError(source, "raw float32 audio needs the sample_rate query parameter (e.g. ?sample_rate=16000)")
    check_sample_rate(sample_rate, source)
    if len(data) % FLOAT32_BYTES:
        raise AudioError(source, f"is {len(data)} bytes, not a whole number of 4-byte float32 samples")
    count = len(data) // FLOAT32_BYTES
    if count / sample_rate > settings.max_duration:
        raise AudioTooLongError(
            source, f"is {count / sample_rate:.0f} s long, over the {settings.max_duration:.0f} s limit"
        )
    samples = check_waveform(np.frombuffer(data, dtype="<f4"), sample_rate, source, max_seconds=settings.max_duration)
    return resample(samples, sample_rate, served.sample_rate), sample_rate


def score(served: ServedModel, waveform: np.ndarray, input_rate: int, settings: ServeSettings,
          min_confidence: float | None = None) -> dict[str, Any]:
    """The answer for one clip; `min_confidence` (else the server's) turns low-confidence labels 'uncertain'."""
    threshold = min_confidence if min_confidence is not None else settings.min_confidence
    rate = served.sample_rate
    bounds = fixed_windows(waveform.size, rate, settings.window_seconds, settings.hop)
    # the windows are scored like the segments of /v1/timeline: silent ones are left out, the answer checked
    audible, probabilities = score_pieces(served.model, [waveform[start:end] for start, end in bounds],
                                          name=served.name)
    if not audible.size:  # cannot happen after check_waveform, which refuses silent audio
        raise AudioError("<audio>", "is silent")
    by_window = dict(zip(audible.tolist(), probabilities, strict=True))
    windows = []
    for index, (start, end) in enumerate(bounds):
        entry: dict[str, Any] = {
            "start": round(start / rate, 3),
            "end": round(end / rate, 3),
            "silent": index not in by_window,
        }
        if index in by_window:
            entry.update(_answer(by_window[index], threshold))
        windows.append(entry)
    overall = probabilities.mean(axis=0)
    return {
        "model": served.name,
        **_answer(overall, threshold),
        "duration": round(waveform.size / rate, 3),
        "sample_rate": int(input_rate),
        "windows": windows,
    }


def _answer(probabilities: np.ndarray, min_confidence: float | None) -> dict[str, Any]:
    label, label_id, confidence = decide(probabilities, min_confidence)
    return {
        "label": label,
        "label_id": label_id,
        "confidence": confidence,
        "probabilities": {name: float(p) for name, p in zip(LABELS, probabilities, strict=True)},
    }
