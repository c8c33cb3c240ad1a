from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from zoo import datasets
from zoo.cli.common import MAX_DURATION, ON_ERROR, parse_model_params, parse_value, report_failures
from zoo.evaluation import cross_validate, leave_one_corpus_out, probabilities_normalized, scored
from zoo.labels import LABELS
from zoo.metrics import reliability_bins
from zoo.normalize import NORMALIZE_MODES
from zoo.predictions import RunPredictions, write_predictions
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


NORMALIZE = click.option(
    "--normalize", type=click.Choice(NORMALIZE_MODES), default="none", show_default=True,
    help="Normalise outputs over each speaker's clips (needs speaker ids) or over all clips scored together "
         "(session). Helps with several mixed-emotion clips per group; see docs/robustness.md.")


def _audio_at(sample_rate: int, dataset: datasets.Dataset, loaded: dict[int, datasets.LoadedAudio], on_error: str,
              max_duration: float) -> datasets.LoadedAudio:
    """The dataset decoded at `sample_rate`, once per rate (bad files reported the first time)."""
    if sample_rate not in loaded:
        loaded[sample_rate] = datasets.load_waveforms(dataset.items, sample_rate, on_error=on_error,
                                                      max_seconds=max_duration)
        report_failures(loaded[sample_rate].failures)
    return loaded[sample_rate]


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
@click.option("--param", "params", multiple=True,
              help="Model parameter [MODEL:]KEY=VALUE, for every model or the one named (repeatable).")
@click.option("--sweep", "sweeps", multiple=True, help="Compare values: KEY=V1,V2 (e.g. features=default,seed).")
@click.option("--seed", default=0, show_default=True)
@click.option("--json-out", type=click.Path(), help="Write every result, folds included, to this JSON file.")
@click.option("--predictions-out", type=click.Path(dir_okay=False),
              help="Write every clip's held-out probabilities (model, split, clip, label) to this CSV, "
                   "rewritten after each model run.")
@click.option("--confusion", is_flag=True, help="Also print each run's pooled confusion matrix.")
@click.option("--leave-one-corpus-out", "corpus_out", is_flag=True,
              help="Cross-corpus protocol: for each --data corpus, train on all the others and test on it.")
@click.option("--held-out", "held_out", multiple=True, metavar="CORPUS",
              help="With --leave-one-corpus-out: hold out only this corpus (its folder name; repeatable), e.g. "
                   "to run the corpora in separate processes.")
@NORMALIZE
@ON_ERROR
@MAX_DURATION
def cv_command(model_names: tuple[str, ...], data: tuple[str, ...], folds: int, params: tuple[str, ...],
               sweeps: tuple[str, ...], seed: int, json_out: str | None, predictions_out: str | None,
               confusion: bool, corpus_out: bool, held_out: tuple[str, ...], normalize: str, on_error: str,
               max_duration: float) -> None:
    """Speaker-grouped k-fold cross-validation of one or more models (no speaker in train and test).

    With --leave-one-corpus-out (two or more --data): train on all corpora but one, test on it, for each.
    """
    if corpus_out and len(data) < 2:
        raise click.UsageError("--leave-one-corpus-out needs two or more --data corpora")
    if held_out and not corpus_out:
        raise click.UsageError("--held-out goes with --leave-one-corpus-out")
    dataset = datasets.load_all(data)
    click.echo(f"data: {dataset.describe()}", err=True)
    fixed = parse_model_params(params, model_names)
    if corpus_out:
        _corpus_transfer(model_names, dataset, fixed, sweeps, json_out, predictions_out, confusion, normalize,
                         on_error, max_duration, held_out)
        return
    predictions: list[RunPredictions] = []
    audio_by_rate: dict[int, datasets.LoadedAudio] = {}
    results = []
    table = Table("model", "params", "accuracy", "UAR", "macro-F1", "fold acc. std", "ECE", "Brier", "seconds",
                  title=f"{folds}-fold speaker-grouped cross-validation on {' + '.join(data)}"
                        + (f", normalize={normalize}" if normalize != "none" else ""))
    for name, setting in itertools.product(model_names, _sweep_settings(sweeps)):
        chosen = {**fixed.get(None, {}), **fixed.get(name, {}), **setting}
        probe = create_model(name, **chosen)
        audio = _audio_at(probe.sample_rate, dataset, audio_by_rate, on_error, max_duration)
        result = cross_validate(lambda n=name, c=chosen: create_model(n, **c), dataset, audio, folds, seed,
                                normalize=normalize)
        summary = result.summary()
        results.append({**summary, "pooled": result.pooled, "fold_results": result.folds})
        if predictions_out:
            predictions.append(RunPredictions(name, chosen, "speaker-kfold", result.splits, audio.items,
                                              result.probabilities))
            write_predictions(predictions_out, predictions)
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in chosen.items()) or "defaults",
                      f"{summary['accuracy']:.3f}", f"{summary['uar']:.3f}", f"{summary['macro_f1']:.3f}",
                      f"{summary['accuracy_std']:.3f}", f"{summary['ece']:.3f}", f"{summary['brier']:.3f}",
                      f"{summary['seconds']:.0f}")
        if confusion:
            print_confusion(result.pooled, f"{name} {chosen}")
    Console(width=140).print(table)
    if json_out:
        atomic_write_json(json_out, {"data": list(data), "folds": folds, "normalize": normalize,
                                     "protocol": "speaker-kfold", "results": results})


def _corpus_transfer(model_names: tuple[str, ...], dataset: datasets.Dataset, fixed: dict[str | None, dict[str, Any]],
                     sweeps: tuple[str, ...], json_out: str | None, predictions_out: str | None, confusion: bool,
                     normalize: str, on_error: str, max_duration: float, held_out: tuple[str, ...] = ()) -> None:
    corpora = sorted({item.corpus for item in dataset.items if item.corpus})
    unknown = sorted(set(held_out) - set(corpora))
    if unknown:
        raise click.UsageError(f"--held-out {', '.join(unknown)}: no such corpus among {', '.join(corpora)}")
    corpora = [c for c in corpora if not held_out or c in held_out]
    predictions: list[RunPredictions] = []
    audio_by_rate: dict[int, datasets.LoadedAudio] = {}
    results = []
    table = Table("model", "params", *(f"{c} UAR" for c in corpora), "mean acc.", "mean UAR", "mean F1",
                  "min UAR", "mean ECE", "seconds",
                  title="leave-one-corpus-out (train on the others, test on the named corpus)"
                        + (f", normalize={normalize}" if normalize != "none" else ""))
    for name, setting in itertools.product(model_names, _sweep_settings(sweeps)):
        chosen = {**fixed.get(None, {}), **fixed.get(name, {}), **setting}
        probe = create_model(name, **chosen)
        audio = _audio_at(probe.sample_rate, dataset, audio_by_rate, on_error, max_duration)

        def report(corpus: str, row: dict[str, Any], n: str = name) -> None:
            click.echo(f"{n}: held out {corpus} ({row['n']} clips): accuracy {row['accuracy']:.3f}  "
                       f"UAR {row['uar']:.3f}  macro-F1 {row['macro_f1']:.3f}  ECE {row['ece']:.3f}", err=True)

        result = leave_one_corpus_out(lambda n=name, c=chosen: create_model(n, **c), dataset, audio, normalize,
                                      on_corpus=report, only=held_out)
        summary = result.summary()
        results.append({**summary, "held_out": result.held_out})
        if predictions_out:
            scored_items = [audio.items[i] for i in result.positions]
            predictions.append(RunPredictions(name, chosen, "leave-one-corpus-out", result.splits, scored_items,
                                              result.probabilities))
            write_predictions(predictions_out, predictions)
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in chosen.items()) or "defaults",
                      *(f"{summary['per_corpus'][c]['uar']:.3f}" for c in corpora),
                      f"{summary['accuracy']:.3f}", f"{summary['uar']:.3f}", f"{summary['macro_f1']:.3f}",
                      f"{summary['min_uar']:.3f}", f"{summary['ece']:.3f}", f"{summary['seconds']:.0f}")
        if confusion:
            for corpus, row in result.held_out.items():
                print_confusion(row, f"{name} {chosen}, held out {corpus}")
    Console(width=160).print(table)
    if json_out:
        atomic_write_json(json_out, {"data": [c for c in corpora], "protocol": "leave-one-corpus-out",
                                     "normalize": normalize, "results": results})


@click.command("evaluate")
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--data", "data", required=True, multiple=True,
              help="Labelled clips the model was not trained on. Repeat to combine corpora.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@NORMALIZE
@ON_ERROR
@MAX_DURATION
def evaluate_command(model_path: str, data: tuple[str, ...], as_json: bool, normalize: str, on_error: str,
                     max_duration: float) -> None:
    """Score a trained model (directory or .onnx) on a labelled dataset."""
    from zoo.api import load

    model = load(model_path)
    dataset = datasets.load_all(data)
    audio = datasets.load_waveforms(dataset.items, model.sample_rate, on_error=on_error, max_seconds=max_duration)
    report_failures(audio.failures)
    labels = datasets.Dataset(audio.items, dataset.source, dataset.layout).labels
    speakers = [item.speaker for item in audio.items]
    probabilities = probabilities_normalized(model, audio.waveforms, speakers, normalize, " + ".join(data))
    result = scored(labels, probabilities)
    result["reliability"] = reliability_bins(labels, probabilities)
    result["model"] = str(Path(model_path))
    result["normalize"] = normalize
    result["calibration"] = _calibration_of(model)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{model_path} on {' + '.join(data)} ({result['n']} clips): accuracy {result['accuracy']:.3f}  "
               f"UAR {result['uar']:.3f}  macro-F1 {result['macro_f1']:.3f}")
    calibration = result["calibration"]
    state = (f"temperature {calibration['temperature']:.3f}" if calibration.get("method") == "temperature"
             else "uncalibrated")
    click.echo(f"confidence: expected calibration error {result['ece']:.3f}  Brier {result['brier']:.3f}  "
               f"(model {state}; docs/calibration.md)")
    print_confusion(result, "confusion matrix")


def _calibration_of(model: Any) -> dict[str, Any]:
    """The model's calibration record: a native model's attribute, or an ONNX file's metadata."""
    native = getattr(model, "calibration_", None)
    if native is not None:
        return native.as_dict()
    recorded = (getattr(model, "metadata", None) or {}).get("calibration")
    return recorded if isinstance(recorded, dict) else {"method": "none"}
