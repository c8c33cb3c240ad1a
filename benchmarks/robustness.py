"""Robustness benchmark: accuracy and UAR of a model on held-out speakers under fixed, seeded degradations
(`benchmarks.conditions`), and the drop from clean per condition and per family.

    python -m benchmarks.robustness MODEL [MODEL ...] --data D [--data D2] [--test-speakers S ...] --json out.json

MODEL is a saved model directory, an .onnx file or a plugin name (trained here on the other speakers).
`emozoo bench --robustness` runs the same scoring and stores it in the benchmark records (`robustness`).

Drops are clean minus degraded (positive: the model lost accuracy), as fractions in the JSON and in
percentage points in tables. A clip the model refuses under a condition (say, gain -20 dB pushing a very
quiet clip under the silence threshold) counts as a miss and in `failed`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from benchmarks.conditions import CONDITIONS, FAMILIES, TEST_STREAM, Condition, degrade_all, select
from zoo.errors import AudioError, EmozooError
from zoo.labels import LABELS
from zoo.metrics import scores
from zoo.progress import progress_bar

Log = Callable[[str], None]
SCORE_KEYS = ("accuracy", "uar", "macro_f1")


def predict_labels(model: Any, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(label ids, refused mask): one batch call; on an audio error, clip by clip, refused ones marked."""
    try:
        return np.argmax(np.asarray(model.predict_proba(clips)), axis=1), np.zeros(len(clips), dtype=bool)
    except AudioError:
        predicted, refused = np.zeros(len(clips), dtype=np.int64), np.zeros(len(clips), dtype=bool)
        for index, clip in enumerate(clips):
            try:
                predicted[index] = int(np.argmax(model.predict_proba([clip])[0]))
            except AudioError:
                refused[index] = True
        return predicted, refused


def condition_record(condition: Condition, truth: np.ndarray, predicted: np.ndarray, refused: np.ndarray,
                     clean: dict[str, Any] | None, clean_predicted: np.ndarray | None) -> dict[str, Any]:
    """Scores of one condition, its drop from `clean` and its agreement with the clean predictions."""
    counted = np.where(refused, (truth + 1) % len(LABELS), predicted)  # a refused clip is a miss
    result = scores(truth, counted)
    record: dict[str, Any] = {"id": condition.id, "label": condition.label, "family": condition.family,
                              "n": result["n"], "failed": int(refused.sum()),
                              **{key: result[key] for key in SCORE_KEYS},
                              "per_class_recall": result["per_class_recall"]}
    reference = clean or record
    record["drop_accuracy"] = reference["accuracy"] - record["accuracy"]
    record["drop_uar"] = reference["uar"] - record["uar"]
    base = clean_predicted if clean_predicted is not None else predicted
    record["agreement"] = float(np.mean((counted == base) & ~refused)) if len(truth) else 0.0
    return record


