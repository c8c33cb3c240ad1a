"""Voice-activity detection: a speech probability for every 32 ms frame of 16 kHz mono audio, streamed.

The detector is Silero VAD (MIT, https://github.com/snakers4/silero-vad) run with onnxruntime alone. Its
`silero-vad` wheel ships the ONNX files, but the package itself imports torch, so the files are found through
`importlib.util.find_spec` (which does not import the package) and torch is never loaded.

* `silero_vad_16k_sequence.onnx` (silero-vad >= 6.2) takes a whole block of frames per call, each frame being
  the 64 samples of context before it followed by 512 new samples ([frames, 576]), with the LSTM state (h, c)
  carried from block to block: one call per block, bit-exact with the frame-by-frame model.
* `silero_vad.onnx` (v5 and later) takes one frame per call ([1, 576] with `state` [2, 1, 128] and
  `sr` = 16000): used, frame by frame, where the sequence file is missing.

Where neither is there, `load_vad()` falls back to `EnergyVad` (frame energy against a tracked noise floor)
and says so with a `VadFallbackWarning`: it cannot tell speech from any other sound.

A detector is fed any number of samples at a time (`push`) and returns the probabilities of the frames
completed so far; `flush` zero-pads and scores the last partial frame. Both also give each frame's energy in
dBFS, which the segmenter uses to cut long speech at its quietest point.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zoo.errors import EmozooError

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only frame size the 16 kHz Silero models take
CONTEXT_SAMPLES = 64  # samples of the previous frame prepended to each frame (Silero v5+)
SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"
FRAME_MODEL = "silero_vad.onnx"
MODEL_ENV = "EMOZOO_VAD_MODEL"  # an explicit path to either ONNX file
BLOCK_FRAMES = 512  # frames per call of the sequence model (16.4 s of audio)
STATE_SIZE = 128
FLOOR_DB = -100.0  # energy of digital silence, instead of -inf
VAD_KINDS = ("auto", "silero", "energy")


class VadFallbackWarning(UserWarning):
    """The Silero model is not installed: speech is told from silence by energy alone."""


class SpeechDetector(Protocol):
    """What the segmenter needs: per-frame speech probabilities of 16 kHz audio, streamed."""

    name: str

    def reset(self) -> None: ...

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def flush(self) -> tuple[np.ndarray, np.ndarray]: ...


class _Framer:
    """Cuts a stream of samples into whole 512-sample frames and keeps the remainder for the next call."""

    def __init__(self) -> None:
        self._rest = np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        self._rest = np.zeros(0, dtype=np.float32)

    def frames(self, samples: np.ndarray) -> np.ndarray:
        joined = np.concatenate([self._rest, np.asarray(samples, dtype=np.float32).reshape(-1)])
        whole = joined.size // FRAME_SAMPLES * FRAME_SAMPLES
        self._rest = joined[whole:].copy()
        return joined[:whole].reshape(-1, FRAME_SAMPLES)

    def last(self) -> np.ndarray:
        """The remainder zero-padded to one frame ([1, 512]), or no frame at all ([0, 512])."""
        if not self._rest.size:
            return np.zeros((0, FRAME_SAMPLES), dtype=np.float32)
        frame = np.zeros((1, FRAME_SAMPLES), dtype=np.float32)
        frame[0, : self._rest.size] = self._rest
        self._rest = np.zeros(0, dtype=np.float32)
        return frame


def frame_energy(frames: np.ndarray) -> np.ndarray:
    """RMS level of each [frames, samples] row in dBFS (full-scale sine: -3 dB), floored at -100 dB."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=1) if frames.size else np.zeros(0)
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-20)), FLOOR_DB).astype(np.float32)


