"""`export_model`: a fitted model -> one self-contained, checked and validated ONNX file.

1. the family's exporter (from the plugin registry) builds the graph (exporters/base.py has the contract);
2. a calibrated model's temperature step appended to the probabilities (exporters/calibration.py);
3. metadata_props: labels, sample rate, plugin and params, feature config, versions, training-data
   fingerprint;
4. optional dynamic int8 quantisation (exporters/quantize.py);
5. `onnx.checker.check_model(full_check=True)`;
6. validation: the native model and the ONNX graph (run by `zoo.onnx_runtime`, exactly as users run it) on
   the same clips at batch sizes 1, 7 and 32 and on clips cut to other lengths; past the tolerance the export
   fails and nothing is written;
7. the validation results go into the metadata and the file is written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from exporters.base import ExportConfig
from exporters.validation import ValidationResult, compare, synthetic_clips
from zoo.errors import EmozooError
from zoo.labels import LABELS

FORMAT = "emozoo-onnx"
FORMAT_VERSION = 1
QUANTIZE_CHOICES = ("int8",)


@dataclass
class ExportReport:
    path: str
    plugin: str
    family: str
    opset: int
    quantize: str | None
    size_bytes: int
    seconds: float
    validation: ValidationResult | None
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["validation"] = self.validation.as_dict() if self.validation else None
        return data

    def __str__(self) -> str:
        lines = [f"exported {self.plugin} to {self.path} ({self.size_bytes / 1e6:.2f} MB, opset {self.opset}"
                 + (f", {self.quantize}" if self.quantize else "") + f", {self.seconds:.1f} s)"]
        if self.validation:
            lines.append(self.validation.summary())
            lines += [f"  {p.name}: {p.clips} clips, agreement {p.agreement:.4f}, max |dp| {p.max_abs_diff:.2e}"
                      for p in self.validation.passes]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _export_config(exporter: Any, model: Any) -> ExportConfig:
    chooser = getattr(exporter, "export_config", None)
    config = chooser(model) if callable(chooser) else getattr(exporter, "config", None)
    return config if isinstance(config, ExportConfig) else ExportConfig()


def _metadata(model: Any, opset: int, quantize: str | None, config: ExportConfig) -> dict[str, Any]:
    from zoo import __version__
    from zoo.model import library_versions

    training = getattr(model, "training_data_", {}) or {}
    calibration = getattr(model, "calibration_", None)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "plugin": model.name,
        "family": model.family,
        "params": model.get_params(),
        "labels": {str(i): label for i, label in enumerate(LABELS)},
        "sample_rate": int(model.sample_rate),
        "feature_config": model.feature_config(),
        "emozoo_version": __version__,
        "library_versions": library_versions(),
        "training_data": training,
        "training_data_fingerprint": training.get("fingerprint", "unknown"),
        "metrics": getattr(model, "metrics_", {}) or {},
        "calibration": calibration.as_dict() if calibration is not None else {"method": "none"},
        "opset": opset,
        "quantize": quantize or "none",
        "tolerance": {"min_agreement": config.min_agreement, "max_abs_diff": config.max_abs_diff},
        "inputs": "waveform float32 [batch, samples] (mono, at sample_rate, right-padded with zeros); "
                  "lengths int64 [batch] (valid samples per row)",
        "outputs": "probabilities float32 [batch, 6] in label-id order; label int64 [batch]",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _set_metadata(proto: Any, metadata: dict[str, Any]) -> None:
    import onnx

    existing = {p.key: p.value for p in proto.metadata_props}
    existing.update({k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
                     for k, v in metadata.items()})
    del proto.metadata_props[:]
    for key, value in existing.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def _default_validation_clips(sample_rate: int) -> tuple[list[np.ndarray], None, str]:
    """No clips given: the bundled demo clips (real speech) plus synthetic speech-like signals."""
    from zoo.audio import read_audio
    from zoo.bundled import demo_clips_dir

    clips = []
    demo = demo_clips_dir()
    if demo.is_dir():
        clips = [read_audio(path, sample_rate)[0] for path in sorted(demo.glob("*.flac"))]
    synthetic = synthetic_clips(sample_rate, count=8)
    source = f"{len(clips)} bundled demo clips + {len(synthetic)} synthetic speech-like signals"
    return clips + synthetic, None, source


def export_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    quantize: str | None = None,
    validate_on: tuple[Sequence[np.ndarray], np.ndarray | None] | None = None,
    validation_source: str | None = None,
    config: ExportConfig | None = None,
    validate: bool = True,
) -> ExportReport:
    """Export `model` to the ONNX file `path`; raise EmozooError (and write nothing) when it fails validation.

    `validate_on` is (waveforms at model.sample_rate, labels or None); without it the bundled demo clips and
    synthetic signals are used. `config` overrides the family's tolerances.
    """
    import onnx

    from zoo.registry import exporter_for

    started = time.perf_counter()
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise EmozooError(f"unknown quantisation {quantize!r}; choose one of: {', '.join(QUANTIZE_CHOICES)}")
    if not hasattr(model, "training_data_"):
        raise EmozooError(f"{model.name} model is not fitted: nothing to export")
    exporter = exporter_for(model.family)
    config = config or _export_config(exporter, model)
    notes: list[str] = []
    opset = opset or config.opset
    try:
        proto = exporter.build(model, opset)
    except EmozooError:
        raise
    except Exception as error:  # exporters fail in many ways; say which model and why
        raise EmozooError(f"cannot export {model.name} to ONNX (opset {opset}): {error}") from error
    calibration = getattr(model, "calibration_", None)
    if calibration is not None and calibration.active:
        from exporters.calibration import append_temperature

        proto = append_temperature(proto, calibration.temperature)
    if quantize:
        from exporters.quantize import quantize_int8

        proto, changed, note = quantize_int8(proto, config.min_quantized_weights)
        notes.append(note)
        if changed:
            config = replace(config, max_abs_diff=config.quantized_max_abs_diff,
                             min_agreement=config.quantized_min_agreement)
        else:
            quantize = None
    proto.producer_name = "emozoo"
    _set_metadata(proto, _metadata(model, opset, quantize, config))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:  # noqa: BLE001 - checker raises ValidationError and InferenceError
        raise EmozooError(f"the exported {model.name} graph fails onnx.checker: {error}") from None

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    validation = None
    if validate:
        validation = _validate(model, proto, target, config, validate_on, validation_source)
        if not validation.passed:
            raise EmozooError(
                f"ONNX export of {model.name} failed validation, {target} not written: {validation.summary()}"
            )
        _set_metadata(proto, {"validation": validation.as_dict()})
    else:
        notes.append("validation skipped")
        _set_metadata(proto, {"validation": "skipped"})

    from zoo.storage import atomic_write_bytes

    data = proto.SerializeToString()
    atomic_write_bytes(target, data)
    return ExportReport(str(target), model.name, model.family, opset, quantize, len(data),
                        round(time.perf_counter() - started, 2), validation, notes)


def _validate(model: Any, proto: Any, target: Path, config: ExportConfig,
              validate_on: tuple[Sequence[np.ndarray], np.ndarray | None] | None,
              source: str | None) -> ValidationResult:
    from zoo.onnx_runtime import OnnxEmotionModel

    if validate_on is None:
        waveforms, labels, default_source = _default_validation_clips(model.sample_rate)
    else:
        given = len(validate_on[0])
        waveforms, labels = _usable(list(validate_on[0]), validate_on[1], model.sample_rate)
        default_source = f"{len(waveforms)} given clips"
        if given > len(waveforms):
            default_source += f"; {given - len(waveforms)} silent or too short, left out"
            source = f"{source}; {given - len(waveforms)} silent or too short, left out" if source else None
    # the file users will run, through the runtime users will use, from a private temporary copy
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".validate.onnx", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(proto.SerializeToString())
        runtime = OnnxEmotionModel(temporary, providers=["CPUExecutionProvider"])
        return compare(model, runtime, waveforms, labels, source=source or default_source,
                       min_agreement=config.min_agreement, max_abs_diff=config.max_abs_diff)
    finally:
        os.unlink(temporary)


def _usable(waveforms: list[np.ndarray], labels: np.ndarray | None,
            sample_rate: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Leave out clips the runtime refuses as input (silent, too short, not finite): nothing to compare."""
    from zoo.audio import check_waveform
    from zoo.errors import AudioError

    keep = []
    for index, clip in enumerate(waveforms):
        try:
            check_waveform(np.asarray(clip), sample_rate, f"validation clip {index}", max_seconds=None)
            keep.append(index)
        except AudioError:
            continue
    if not keep:
        raise EmozooError(f"none of the {len(waveforms)} validation clips is usable audio (silent, empty or "
                          "shorter than 50 ms)")
    kept_labels = None if labels is None else np.asarray(labels)[keep]
    return [waveforms[i] for i in keep], kept_labels
