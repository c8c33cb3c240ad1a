"""Emotion over time in long recordings: speech segments found by a VAD, each scored by an emozoo model.

A file is streamed (`zoo.audio_stream`): each block goes through the speech detector (`zoo.vad`) and the
segmenter (`zoo.segments`); finished segments are cut from a buffer that holds only the audio a segment still
to come may need, and scored `batch_size` at a time. Memory stays flat however long the file is.

Optional smoothing (`smooth=k`, off by default) replaces each segment's probabilities by the duration-weighted
mean over it and its k neighbours on each side (within the file), then takes label and confidence from that:
steadier timelines for conversations where emotion changes slowly, at the cost of blurring quick changes.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zoo.audio import SILENCE_PEAK
from zoo.audio_stream import BLOCK_SECONDS, AudioStream
from zoo.errors import AudioError, EmozooError
from zoo.labels import LABELS
from zoo.progress import progress_bar
from zoo.segments import Segment, Segmenter, SegmentParams
from zoo.vad import FRAME_SAMPLES, SAMPLE_RATE, SpeechDetector, load_vad

ON_ERROR = ("fail", "skip")


class Scorer(Protocol):
    """Any emozoo model: a native one (`zoo.load`), an ONNX file's (`OnnxEmotionModel`), or your own."""

    @property
    def sample_rate(self) -> int: ...

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class SegmentPrediction:
    start: float  # seconds from the start of the file
    end: float
    probabilities: np.ndarray  # one per label, in label-id order

    @property
    def label_id(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return LABELS[self.label_id]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.label_id])

    def answer(self) -> dict[str, Any]:
        """label, label_id, confidence and probabilities (label -> p), as the server answers."""
        return {
            "label": self.label, "label_id": self.label_id, "confidence": self.confidence,
            "probabilities": {name: float(p) for name, p in zip(LABELS, self.probabilities, strict=True)},
        }

    def row(self, file: str) -> dict[str, Any]:
        """`file,start,end,label,confidence` and one probability per label."""
        return {
            "file": file, "start": round(self.start, 3), "end": round(self.end, 3), "label": self.label,
            "confidence": round(self.confidence, 6),
            **{name: round(float(p), 6) for name, p in zip(LABELS, self.probabilities, strict=True)},
        }


@dataclass
class FileTimeline:
    """One file's segments; `error` is set (and `segments` empty) when the file was skipped."""

    file: str
    duration: float = 0.0
    sample_rate: int = 0
    vad: str = ""
    segments: list[SegmentPrediction] = field(default_factory=list)
    error: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        return [segment.row(self.file) for segment in self.segments]