class SileroVad:
    """Silero VAD on onnxruntime (no torch): see the module docstring for the two model files it runs."""

    name = "silero"

    def __init__(self, path: str | os.PathLike[str] | None = None, *, threads: int = 1) -> None:
        found = Path(path) if path is not None else silero_model_path()
        if found is None or not found.is_file():
            raise EmozooError(
                f"Silero VAD model not found ({found or 'silero-vad is not installed'}): pip install silero-vad"
            )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(found), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise EmozooError(f"{found}: not a loadable Silero VAD model ({str(error).strip()[:200]})") from None
        self.path = found
        inputs = {i.name for i in self.session.get_inputs()}
        if inputs == {"input", "h", "c"}:
            self.sequence = True
        elif inputs == {"input", "state", "sr"}:
            self.sequence = False
        else:
            raise EmozooError(f"{found}: unexpected Silero VAD inputs {sorted(inputs)}")
        self._framer = _Framer()
        self.reset()

    def reset(self) -> None:
        self._framer.reset()
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._h = np.zeros((1, 1, STATE_SIZE), dtype=np.float32)
        self._c = np.zeros((1, 1, STATE_SIZE), dtype=np.float32)
        self._state = np.zeros((2, 1, STATE_SIZE), dtype=np.float32)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = self._framer.frames(samples)
        return self._score(frames), frame_energy(frames)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        frames = self._framer.last()
        return self._score(frames), frame_energy(frames)

    def _score(self, frames: np.ndarray) -> np.ndarray:
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        contexts = np.empty((len(frames), CONTEXT_SAMPLES), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = frames[:-1, -CONTEXT_SAMPLES:]
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        windows = np.concatenate([contexts, frames], axis=1)
        if self.sequence:
            parts = []
            for first in range(0, len(windows), BLOCK_FRAMES):
                probabilities, self._h, self._c = self.session.run(
                    ["speech_probs", "hn", "cn"],
                    {"input": windows[first : first + BLOCK_FRAMES], "h": self._h, "c": self._c},
                )
                parts.append(np.asarray(probabilities, dtype=np.float32).reshape(-1))
            return np.concatenate(parts)
        rate = np.array(SAMPLE_RATE, dtype=np.int64)
        out = np.empty(len(windows), dtype=np.float32)
        for index in range(len(windows)):
            probability, self._state = self.session.run(
                None, {"input": windows[index : index + 1], "state": self._state, "sr": rate}
            )
            out[index] = float(np.asarray(probability).reshape(-1)[0])
        return out


class EnergyVad:
    """Fallback detector: frame energy above a tracked noise floor. Speech, music and noise bursts look alike.

    The floor follows the quietest recent frames (falls at once, rises `rise_db` per 32 ms frame: 9 dB/s);
    a frame `margin_db` above it has probability 0.5, and frames below `min_db` dBFS are never speech.
    """

    name = "energy"

    def __init__(self, *, margin_db: float = 12.0, width_db: float = 4.0, rise_db: float = 0.3,
                 min_db: float = -55.0) -> None:
        self.margin_db, self.width_db, self.rise_db, self.min_db = margin_db, width_db, rise_db, min_db
        self._framer = _Framer()
        self.reset()

    def reset(self) -> None:
        self._framer.reset()
        self._floor: float | None = None

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        energy = frame_energy(self._framer.frames(samples))
        return self._score(energy), energy

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        energy = frame_energy(self._framer.last())
        return self._score(energy), energy

    def _score(self, energy: np.ndarray) -> np.ndarray:
        out = np.empty(energy.size, dtype=np.float32)
        for index, level in enumerate(energy.tolist()):
            floor = level if self._floor is None else min(level, self._floor + self.rise_db)
            self._floor = max(floor, FLOOR_DB)
            above = (level - self._floor - self.margin_db) / self.width_db
            out[index] = 0.0 if level < self.min_db else 1.0 / (1.0 + np.exp(-above))
        return out


def silero_model_path() -> Path | None:
    """The Silero ONNX file to run: $EMOZOO_VAD_MODEL, else the sequence or frame model of `silero-vad`.

    The package is located with `importlib.util.find_spec`, which does not import it (it imports torch).
    """
    explicit = os.environ.get(MODEL_ENV)
    if explicit:
        return Path(explicit)
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        for name in (SEQUENCE_MODEL, FRAME_MODEL):
            candidate = Path(location) / "data" / name
            if candidate.is_file():
                return candidate
    return None


def load_vad(kind: str | Any = "auto", *, threads: int = 1) -> SpeechDetector:
    """A detector: "silero" (an error when missing), "energy", or "auto" (Silero, else energy with a warning).

    An object that already is a detector is returned as it is.
    """
    if not isinstance(kind, str):
        return kind
    if kind not in VAD_KINDS:
        raise EmozooError(f"unknown VAD {kind!r}; choose one of: {', '.join(VAD_KINDS)}")
    if kind == "energy":
        return EnergyVad()
    path = silero_model_path()
    if kind == "silero" or path is not None:
        return SileroVad(path, threads=threads)
    warnings.warn(
        "Silero VAD model not found (pip install silero-vad): FALLING BACK TO AN ENERGY VAD, which takes any "
        "loud sound (music, noise, laughter) for speech; segments will be much less reliable",
        VadFallbackWarning,
        stacklevel=2,
    )
    return EnergyVad()
