from __future__ import annotations

import json
import time

import click

from zoo import datasets
from zoo.cli.common import MAX_DURATION, ON_ERROR, parse_params, report_failures
from zoo.launch import is_secondary_process
from zoo.model import check_save_target, fit_with_speakers
from zoo.registry import create_model

OUT_ADVICE = "choose another --out, or add --force to replace it"


@click.command("train")
@click.argument("model_name")
@click.option("--data", "data", required=True, multiple=True,
              help="Dataset folder or CSV (see README for layouts). Repeat to combine corpora.")
@click.option("--out", "out", required=True, type=click.Path(), help="Directory to save the trained model in.")
@click.option("--param", "params", multiple=True, help="Model parameter KEY=VALUE (repeatable).")
@click.option("--force", is_flag=True, help="Replace --out even when it is not a saved model (a file, or a folder "
              "holding other files); an earlier saved model there is always replaced.")
@ON_ERROR
@MAX_DURATION
def train_command(model_name: str, data: tuple[str, ...], out: str, params: tuple[str, ...], force: bool,
                  on_error: str, max_duration: float) -> None:
    """Train MODEL_NAME on every labelled clip of --data and save it to --out."""
    check_save_target(out, force=force, advice=OUT_ADVICE)  # before training, not after it
    model = create_model(model_name, **parse_params(params))
    dataset = datasets.load_all(data)
    click.echo(f"data: {dataset.describe()}", err=True)
    audio = datasets.load_waveforms(dataset.items, model.sample_rate, on_error=on_error, max_seconds=max_duration)
    report_failures(audio.failures)
    labels = datasets.Dataset(audio.items, dataset.source, dataset.layout).labels
    started = time.perf_counter()
    fit_with_speakers(model, audio.waveforms, labels, [item.speaker for item in audio.items],
                      [item.corpus for item in audio.items])
    model.metrics_ = {"training_seconds": round(time.perf_counter() - started, 2), "skipped_files": len(audio.failures)}
    path = model.save(out, force=force)
    if is_secondary_process():  # the first process saved the model and reports it
        return
    calibration = getattr(model, "calibration_", None)
    click.echo(json.dumps({"model": model_name, "saved": str(path), "clips": len(labels),
                           "seconds": model.metrics_["training_seconds"],
                           "temperature": calibration.temperature if calibration is not None and calibration.active
                           else None}))
