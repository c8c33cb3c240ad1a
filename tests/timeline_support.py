"""Helpers for the timeline tests: long recordings built from clips of held-out speakers, and bad files.

The clips come from speakers the bundled default model never trained on: RAVDESS actor 16 (held out when it
was built) and NEMO speaker EB0 (a corpus it never saw). Each is trimmed to its speech, and the clips are
joined by pauses of random length, half digital silence and half noise.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import require_corpus
from zoo.audio import read_audio
from zoo.labels import normalise_label
from zoo.timeline import FileTimeline

RATE = 16_000
SEED = 14


@dataclass
class Recording:
    path: Path
    truth: list[tuple[float, float]]  # seconds where each clip's speech lies
    labels: list[int]
    clips: list[np.ndarray]
    originals: list[np.ndarray] | None = None  # the clips before trimming


def speech_only(samples: np.ndarray) -> np.ndarray:
    """The clip cut to its speech: RAVDESS clips carry about a second of room noise at each end."""
    import librosa

    return librosa.effects.trim(samples, top_db=35, frame_length=512, hop_length=128)[0]


@functools.cache
def held_out_clips(count_ravdess: int = 30, count_nemo: int = 10) -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(SEED)
    picked = []
    for corpus, speaker, count in (("ravdess", "Actor_16", count_ravdess), ("nemo", "EB0", count_nemo)):
        root = require_corpus(corpus)
        with (root / "manifest.csv").open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["speaker"] == speaker]
        for index in rng.choice(len(rows), count, replace=False):
            samples = read_audio(root / rows[index]["path"], RATE)[0]
            picked.append((speech_only(samples), samples, normalise_label(rows[index]["label"])))
    return picked


def gap(rng: np.random.Generator, low: float = 0.6, high: float = 3.0) -> np.ndarray:
    size = int(rng.uniform(low, high) * RATE)
    if rng.random() < 0.5:
        return np.zeros(size, dtype=np.float32)
    return (rng.standard_normal(size) * 10 ** (rng.uniform(-60, -45) / 20)).astype(np.float32)


def join(clips: list[np.ndarray], rng: np.random.Generator, path: Path) -> list[tuple[float, float]]:
    parts: list[np.ndarray] = [gap(rng, 0.5, 2.0)]
    truth, position = [], parts[0].size
    for clip in clips:
        parts.append(clip)
        truth.append((position / RATE, (position + clip.size) / RATE))
        parts.append(gap(rng))
        position += clip.size + parts[-1].size
    parts.append(gap(rng, 0.5, 2.0))
    sf.write(path, np.concatenate(parts), RATE, subtype="PCM_16")
    return truth


def spans(result: FileTimeline) -> np.ndarray:
    return np.array([(s.start, s.end) for s in result.segments]).reshape(-1, 2)


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Plucked notes with harmonics, four a second: tonal and rhythmic, but not speech."""
    out = np.zeros(int(seconds * RATE))
    step = RATE // 4
    t = np.arange(step) / RATE
    for start in range(0, out.size, step):
        pitch = rng.choice([220.0, 247.0, 262.0, 294.0, 330.0, 392.0])
        note = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 5)) * np.exp(-3 * t)
        out[start : start + step] = note[: out.size - start]
    return (0.2 * out / np.abs(out).max()).astype(np.float32)


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Files no timeline can come from (not audio, truncated, empty, NaN) and files with no speech in them."""
    rng = np.random.default_rng(SEED)
    files = {name: folder / name for name in ("text.wav", "truncated.wav", "truncated.flac", "empty.wav",
                                              "nan.wav", "silence.flac", "noise.flac", "music.flac")}
    files["text.wav"].write_text("this is not audio\n")
    files["empty.wav"].write_bytes(b"")
    speechy = (rng.standard_normal(10 * RATE) * 0.1).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, speechy, RATE, format="WAV")
    files["truncated.wav"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    buffer = io.BytesIO()
    sf.write(buffer, speechy, RATE, format="FLAC")
    files["truncated.flac"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    sf.write(files["nan.wav"], np.full(RATE, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    sf.write(files["silence.flac"], np.zeros(10 * 60 * RATE, dtype=np.float32), RATE)  # 10 minutes
    sf.write(files["noise.flac"], (rng.standard_normal(60 * RATE) * 0.1).astype(np.float32), RATE)
    sf.write(files["music.flac"], music(60, rng), RATE)
    return files
