"""`emozoo bench`: every model x runtime x device x scenario, with accuracy on held-out speakers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import environment
from benchmarks.bootstrap import speaker_intervals
from benchmarks.results import DEVICES, RUNTIMES, BenchResults
from benchmarks.runners import NativeRunner, OnnxRunner, Unavailable
from benchmarks.scenarios import offline, single_stream
from benchmarks.subjects import Split, Subject, prepare, safe_name
from benchmarks.timing import TimingConfig
from zoo.errors import EmozooError
from zoo.metrics import brier_score, expected_calibration_error, scores

Log = Callable[[str], None]


@dataclass
class BenchSettings:
    runtimes: Sequence[str] = RUNTIMES
    devices: Sequence[str] = DEVICES
    timing: TimingConfig = field(default_factory=TimingConfig)
    offline_timing: TimingConfig = field(default_factory=lambda: TimingConfig(warmup=1, min_iterations=3))
    offline_batch_size: int = 16
    threads: int | None = None
    test_fraction: float = 0.2
    seed: int = 0
    robustness: bool = False  # also score each model under benchmarks.conditions (on its first runtime)

    def __post_init__(self) -> None:
        for runtime in self.runtimes:
            if runtime not in RUNTIMES:
                raise EmozooError(f"unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
        for device in self.devices:
            if device not in DEVICES:
                raise EmozooError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
        if self.offline_batch_size < 1:
            raise EmozooError(f"the offline batch size must be positive, got {self.offline_batch_size}")

    def as_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        settings["runtimes"], settings["devices"] = list(self.runtimes), list(self.devices)
        return settings


def export(subject: Subject, quantize: str | None, work_dir: Path, validate_on: Any = None) -> Path:
    """The subject's ONNX file (float, or int8 with `quantize`), exported once into `work_dir`."""
    if quantize is None and subject.onnx_path is not None:
        return subject.onnx_path
    if quantize is not None and quantize in subject.exports:
        return subject.exports[quantize]
    if subject.native is None:
        raise Unavailable(f"{subject.label} is an ONNX file: there is no model to {quantize or 'export'} from")
    try:
        from exporters import export_model
    except ImportError as error:
        raise Unavailable(f"ONNX export is not available ({error})") from None
    if quantize in subject.export_failures:
        raise Unavailable(subject.export_failures[quantize])
    suffix = f"-{quantize}" if quantize else ""
    path = work_dir / f"{safe_name(subject.label)}{suffix}.onnx"
    try:
        report = export_model(subject.native, path, quantize=quantize, validate_on=validate_on)
    except Exception as error:  # noqa: BLE001 - any export failure skips this runtime, with its reason kept
        reason = f"export{' with ' + quantize if quantize else ''} failed: {error}"
        subject.export_failures[quantize] = reason
        raise Unavailable(reason) from None
    if quantize is not None and report.quantize != quantize:
        # the exporter kept the model in float: an "int8" row would time the float file a second time
        path.unlink(missing_ok=True)
        subject.export_failures[quantize] = "; ".join(n for n in report.notes if n.startswith(quantize)) or (
            f"the exporter did not quantise {subject.label} to {quantize}")
        raise Unavailable(subject.export_failures[quantize])
    if quantize is None:
        subject.onnx_path = path
    else:
        subject.exports[quantize] = path
    return path


def make_runner(subject: Subject, runtime: str, device: str, settings: BenchSettings, work_dir: Path,
                validate_on: Any = None) -> NativeRunner | OnnxRunner:
    if runtime == "native":
        if subject.native is None:
            raise Unavailable(f"{subject.label} is an ONNX file: it has no native runtime")
        return NativeRunner(subject.native, device, subject.model_path, settings.threads)
    if device == "cuda":
        from zoo.onnx_runtime import cuda_usable

        if not cuda_usable():
            raise Unavailable("onnxruntime's CUDA provider is not usable here")
    path = export(subject, "int8" if runtime == "int8" else None, work_dir, validate_on)
    return OnnxRunner(path, device, runtime, settings.threads)


def check_specs(specs: Sequence[str], params: dict[str | None, dict[str, Any]]) -> None:
    """Fail before any training on an unknown model name, bad parameters or a missing file."""
    from zoo.registry import create_model

    for spec in specs:
        path = Path(spec)
        if path.suffix == ".onnx" or path.is_dir() or "/" in spec or "\\" in spec:
            if not path.exists():
                raise EmozooError(f"{spec}: no such model directory or ONNX file")
            continue
        create_model(spec, **{**params.get(None, {}), **params.get(spec, {})})