def timeline(
    model: str | os.PathLike[str] | Scorer,
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    params: SegmentParams | None = None,
    vad: str | SpeechDetector = "auto",
    smooth: int = 0,
    batch_size: int = 16,
    on_error: str = "fail",
    max_seconds: float | None = None,
    threads: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> list[FileTimeline]:
    """Speech segments of each input with the emotion `model` gives them.

    `model`: a saved model directory, an exported `.onnx` file, or a loaded model. `inputs`: audio files,
    folders of audio, or CSV lists (as `emozoo predict` takes). `params`: segmentation (`SegmentParams`).
    `vad`: "auto" (Silero, else an energy VAD with a warning), "silero", "energy" or a detector object.
    `smooth`: neighbours on each side to average over (0: none). `on_error`: "fail" raises on a bad file,
    "skip" records its error in the result and goes on. `max_seconds`: refuse longer files (None: any).
    """
    from zoo.inputs import collect_inputs

    if on_error not in ON_ERROR:
        raise EmozooError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if smooth < 0 or batch_size < 1:
        raise EmozooError(f"smooth must be >= 0 and batch_size >= 1 (got {smooth}, {batch_size})")
    scorer = _load(model, threads, device)
    detector = load_vad(vad)
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    results = []
    for item in collect_inputs([str(p) for p in paths]).items:
        try:
            results.append(timeline_file(scorer, item.path, params=params, detector=detector, smooth=smooth,
                                         batch_size=batch_size, max_seconds=max_seconds, progress=progress))
        except AudioError as error:
            if on_error == "fail":
                raise
            results.append(FileTimeline(str(item.path), error=str(error)))
    return results


def timeline_file(
    model: Scorer,
    path: str | os.PathLike[str],
    *,
    params: SegmentParams | None = None,
    detector: SpeechDetector | None = None,
    smooth: int = 0,
    batch_size: int = 16,
    max_seconds: float | None = None,
    raw_rate: int | None = None,
    source: str | None = None,
    progress: bool = False,
    block_seconds: float = BLOCK_SECONDS,
) -> FileTimeline:
    """One file's timeline (see `timeline`); `raw_rate` reads headerless float32 mono at that rate.

    `source` names the file in errors and in the result; `block_seconds` of audio are read at a time.
    """
    stream = AudioStream(path, max_seconds=max_seconds, raw_rate=raw_rate, source=source)
    detector = detector or load_vad("auto")
    detector.reset()
    rate = int(model.sample_rate)
    segmenter = Segmenter(params, frame=FRAME_SAMPLES, rate=SAMPLE_RATE)
    buffer = _Buffer()
    found: deque[Segment] = deque()  # segments whose audio has not all been read yet
    batch: list[tuple[Segment, np.ndarray]] = []
    spans: list[tuple[float, float]] = []
    scored: list[np.ndarray] = []

    def score_batch() -> None:
        audible, probabilities = score_pieces(model, [piece for _, piece in batch], name=_name(model))
        for index, row in zip(audible, probabilities, strict=True):
            spans.append((batch[index][0].start_seconds, batch[index][0].end_seconds))
            scored.append(row)
        batch.clear()

    def collect(final: bool) -> None:
        while found and (final or buffer.end >= _at(found[0].end, rate)):
            segment = found.popleft()
            batch.append((segment, buffer.slice(_at(segment.start, rate), _at(segment.end, rate))))
            if len(batch) >= batch_size:
                score_batch()

    pushed = 0
    rates = [SAMPLE_RATE] if rate == SAMPLE_RATE else [SAMPLE_RATE, rate]
    bar = progress_bar(stream.block_count(block_seconds), f"timeline {Path(path).name}") if progress else None
    with bar or contextlib.nullcontext(lambda: None) as advance:
        for block in stream.blocks(rates, block_seconds):
            vad_audio, model_audio = block[0], block[-1]
            buffer.append(model_audio)
            pushed += vad_audio.size
            found.extend(segmenter.push(*detector.push(vad_audio)))
            collect(final=False)
            buffer.drop_before(_at(min([segmenter.keep_from] + [s.start for s in found]), rate))
            advance()
    found.extend(segmenter.push(*detector.flush()))
    found.extend(segmenter.finish(pushed))
    collect(final=True)
    if batch:
        score_batch()
    probabilities = np.array(scored).reshape(-1, len(LABELS))
    if smooth and len(probabilities):
        probabilities = smooth_probabilities(np.array(spans), probabilities, smooth)
    segments = [SegmentPrediction(start, end, row) for (start, end), row in zip(spans, probabilities, strict=True)]
    return FileTimeline(stream.source, round(stream.info.duration, 3), stream.info.sample_rate,
                        getattr(detector, "name", type(detector).__name__), segments)


def score_pieces(model: Scorer, pieces: Sequence[np.ndarray], *, name: str = "model") -> tuple[np.ndarray, np.ndarray]:
    """Score the audible pieces of audio in one call: (their indices, [n, labels] probabilities).

    Pieces quieter than `zoo.audio.SILENCE_PEAK` are not sent to the model. The answer is checked (shape,
    finite) and clipped to 0..1; a model answering otherwise raises RuntimeError (a bug, not bad input).
    """
    audible = np.array([i for i, piece in enumerate(pieces)
                        if piece.size and float(np.abs(piece).max()) >= SILENCE_PEAK], dtype=np.int64)
    if not audible.size:
        return audible, np.zeros((0, len(LABELS)))
    array = np.asarray(model.predict_proba([pieces[i] for i in audible]), dtype=np.float64)
    if array.shape != (audible.size, len(LABELS)) or not np.isfinite(array).all():
        raise RuntimeError(
            f"model {name!r} returned probabilities of shape {array.shape} "
            f"(finite: {bool(np.isfinite(array).all())}); expected ({audible.size}, {len(LABELS)})"
        )
    return audible, np.clip(array, 0.0, 1.0)  # float32 softmax can overshoot 1 by an ulp


def smooth_probabilities(spans: np.ndarray, probabilities: np.ndarray, neighbours: int) -> np.ndarray:
    """Duration-weighted mean of each row with its `neighbours` rows on either side (spans: [n, 2] seconds)."""
    weights = np.maximum(spans[:, 1] - spans[:, 0], 1e-6)
    out = np.empty_like(probabilities)
    for index in range(len(probabilities)):
        low, high = max(0, index - neighbours), min(len(probabilities), index + neighbours + 1)
        out[index] = np.average(probabilities[low:high], axis=0, weights=weights[low:high])
    return out


class _Buffer:
    """Consecutive audio with absolute sample positions; old blocks are let go once no segment needs them."""

    def __init__(self) -> None:
        self._blocks: deque[np.ndarray] = deque()
        self.start = 0  # absolute position of the first sample held
        self.end = 0  # one past the last sample held

    def append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._blocks.append(samples)
            self.end += samples.size

    def drop_before(self, position: int) -> None:
        while self._blocks and self.start + self._blocks[0].size <= position:
            self.start += self._blocks.popleft().size

    def slice(self, start: int, end: int) -> np.ndarray:
        start, end = max(start, self.start), min(end, self.end)
        out, position = [], self.start
        for block in self._blocks:
            low, high = max(start - position, 0), min(end - position, block.size)
            if low < high:
                out.append(block[low:high])
            position += block.size
            if position >= end:
                break
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _at(vad_sample: int, rate: int) -> int:
    """A position in detector samples (16 kHz) as a position at the model's `rate`."""
    return vad_sample if rate == SAMPLE_RATE else int(round(vad_sample * rate / SAMPLE_RATE))


def _name(model: Any) -> str:
    return str(getattr(model, "name", "") or type(model).__name__)


def _load(model: Any, threads: int | None, device: str) -> Scorer:
    if isinstance(model, (str, os.PathLike)):
        from zoo.api import load_for_inference

        if not Path(model).exists():
            raise EmozooError(f"{model}: no such model directory or ONNX file")
        return load_for_inference(model, threads=threads, device=device)
    if not callable(getattr(model, "predict_proba", None)) or not hasattr(model, "sample_rate"):
        raise EmozooError(f"{type(model).__name__} is not a model: it needs sample_rate and predict_proba()")
    return model