def summarise_families(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean drop from clean (accuracy and UAR) over each family's conditions."""
    families: dict[str, dict[str, float]] = {}
    for family in FAMILIES:
        members = [r for r in records if r["family"] == family]
        if members:
            families[family] = {key: float(np.mean([r[key] for r in members]))
                                for key in ("drop_accuracy", "drop_uar")}
    return families


def score_robustness(model: Any, waveforms: Sequence[np.ndarray], labels: Sequence[int], *,
                     speakers: Sequence[object | None] | None = None, sample_rate: int | None = None,
                     conditions: Sequence[Condition] = CONDITIONS, threads: int | None = None,
                     keep_predictions: bool = False, log: Log = lambda _: None) -> dict[str, Any]:
    """Score `model` (anything with predict_proba over waveforms at `sample_rate`, by default the model's)
    on `waveforms` under each condition (clean always first). Returns the robustness record:
    ``{"conditions": [...], "families": {family: {"drop_accuracy", "drop_uar"}}, "n_clips", "test_stream"}``;
    with `keep_predictions` each condition also lists its predicted label ids (-1: refused).
    """
    rate = int(sample_rate or model.sample_rate)
    truth = np.asarray(labels, dtype=np.int64)
    chosen = select([c.id for c in conditions])
    records: list[dict[str, Any]] = []
    clean: dict[str, Any] | None = None
    clean_predicted: np.ndarray | None = None
    with progress_bar(len(chosen) * len(waveforms), "degrading and scoring") as advance:
        for condition in chosen:
            degraded = degrade_all(condition, waveforms, rate, speakers, threads=threads, advance=advance)
            predicted, refused = predict_labels(model, degraded)
            record = condition_record(condition, truth, predicted, refused, clean, clean_predicted)
            if keep_predictions:
                record["predicted"] = np.where(refused, -1, predicted).tolist()
            if condition.kind == "clean":
                clean, clean_predicted = record, predicted
            records.append(record)
            log(f"  {condition.id}: accuracy {record['accuracy']:.3f}, UAR {record['uar']:.3f}, "
                f"change {-100 * record['drop_accuracy']:+.1f} points")
    return {"conditions": records, "families": summarise_families(records), "n_clips": len(truth),
            "sample_rate": rate, "test_stream": TEST_STREAM}


def print_table(title: str, robustness: dict[str, Any], file: Any = None) -> None:
    """A rich table of one model's robustness record: a row per condition, then the family means."""
    from rich.console import Console
    from rich.table import Table

    table = Table("condition", "family", "accuracy", "UAR", "Δ acc (pts)", "Δ UAR (pts)", "same as clean",
                  title=title)
    for record in robustness["conditions"]:
        clean = record["family"] == "clean"
        table.add_row(record["label"], record["family"], f"{record['accuracy']:.3f}", f"{record['uar']:.3f}",
                      "" if clean else f"{-100 * record['drop_accuracy']:+.1f}",
                      "" if clean else f"{-100 * record['drop_uar']:+.1f}",
                      "" if clean else f"{record['agreement']:.2f}")
    table.add_section()
    for family, drops in robustness["families"].items():
        table.add_row(f"mean of {family}", family, "", "", f"{-100 * drops['drop_accuracy']:+.1f}",
                      f"{-100 * drops['drop_uar']:+.1f}", "")
    Console(file=file or sys.stdout, width=120).print(table)


def markdown_table(robustness: dict[str, Any]) -> str:
    """The same table in Markdown (for notes and the leaderboard)."""
    lines = ["| condition | accuracy | UAR | Δ accuracy (pts) | Δ UAR (pts) | same as clean |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in robustness["conditions"]:
        cells = [r["label"], f"{r['accuracy']:.3f}", f"{r['uar']:.3f}"]
        if r["family"] == "clean":
            cells += ["", "", ""]
        else:
            cells += [f"{-100 * r['drop_accuracy']:+.1f}", f"{-100 * r['drop_uar']:+.1f}", f"{r['agreement']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def robustness_of_runner(runner: Any, split: Any, log: Log = lambda _: None,
                         threads: int | None = None) -> dict[str, Any]:
    """`score_robustness` of a bench runner on the test part of a `benchmarks.subjects.Split`."""
    audio = split.audio("test", runner.sample_rate)
    labels = [item.label for item in audio.items]
    return score_robustness(runner, audio.waveforms, labels, speakers=[item.speaker for item in audio.items],
                            sample_rate=runner.sample_rate, threads=threads, log=log)


# -- choosing the test clips ------------------------------------------------------------------------------


def speakers_matching(dataset: Any, wanted: Sequence[str]) -> np.ndarray:
    """Indices of the clips whose speaker is one of `wanted`: exactly, or after its corpus prefix
    ("Actor_13" matches "ravdess/Actor_13"); "all" takes every clip. An unmatched name is an error."""
    names = [part.strip() for entry in wanted for part in entry.split(",") if part.strip()]
    if "all" in names:
        return np.arange(len(dataset))
    speakers = [str(s) if s is not None else "" for s in dataset.speakers]
    chosen = set()
    for name in names:
        hits = {i for i, s in enumerate(speakers) if s == name or s.rsplit("/", 1)[-1] == name}
        if not hits:
            raise EmozooError(f"no clips of speaker {name!r} (speakers look like {speakers[0]!r})")
        chosen |= hits
    return np.array(sorted(chosen), dtype=np.int64)


def subsample(indices: np.ndarray, labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """At most `limit` of `indices`, each label keeping its share (seeded; sorted)."""
    if limit is None or len(indices) <= limit:
        return indices
    rng = np.random.default_rng([TEST_STREAM, seed])
    classes = np.unique(labels[indices])
    picked = []
    for label in classes:
        members = indices[labels[indices] == label]
        share = int(round(limit * len(members) / len(indices)))
        picked.append(rng.permutation(members)[:share])
    return np.sort(np.concatenate(picked))


@click.command("robustness")
@click.argument("models", nargs=-1, required=True)
@click.option("--data", "data", required=True, multiple=True, help="Labelled dataset (repeat to combine corpora).")
@click.option("--test-speakers", multiple=True, help="Held-out speakers (repeat or comma-separate; 'all' for "
              "every clip) [default: a speaker-grouped split, --test-fraction of the speakers].")
@click.option("--test-fraction", default=0.2, show_default=True, help="Share of speakers held out.")
@click.option("--seed", default=0, show_default=True, help="Seed of the speaker split and of --limit.")
@click.option("--limit", type=click.IntRange(min=1), help="Score at most this many test clips (label shares kept).")
@click.option("--conditions", "condition_ids", help=f"Comma-separated condition ids [default: all: "
              f"{', '.join(c.id for c in CONDITIONS)}].")
@click.option("--param", "params", multiple=True, help="Model parameter [MODEL:]KEY=VALUE for plugin names.")
@click.option("--json", "json_out", type=click.Path(), help="Write every model's record to this JSON file.")
@click.option("--work-dir", type=click.Path(), help="Where models trained here are saved "
              "[default: next to --json, or robustness-models].")
@click.option("--threads", type=click.IntRange(min=1), help="Threads degrading clips [default: up to 4].")
@click.option("--on-error", type=click.Choice(["fail", "skip"]), default="skip", show_default=True)
@click.option("--max-duration", type=float, default=600.0, show_default=True, help="Longest clip, in seconds.")
def main(models: tuple[str, ...], data: tuple[str, ...], test_speakers: tuple[str, ...], test_fraction: float,
         seed: int, limit: int | None, condition_ids: str | None, params: tuple[str, ...], json_out: str | None,
         work_dir: str | None, threads: int | None, on_error: str, max_duration: float) -> None:
    """Accuracy and UAR of MODELS on held-out speakers, clean and under fixed, seeded degradations."""
    from benchmarks.options import parse_model_params
    from benchmarks.subjects import Split, prepare
    from zoo import datasets
    from zoo.storage import atomic_write_json

    try:
        conditions = select([c.strip() for c in condition_ids.split(",") if c.strip()] if condition_ids else None)
        per_model = parse_model_params(params, models)
        dataset = datasets.load_all(data)
        click.echo(f"data: {dataset.describe()}", err=True)
        everything = np.arange(len(dataset))
        if test_speakers:
            test = speakers_matching(dataset, test_speakers)
            train = np.setdiff1d(everything, test)
        else:
            train, test = datasets.speaker_split(dataset, test_fraction, seed)
        test = subsample(test, dataset.labels, limit, seed)
        split = Split(dataset, train, test, on_error=on_error, max_seconds=max_duration)
        models_dir = Path(work_dir) if work_dir else (
            Path(json_out).with_name(Path(json_out).stem + "-models") if json_out else Path("robustness-models"))
        document: dict[str, Any] = {"format": "emozoo-robustness", "data": split.describe(), "models": []}
        for spec in models:
            chosen = per_model.get(spec, {}) if Path(spec).exists() else {**per_model.get(None, {}),
                                                                          **per_model.get(spec, {})}
            click.echo(f"{spec}: {'loading' if Path(spec).exists() else f'training on {len(train)} clips'}",
                       err=True)
            subject = prepare(spec, split, chosen, models_dir)
            model = subject.native
            if model is None:
                from zoo.onnx_runtime import OnnxEmotionModel

                model = OnnxEmotionModel(subject.onnx_path)
            audio = split.audio("test", model.sample_rate)
            click.echo(f"{subject.label}: {len(audio.waveforms)} test clips x {len(conditions)} conditions", err=True)
            robustness = score_robustness(model, audio.waveforms, [i.label for i in audio.items],
                                          speakers=[i.speaker for i in audio.items], conditions=conditions,
                                          threads=threads, log=lambda line: click.echo(line, err=True))
            print_table(f"{subject.label}: robustness on {len(audio.waveforms)} held-out clips", robustness)
            document["models"].append({"model": subject.label, "kind": subject.kind, "params": subject.params,
                                       "robustness": robustness})
        if split.failures:
            click.echo(f"skipped {len(split.failures)} bad file(s)", err=True)
        if json_out:
            atomic_write_json(json_out, document)
            click.echo(f"wrote {json_out}", err=True)
    except (EmozooError, ValueError) as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