def run_bench(specs: Sequence[str], split: Split, settings: BenchSettings, work_dir: Path,
              params: dict[str | None, dict[str, Any]] | None = None, log: Log = lambda _: None) -> BenchResults:
    """Benchmark each model spec; combinations that cannot run here are listed in `skipped` with a reason."""
    params = params or {}
    check_specs(specs, params)
    results = BenchResults(environment={}, settings={**settings.as_dict(), "data": split.describe()})
    load_at_start = environment.load_average()
    labels_seen: set[str] = set()
    robust: dict[str, dict[str, Any]] = {}  # model label -> robustness record (scored on one runtime per model)
    for spec in specs:
        chosen = {**params.get(None, {}), **params.get(spec, {})}
        if Path(spec).exists():
            chosen = params.get(spec, {})
        log(f"{spec}: {'loading' if Path(spec).exists() else 'training on ' + str(len(split.train)) + ' clips'}")
        subject = prepare(spec, split, chosen, work_dir)
        base, copy = subject.label, 1
        while subject.label in labels_seen:
            copy += 1
            subject.label = f"{base} #{copy}"
        labels_seen.add(subject.label)
        for runtime in settings.runtimes:
            for device in settings.devices:
                try:
                    runner = make_runner(subject, runtime, device, settings, work_dir, validation_clips(subject, split))
                except Unavailable as reason:
                    log(f"  {runtime}/{device}: skipped ({reason})")
                    results.skipped.append({"model": subject.label, "runtime": runtime, "device": device,
                                            "reason": str(reason)})
                    continue
                records = measure_runner(subject, runner, split, settings, log)
                if settings.robustness and subject.label not in robust:
                    robust[subject.label] = robustness_record(runner, split, log)
                    for record in records:
                        record["robustness"] = robust[subject.label]
                results.records += records
    results.environment = environment.capture()
    results.environment["load_average_at_start"] = load_at_start
    return results


def robustness_record(runner: NativeRunner | OnnxRunner, split: Split, log: Log) -> dict[str, Any]:
    from benchmarks.robustness import robustness_of_runner

    log(f"  {runner.runtime}/{runner.device}: robustness under fixed degradations")
    return {**robustness_of_runner(runner, split, log), "runtime": runner.runtime, "device": runner.device}


def validation_clips(subject: Subject, split: Split, count: int = 32) -> tuple[list[np.ndarray], np.ndarray] | None:
    """Real held-out speech for the exporter's agreement check (not for accuracy)."""
    if subject.native is None:
        return None
    audio = split.audio("test", subject.native.sample_rate)
    chosen = audio.items[:count]
    return audio.waveforms[:count], np.array([item.label for item in chosen], dtype=np.int64)


def measure_runner(subject: Subject, runner: NativeRunner | OnnxRunner, split: Split, settings: BenchSettings,
                   log: Log) -> list[dict[str, Any]]:
    audio = split.audio("test", runner.sample_rate)
    truth = np.array([item.label for item in audio.items], dtype=np.int64)
    probabilities = runner.predict_proba(audio.waveforms)
    predictions = np.argmax(probabilities, axis=1)
    accuracy = scores(truth, predictions)
    accuracy["intervals"] = speaker_intervals(truth, predictions, [str(item.speaker) for item in audio.items],
                                              seed=settings.seed)
    accuracy["ece"] = expected_calibration_error(truth, probabilities)
    accuracy["brier"] = brier_score(truth, probabilities)
    common = {
        "model": subject.label, "plugin": subject.plugin or getattr(subject.native, "name", subject.label),
        "family": subject.family, "kind": subject.kind, "params": subject.params,
        "train_seconds": subject.train_seconds, "runtime": runner.runtime,
        "device": runner.device, "model_path": str(runner.path) if runner.path else None,
        **runner.describe(), "accuracy": accuracy,
    }
    stream = single_stream(runner, audio.waveforms, settings.timing)
    log(f"  {runner.runtime}/{runner.device}: accuracy {accuracy['accuracy']:.3f}, UAR {accuracy['uar']:.3f}; "
        f"single-stream p50 {stream['latency_ms']['p50']:.1f} ms")
    batch = offline(runner, audio.waveforms, settings.offline_batch_size, settings.offline_timing)
    log(f"  {runner.runtime}/{runner.device}: offline {batch['throughput']['clips_per_second']:.1f} clips/s, "
        f"real-time factor {batch['throughput']['real_time_factor']:.4f}")
    return [{**common, **stream}, {**common, **batch}]
