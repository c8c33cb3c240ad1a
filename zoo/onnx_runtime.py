"""Run an exported emozoo ONNX file with onnxruntime alone.

Imports only numpy, onnxruntime and zoo modules that themselves import only numpy, soundfile and soxr:
no torch, librosa, scikit-learn or transformers (tests/test_export.py checks this in a fresh process).
The graph contract is in exporters/base.py: waveform float32 [batch, samples] + lengths int64 [batch] in,
probabilities float32 [batch, 6] + label int64 [batch] out.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.audio import check_waveform
from zoo.errors import ModelFileError
from zoo.labels import LABELS

WAVEFORM, LENGTHS, PROBABILITIES, LABEL = "waveform", "lengths", "probabilities", "label"
DEFAULT_BATCH_SIZE = 16
CPU_RUN_SECONDS = 4.0  # padded audio per session run on the CPU (see predict_proba; 2, 4, 6 s alike, 8 s slower)
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
_QUIET = 3  # onnxruntime log severity: errors and worse only


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - onnxruntime is a dependency
        raise ModelFileError(f"running ONNX models needs onnxruntime ({error})") from None
    return onnxruntime


def _cuda_driver_present() -> bool:
    """Whether an NVIDIA driver is installed; checked without onnxruntime so CPU machines stay silent."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


@functools.lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """True when this onnxruntime is a GPU build, a driver is present and a CUDA session really starts."""
    ort = _onnxruntime()
    if os.environ.get("EMOZOO_DISABLE_CUDA") == "1":
        return False
    if CUDA not in ort.get_available_providers() or ort.get_device() != "GPU" or not _cuda_driver_present():
        return False
    # a one-node graph: creating a session with the CUDA provider loads cuDNN/cuBLAS or fails quietly
    from onnxruntime import SessionOptions

    tiny = _identity_model_bytes()
    options = SessionOptions()
    options.log_severity_level = 4
    ort.set_default_logger_severity(4)  # a missing cuDNN/cuBLAS is reported through the default logger
    try:
        session = ort.InferenceSession(tiny, options, providers=[CUDA, CPU])
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default: warnings and worse
    return CUDA in session.get_providers()


