"""Native model vs exported ONNX file on the same clips: label agreement and max |delta p|.

Several passes, so that batching and padding are exercised: all clips at batch 32 in their given order
(rows of different lengths share a batch), up to `max_small_batch_clips` of them at batch 1 and at batch 7,
and a few clips cut to other lengths (native probabilities recomputed for the cuts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

BATCH_SIZES = (1, 7, 32)
SMALL_BATCH_CLIPS = 96
CROPPED_CLIPS = 24
MIN_CROP_SECONDS = 0.3


@dataclass
class PassResult:
    name: str
    batch_size: int
    clips: int
    agreement: float
    max_abs_diff: float


@dataclass
class ValidationResult:
    source: str
    clips: int
    agreement: float
    max_abs_diff: float
    min_agreement: float
    max_allowed_diff: float
    passes: list[PassResult] = field(default_factory=list)
    native_accuracy: float | None = None
    onnx_accuracy: float | None = None

    @property
    def passed(self) -> bool:
        return self.agreement >= self.min_agreement and self.max_abs_diff <= self.max_allowed_diff

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        text = (f"validated on {self.clips} clips ({self.source}): label agreement {self.agreement:.4f} "
                f"(need >= {self.min_agreement}), max |dp| {self.max_abs_diff:.2e} (need <= {self.max_allowed_diff:g})")
        if self.native_accuracy is not None and self.onnx_accuracy is not None:
            text += f"; accuracy native {self.native_accuracy:.4f}, onnx {self.onnx_accuracy:.4f}"
        return text


def _crops(waveforms: Sequence[np.ndarray], sample_rate: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """Pieces of `count` clips, each a random 35-90 % of its clip (at least MIN_CROP_SECONDS)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(waveforms), size=min(count, len(waveforms)), replace=False)
    pieces = []
    for index in sorted(chosen):
        clip = np.asarray(waveforms[index], dtype=np.float32)
        shortest = min(clip.size, int(MIN_CROP_SECONDS * sample_rate))
        length = max(shortest, int(clip.size * rng.uniform(0.35, 0.9)))
        start = int(rng.integers(0, clip.size - length + 1))
        piece = clip[start : start + length]
        if np.abs(piece).max() >= 1e-3:  # a silent cut would be rejected as input, skip it
            pieces.append(piece)
    return pieces


def compare(
    native_model: Any,
    onnx_model: Any,
    waveforms: Sequence[np.ndarray],
    labels: np.ndarray | None,
    *,
    source: str,
    min_agreement: float,
    max_abs_diff: float,
    small_batch_clips: int = SMALL_BATCH_CLIPS,
    cropped_clips: int = CROPPED_CLIPS,
) -> ValidationResult:
    """Run both models on the clips (and on cuts of some of them) and measure how far apart they are."""
    from zoo.progress import progress_bar

    native = np.asarray(native_model.predict_proba(list(waveforms)), dtype=np.float64)
    crops = _crops(waveforms, onnx_model.sample_rate, cropped_clips) if cropped_clips else []
    native_crops = np.asarray(native_model.predict_proba(crops), dtype=np.float64) if crops else None
    plan: list[tuple[str, int, Sequence[np.ndarray], np.ndarray]] = []
    for size in BATCH_SIZES:
        count = len(waveforms) if size == max(BATCH_SIZES) else min(len(waveforms), small_batch_clips)
        plan.append((f"batch {size}", size, waveforms[:count], native[:count]))
    if crops and native_crops is not None:
        plan.append(("cut to other lengths, batch 7", 7, crops, native_crops))

    passes: list[PassResult] = []
    agree_total, compared, worst = 0, 0, 0.0
    onnx_full_labels: np.ndarray | None = None
    total = sum(len(clips) for _, _, clips, _ in plan)
    with progress_bar(total, "validating ONNX vs native") as advance:
        for name, size, clips, expected in plan:
            probabilities, predicted = [], []
            for start in range(0, len(clips), size):
                p, label = onnx_model.run_batch(clips[start : start + size])
                probabilities.append(p)
                predicted.append(label)
                for _ in range(len(p)):
                    advance()
            p = np.concatenate(probabilities).astype(np.float64)
            label = np.concatenate(predicted)
            agree = int((label == expected.argmax(axis=1)).sum())
            diff = float(np.abs(p - expected).max())
            passes.append(PassResult(name, size, len(clips), agree / len(clips), diff))
            agree_total += agree
            compared += len(clips)
            worst = max(worst, diff)
            if size == max(BATCH_SIZES) and len(clips) == len(waveforms):
                onnx_full_labels = label
    result = ValidationResult(source, len(waveforms), agree_total / compared, worst, min_agreement, max_abs_diff,
                              passes)
    if labels is not None and len(labels) == len(waveforms) and onnx_full_labels is not None:
        truth = np.asarray(labels)
        result.native_accuracy = float((native.argmax(axis=1) == truth).mean())
        result.onnx_accuracy = float((onnx_full_labels == truth).mean())
    return result


def synthetic_clips(sample_rate: int, count: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Speech-like test signals: a gliding harmonic voice with syllable-rate envelope and breath noise,
    0.4-4 s long. They exercise the graph (pitch, energy, pauses, padding); they say nothing about accuracy.
    """
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(count):
        seconds = rng.uniform(0.4, 4.0)
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        pitch = rng.uniform(90, 300) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 2) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 12))
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
        noise = rng.normal(0, 0.02, t.size)
        signal = 0.3 * envelope * voice + noise * rng.uniform(0.2, 1.0)
        lead = np.zeros(int(rng.uniform(0, 0.3) * sample_rate))  # leading silence, as in real recordings
        clips.append(np.concatenate([lead, signal]).astype(np.float32))
    return clips
