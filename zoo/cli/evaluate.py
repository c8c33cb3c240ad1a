from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from zoo import datasets
from zoo.cli.common import MAX_DURATION, ON_ERROR, parse_params, parse_value, report_failures
from zoo.evaluation import cross_validate
from zoo.labels import LABELS
from zoo.metrics import scores
from zoo.registry import create_model
from zoo.storage import atomic_write_json


def _sweep_settings(sweeps: tuple[str, ...]) -> list[dict[str, Any]]:
    axes = []
    for sweep in sweeps:
        key, _, values = sweep.partition("=")
        if not values:
            raise click.BadParameter(f"{sweep!r} is not KEY=V1,V2,...", param_hint="--sweep")
        axes.append([(key.strip().replace("-", "_"), parse_value(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def print_confusion(result: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    table.add_column("true \\ predicted")
    for label in LABELS:
        table.add_column(label[:7], justify="right")
    for label, row in zip(LABELS, result["confusion"], strict=True):
        table.add_row(label, *(str(v) for v in row))
    Console(stderr=True).print(table)


@click.command("cv")
@click.argument("model_names", nargs=-1, required=True)
@click.option("--data", "data", required=True, multiple=True,
              help="Labelled dataset with speaker ids. Repeat to combine corpora.")
@click.option("--folds", default=5, show_default=True, help="Number of speaker-grouped folds.")
@click.option("--param", "params", multiple=True, help="Model parameter KEY=VALUE for every run.")
@click.option("--sweep", "sweeps", multiple=True, help="Compare values: KEY=V1,V2 (e.g. features=default,seed).")
@click.option("--seed", default=0, show_default=True)
@click.option("--json-out", type=click.Path(), help="Write every result, folds included, to this JSON file.")
@click.option("--confusion", is_flag=True, help="Also print each run's pooled confusion matrix.")
@ON_ERROR
@MAX_DURATION
def cv_command(model_names: tuple[str, ...], data: tuple[str, ...], folds: int, params: tuple[str, ...],
               sweeps: tuple[str, ...], seed: int, json_out: str | None, confusion: bool, on_error: str,
               max_duration: float) -> None:
    """Speaker-grouped k-fold cross-validation of one or more models (no speaker in train and test)."""
    dataset = datasets.load_all(data)
    click.echo(f"data: {dataset.describe()}", err=True)
    fixed = parse_params(params)
    audio_by_rate: dict[int, datasets.LoadedAudio] = {}
    results = []
    table = Table("model", "params", "accuracy", "UAR", "macro-F1", "fold acc. std", "seconds",
                  title=f"{folds}-fold speaker-grouped cross-validation on {' + '.join(data)}")
    for name, setting in itertools.product(model_names, _sweep_settings(sweeps)):
        chosen = {**fixed, **setting}
        probe = create_model(name, **chosen)
        if probe.sample_rate not in audio_by_rate:
            audio_by_rate[probe.sample_rate] = datasets.load_waveforms(
                dataset.items, probe.sample_rate, on_error=on_error, max_seconds=max_duration
            )
            report_failures(audio_by_rate[probe.sample_rate].failures)
        result = cross_validate(lambda n=name, c=chosen: create_model(n, **c), dataset,
                                audio_by_rate[probe.sample_rate], folds, seed)
        summary = result.summary()
        results.append({**summary, "pooled": result.pooled, "fold_results": result.folds})
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in chosen.items()) or "defaults",
                      f"{summary['accuracy']:.3f}", f"{summary['uar']:.3f}", f"{summary['macro_f1']:.3f}",
                      f"{summary['accuracy_std']:.3f}", f"{summary['seconds']:.0f}")
        if confusion:
            print_confusion(result.pooled, f"{name} {chosen}")
    Console(width=140).print(table)
    if json_out:
        atomic_write_json(json_out, {"data": list(data), "folds": folds, "results": results})


@click.command("evaluate")
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--data", "data", required=True, multiple=True,
              help="Labelled clips the model was not trained on. Repeat to combine corpora.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@ON_ERROR
@MAX_DURATION
def evaluate_command(model_path: str, data: tuple[str, ...], as_json: bool, on_error: str, max_duration: float) -> None:
    """Score a trained model (directory or .onnx) on a labelled dataset."""
    from zoo.api import load

    model = load(model_path)
    dataset = datasets.load_all(data)
    audio = datasets.load_waveforms(dataset.items, model.sample_rate, on_error=on_error, max_seconds=max_duration)
    report_failures(audio.failures)
    labels = datasets.Dataset(audio.items, dataset.source, dataset.layout).labels
    result = scores(labels, model.predict(audio.waveforms))
    result["model"] = str(Path(model_path))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{model_path} on {' + '.join(data)} ({result['n']} clips): accuracy {result['accuracy']:.3f}  "
               f"UAR {result['uar']:.3f}  macro-F1 {result['macro_f1']:.3f}")
    print_confusion(result, "confusion matrix")
