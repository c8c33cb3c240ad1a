from __future__ import annotations

import json

import click

from zoo import datasets
from zoo.cli.common import MAX_DURATION, ON_ERROR, report_failures
from zoo.errors import DatasetError


@click.command("export")
@click.argument("model_dir", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="The .onnx file to write.")
@click.option("--validate-on", "validate_on", multiple=True,
              help="Clips to compare native and ONNX on (dataset folder or CSV; repeatable). Without it: the "
                   "bundled demo clips plus synthetic speech-like signals.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the family's, 17 for classic).")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Dynamic int8 quantisation of the model's MatMul/Gemm weights (validated too).")
@click.option("--no-validate", is_flag=True, help="Skip the native-vs-ONNX comparison (not recommended).")
@ON_ERROR
@MAX_DURATION
def export_command(model_dir: str, output: str, validate_on: tuple[str, ...], opset: int | None,
                   quantize: str | None, no_validate: bool, on_error: str, max_duration: float) -> None:
    """Export the saved model MODEL_DIR to one self-contained ONNX file (waveform in, emotion out).

    The export is checked (onnx.checker) and validated against the native model at batch sizes 1, 7 and 32
    and on clips cut to other lengths; past the tolerance it fails and writes nothing.
    """
    from exporters import export_model
    from zoo.api import load

    if not output.endswith(".onnx"):
        raise click.BadParameter(f"{output!r} should end in .onnx", param_hint="-o/--output")
    model = load(model_dir)
    clips = None
    source = None
    if validate_on and not no_validate:
        dataset = datasets.load_all(validate_on)
        audio = datasets.load_waveforms(dataset.items, model.sample_rate, on_error=on_error,
                                        max_seconds=max_duration)
        report_failures(audio.failures)
        if not audio.waveforms:
            raise DatasetError(f"no readable clips in {', '.join(validate_on)}")
        kept = datasets.Dataset(audio.items, dataset.source, dataset.layout)
        try:
            labels = kept.labels
        except DatasetError:
            labels = None
        clips = (audio.waveforms, labels)
        source = f"{len(audio.waveforms)} clips of {', '.join(validate_on)}"
    report = export_model(model, output, opset=opset, quantize=quantize, validate_on=clips,
                          validation_source=source, validate=not no_validate)
    click.echo(str(report), err=True)
    summary = {"model": model.name, "onnx": report.path, "size_bytes": report.size_bytes}
    if report.validation:
        summary |= {"validated_on": report.validation.source, "clips": report.validation.clips,
                    "agreement": round(report.validation.agreement, 6),
                    "max_abs_diff": float(f"{report.validation.max_abs_diff:.3e}")}
    click.echo(json.dumps(summary))