def _identity_model_bytes() -> bytes:
    """A serialized ONNX model y = Identity(x), written without the onnx package (protobuf wire format)."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    def field(number: int, payload: bytes) -> bytes:  # length-delimited field
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    def number(field_number: int, value: int) -> bytes:  # varint field
        return varint(field_number << 3) + varint(value)

    tensor_type = number(1, 1) + field(2, field(1, number(1, 1)))  # float, shape [1]
    value_info = lambda name: field(1, name) + field(2, field(1, tensor_type))  # noqa: E731
    node = field(1, b"x") + field(2, b"y") + field(4, b"Identity")
    graph = field(1, node) + field(2, b"probe") + field(11, value_info(b"x")) + field(12, value_info(b"y"))
    return number(1, 8) + field(7, graph) + field(8, number(2, 13))  # ir_version 8, opset 13


def default_providers() -> list[str]:
    return [CUDA, CPU] if cuda_usable() else [CPU]


class OnnxEmotionModel:
    """An exported model: the same predict/predict_proba as `zoo.EmotionModel`, nothing to fit."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such ONNX file")
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = _QUIET
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        chosen = list(providers) if providers is not None else default_providers()
        if CUDA in chosen and not cuda_usable():
            # asked for CUDA where it cannot run: onnxruntime would print a screenful and use the CPU anyway
            chosen = [p for p in chosen if p != CUDA] or [CPU]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=chosen)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelFileError(f"{self.path}: not a loadable ONNX model ({str(error).strip()[:300]})") from None
        self.batch_size = batch_size
        self.metadata = _decode(self.session.get_modelmeta().custom_metadata_map)
        self._check_contract()
        self.name: str = str(self.metadata.get("plugin", self.path.stem))
        self.family: str = str(self.metadata.get("family", ""))
        self.sample_rate: int = int(self.metadata["sample_rate"])
        self.classes_ = np.arange(len(LABELS))

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _check_contract(self) -> None:
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if inputs != {WAVEFORM, LENGTHS} or PROBABILITIES not in outputs:
            raise ModelFileError(
                f"{self.path}: not an emozoo ONNX model (inputs {sorted(inputs)}, outputs {sorted(outputs)}; "
                f"expected inputs {WAVEFORM}, {LENGTHS} and output {PROBABILITIES})"
            )
        if "sample_rate" not in self.metadata:
            raise ModelFileError(f"{self.path}: its metadata lacks sample_rate (not exported by emozoo?)")
        labels = self.metadata.get("labels")
        if isinstance(labels, dict) and [labels.get(str(i)) for i in range(len(LABELS))] != list(LABELS):
            raise ModelFileError(f"{self.path}: its labels {labels} differ from this emozoo's {list(LABELS)}")

    def __repr__(self) -> str:
        return f"OnnxEmotionModel({str(self.path)!r}, plugin={self.name!r}, providers={self.providers})"

    # -- prediction -----------------------------------------------------------------------------------
    def run_batch(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One session run over exactly these clips (zero-padded to the longest): (probabilities, labels)."""
        return self._run([self._checked(w, i) for i, w in enumerate(waveforms)])

    def _run(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.array([c.size for c in clips], dtype=np.int64)
        batch = np.zeros((len(clips), int(lengths.max())), dtype=np.float32)
        for row, clip in enumerate(clips):
            batch[row, : clip.size] = clip
        probabilities, labels = self.session.run([PROBABILITIES, LABEL], {WAVEFORM: batch, LENGTHS: lengths})
        return np.asarray(probabilities), np.asarray(labels)

    def predict_proba(self, waveforms: Sequence[np.ndarray], *, batch_size: int | None = None) -> np.ndarray:
        """[n_clips, 6] probabilities in label-id order; clips of similar length are batched together."""
        if len(waveforms) == 0:
            return np.zeros((0, len(LABELS)), dtype=np.float64)
        size = batch_size or self.batch_size
        clips = [self._checked(w, i) for i, w in enumerate(waveforms)]
        order = [int(i) for i in np.argsort([c.size for c in clips], kind="stable")]
        # on the CPU a run over more padded audio than fits in cache is slower per clip than several small
        # runs (the feature graph's intermediates are ~100x the audio), so runs are capped in samples too
        budget = None if CUDA in self.providers else int(CPU_RUN_SECONDS * self.sample_rate)
        result = np.empty((len(waveforms), len(LABELS)), dtype=np.float64)
        start = 0
        while start < len(order):
            stop = start + 1
            while stop < len(order) and stop - start < size and (
                    budget is None or (stop - start + 1) * clips[order[stop]].size <= budget):
                stop += 1
            chosen = order[start:stop]
            result[chosen] = self._run([clips[i] for i in chosen])[0]
            start = stop
        return result

    def predict(self, waveforms: Sequence[np.ndarray], *, batch_size: int | None = None) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(waveforms, batch_size=batch_size), axis=1)]

    def _checked(self, waveform: np.ndarray, index: int) -> np.ndarray:
        array = np.asarray(waveform)
        if array.ndim != 1:
            from zoo.errors import AudioError

            raise AudioError(f"waveform {index}", f"expected a 1-D mono waveform, got shape {array.shape}")
        # no length cap here: how long a clip may be is the caller's choice (`--max-duration`, max_seconds),
        # made where the audio is read; a second, fixed cap here overrode it
        return check_waveform(array, self.sample_rate, f"waveform {index}", max_seconds=None)


def _decode(properties: dict[str, str]) -> dict[str, Any]:
    """metadata_props are strings; the JSON ones (objects, lists, numbers) are decoded."""
    decoded: dict[str, Any] = {}
    for key, value in properties.items():
        try:
            decoded[key] = json.loads(value) if value[:1] in "{[0123456789-" else value
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded
