from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
import numpy as np

from zoo.api import DEVICES
from zoo.calibration import decide
from zoo.cli.common import MAX_DURATION, ON_ERROR, report_failures
from zoo.cli.confidence import min_confidence_option
from zoo.datasets import read_item
from zoo.distributed.cli import ENGINES, check_engine_options, run_ray_predict
from zoo.errors import AudioError, DatasetError, ModelFileError
from zoo.inputs import collect_inputs
from zoo.labels import LABELS
from zoo.normalize import NORMALIZE_MODES, normalization_groups, normalize_probabilities
from zoo.storage import atomic_write_text, check_output_file

FORMATS = ["table", "json", "csv", "dacon", "parquet"]


def default_model_path() -> Path:
    from zoo.bundled import default_model_path as bundled

    return bundled()


def _is_model(text: str) -> bool:
    path = Path(text)
    return path.suffix == ".onnx" or (path.is_dir() and (path / "manifest.json").is_file())


@click.command("predict")
@click.argument("arguments", nargs=-1, required=True, metavar="[MODEL] INPUT...")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True,
              help="dacon: id,label in sample_submission.csv order (input: the competition's test.csv).")
@click.option("-o", "--output", type=click.Path(), help="Write here instead of standard output.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for the model [default: every core].")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto: CUDA where usable (ONNX files and deep models), else the CPU.")
@click.option("--normalize", type=click.Choice(NORMALIZE_MODES), default="none", show_default=True,
              help="Normalise outputs over each speaker's clips (a manifest's speaker column) or over all the "
                   "clips of this run (session); see docs/robustness.md for when it helps.")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
              help="ray: score on Ray Data, here or on a cluster, into partitions in the folder -o names, "
                   "resumable, bad files recorded (the ray extra; docs/ray.md).")
@click.option("--address", default=None, help="--engine ray: the Ray cluster to join [default: Ray on this machine].")
@click.option("--num-workers", type=click.IntRange(1), default=None,
              help="--engine ray: scoring actors, each holding the model once [default: one per CPU].")
@min_confidence_option(" (not with --format dacon)")
@ON_ERROR
@MAX_DURATION
def predict_command(arguments: tuple[str, ...], output_format: str, output: str | None, batch_size: int,
                    threads: int | None, device: str, normalize: str, engine: str, address: str | None,
                    num_workers: int | None, min_confidence: float | None, on_error: str,
                    max_duration: float) -> None:
    """Predict the emotion of clips with MODEL (directory or .onnx; the bundled model when left out).

    INPUT: audio files, folders of audio, or a CSV list (the competition's test.csv, or manifest.csv).
    """
    partition_format = check_engine_options(engine, output=output, output_format=output_format,
                                            normalize=normalize, address=address, num_workers=num_workers)
    if _is_model(arguments[0]):
        model_path, inputs = Path(arguments[0]), list(arguments[1:])
    else:
        model_path, inputs = default_model_path(), list(arguments)
        if not model_path.is_file():
            raise ModelFileError(f"no model given and the bundled default model is missing ({model_path})")
    if not inputs:
        raise click.UsageError("give at least one INPUT (audio file, folder or CSV)")
    if min_confidence is not None and output_format == "dacon":
        raise click.UsageError("--min-confidence cannot be used with --format dacon: a competition submission "
                               "needs one of the six labels for every clip")
    if min_confidence is not None and partition_format is not None:
        raise click.UsageError("--min-confidence is not supported with --engine ray")
    if partition_format is not None:  # bad files are recorded in OUT, never fatal: --on-error does not apply
        return run_ray_predict(model_path, inputs, output, partition_format=partition_format, address=address,
                               num_workers=num_workers, batch_size=batch_size, threads=threads, device=device,
                               max_duration=max_duration)
    if output:
        check_output_file(output)
    # inputs and output are checked before the model is loaded: that imports the heavy libraries (seconds)
    listing = collect_inputs(inputs)
    from zoo.api import load_for_inference

    model = load_for_inference(model_path, threads=threads, device=device)

    waveforms, kept, failures = [], [], []
    for item in listing.items:
        try:
            waveforms.append(read_item(item, model.sample_rate, max_seconds=max_duration))
            kept.append(item)
        except (AudioError, DatasetError) as error:
            if on_error == "fail":
                raise
            failures.append((item, str(error)))
    report_failures(failures)
    if failures and not kept:
        raise DatasetError(f"none of the {len(failures)} input(s) could be read; nothing to predict")
    probabilities = (
        np.concatenate([model.predict_proba(waveforms[i : i + batch_size])
                        for i in range(0, len(waveforms), batch_size)])
        if waveforms else np.zeros((0, len(LABELS)))
    )
    if normalize != "none" and len(kept):
        groups = normalization_groups(normalize, [getattr(item, "speaker", None) for item in kept], " ".join(inputs))
        probabilities = normalize_probabilities(probabilities, groups)
    rows = [_row(item, p, min_confidence) for item, p in zip(kept, probabilities, strict=True)]
    text = _render(rows, output_format, listing.submission_order, failures)
    if output:
        atomic_write_text(output, text)
        click.echo(f"wrote {len(rows)} predictions to {output}", err=True)
    elif output_format == "table":
        _print_table(rows, str(model_path))
    else:
        click.echo(text, nl=False)


def _row(item: Any, probabilities: np.ndarray, min_confidence: float | None = None) -> dict[str, Any]:
    label, label_id, confidence = decide(probabilities, min_confidence)
    return {
        "id": item.id,
        "path": str(item.path),
        "true": LABELS[item.label] if item.label is not None else None,
        "label": label,
        "label_id": label_id,
        "confidence": confidence,
        "probabilities": {name: float(p) for name, p in zip(LABELS, probabilities, strict=True)},
    }


def _render(rows: list[dict[str, Any]], output_format: str, order: list[str] | None,
            failures: list[tuple[Any, str]]) -> str:
    buffer = io.StringIO()
    if output_format == "json":
        return json.dumps(rows, indent=2) + "\n"
    if output_format == "dacon":
        if failures:
            raise DatasetError(
                f"a DACON submission needs a label for every clip; {len(failures)} could not be read: "
                + "; ".join(message for _, message in failures)
            )
        repeated = sorted(i for i, n in Counter(row["id"] for row in rows).items() if n > 1)
        if repeated:
            more = f" and {len(repeated) - 10} more" if len(repeated) > 10 else ""
            raise DatasetError("a DACON submission needs one row per id; these ids name several clips: "
                               f"{', '.join(repeated[:10])}{more}")
        by_id = {row["id"]: row["label_id"] for row in rows}
        ids = order if order is not None else [row["id"] for row in rows]
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DatasetError(f"sample_submission.csv lists ids that the input lacks: {', '.join(missing[:5])}")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", "label"])
        writer.writerows([i, by_id[i]] for i in ids)
        return buffer.getvalue()
    columns = ["id", "path", "true", "label", "label_id", "confidence"]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns + [f"p_{label}" for label in LABELS])
    for row in rows:
        writer.writerow([row[c] if row[c] is not None else "" for c in columns]
                        + [f"{row['probabilities'][label]:.6f}" for label in LABELS])
    return buffer.getvalue()


def _print_table(rows: list[dict[str, Any]], model: str) -> None:
    from rich.console import Console
    from rich.table import Table

    has_truth = any(row["true"] for row in rows)
    table = Table(title=f"emotion predictions ({Path(model).name})")
    table.add_column("clip")
    if has_truth:
        table.add_column("true emotion")
    table.add_column("predicted emotion")
    table.add_column("confidence", justify="right")
    for row in rows:
        cells = [row["id"]] + ([row["true"] or "-"] if has_truth else [])
        mark = "" if not has_truth or row["true"] is None or row["label_id"] is None else (
            " ✓" if row["true"] == row["label"] else " ✗")
        table.add_row(*cells, row["label"] + mark, f"{row['confidence']:.0%}")
    Console(width=120).print(table)
    if has_truth:
        scored = [r for r in rows if r["true"]]
        correct = sum(r["true"] == r["label"] for r in scored)
        uncertain = sum(r["label_id"] is None for r in scored)
        Console().print(f"{correct}/{len(scored)} correct" + (f", {uncertain} uncertain" if uncertain else ""))
