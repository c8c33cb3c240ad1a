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

from benchmarks.conditions import BY_ID, CONDITIONS, FAMILIES, TEST_STREAM, Condition, degrade_all, select
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
    outcomes: list[tuple[Condition, np.ndarray, np.ndarray]] = []
    clean_accuracy = None
    with progress_bar(len(chosen) * len(waveforms), "degrading and scoring") as advance:
        for condition in chosen:
            degraded = degrade_all(condition, waveforms, rate, speakers, threads=threads, advance=advance)
            predicted, refused = predict_labels(model, degraded)
            outcomes.append((condition, predicted, refused))
            accuracy = float(np.mean((predicted == truth) & ~refused)) if len(truth) else 0.0
            clean_accuracy = accuracy if clean_accuracy is None else clean_accuracy
            log(f"  {condition.id}: accuracy {accuracy:.3f}, change {100 * (accuracy - clean_accuracy):+.1f} points")
    return robustness_record(truth, outcomes, speakers, rate, keep_predictions=keep_predictions)


def robustness_record(truth: np.ndarray, outcomes: Sequence[tuple[Condition, np.ndarray, np.ndarray]],
                      speakers: Sequence[object | None] | None, sample_rate: int, *,
                      keep_predictions: bool = False) -> dict[str, Any]:
    """The robustness record of (condition, predicted, refused) outcomes on clips with labels `truth` (clean
    first); each drop gets a 95 % interval from a bootstrap over `speakers` when every clip has one."""
    records: list[dict[str, Any]] = []
    clean: dict[str, Any] | None = None
    clean_predicted: np.ndarray | None = None
    clean_hits: np.ndarray | None = None
    known = speakers is not None and len(speakers) == len(truth) and all(s is not None for s in speakers)
    for condition, predicted, refused in outcomes:
        record = condition_record(condition, truth, predicted, refused, clean, clean_predicted)
        hits = (predicted == truth) & ~refused
        if keep_predictions:
            record["predicted"] = np.where(refused, -1, predicted).tolist()
        if condition.kind == "clean":
            clean, clean_predicted, clean_hits = record, predicted, hits
        elif known and clean_hits is not None:
            record["drop_accuracy_ci"] = drop_interval(clean_hits, hits, speakers)
        records.append(record)
    return {"conditions": records, "families": summarise_families(records), "n_clips": len(truth),
            "sample_rate": sample_rate, "test_stream": TEST_STREAM}


def drop_interval(clean_hits: np.ndarray, hits: np.ndarray, speakers: Sequence[object],
                  resamples: int = 1000, seed: int = 0) -> list[float]:
    """95 % interval of the accuracy drop (clean minus degraded, the same clips in both), from a seeded
    bootstrap over speakers: clips of one speaker are not independent, and speakers are what varies."""
    groups = np.unique(np.array([str(s) for s in speakers]), return_inverse=True)[1]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    if n_groups == 0:
        return [0.0, 0.0]
    counts = np.bincount(groups, minlength=n_groups)
    differences = np.bincount(groups, weights=clean_hits.astype(float) - hits.astype(float), minlength=n_groups)
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(resamples, n_groups))
    drops = differences[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(drops, [2.5, 97.5])
    return [float(low), float(high)]


def pooled_robustness(folds: Sequence[dict[str, Any]], truths: Sequence[np.ndarray],
                      speakers: Sequence[Sequence[object | None]]) -> dict[str, Any]:
    """One record from the records of several folds (each kept with its predictions): every condition
    scored on all folds' clips together, as if one model had predicted them."""
    truth = np.concatenate(truths)
    outcomes = []
    for index, first in enumerate(folds[0]["conditions"]):
        predicted = np.concatenate([np.asarray(f["conditions"][index]["predicted"], dtype=np.int64) for f in folds])
        outcomes.append((BY_ID[first["id"]], np.maximum(predicted, 0), predicted < 0))
    record = robustness_record(truth, outcomes, [s for fold in speakers for s in fold], folds[0]["sample_rate"])
    record["folds"] = [{"n_clips": f["n_clips"], "families": f["families"]} for f in folds]
    return record


def print_table(title: str, robustness: dict[str, Any], file: Any = None) -> None:
    """A rich table of one model's robustness record: a row per condition, then the family means."""
    from rich.console import Console
    from rich.table import Table

    table = Table("condition", "family", "accuracy", "UAR", "Δ acc (pts) [95 % CI]", "Δ UAR (pts)",
                  "same as clean", title=title)
    for record in robustness["conditions"]:
        clean = record["family"] == "clean"
        table.add_row(record["label"], record["family"], f"{record['accuracy']:.3f}", f"{record['uar']:.3f}",
                      "" if clean else accuracy_change(record),
                      "" if clean else f"{-100 * record['drop_uar']:+.1f}",
                      "" if clean else f"{record['agreement']:.2f}")
    table.add_section()
    for family, drops in robustness["families"].items():
        table.add_row(f"mean of {family}", family, "", "", f"{-100 * drops['drop_accuracy']:+.1f}",
                      f"{-100 * drops['drop_uar']:+.1f}", "")
    Console(file=file or sys.stdout, width=120).print(table)


def accuracy_change(record: dict[str, Any]) -> str:
    """"-4.5 [-8.0, -1.1]": the change from clean in points and, when known, its 95 % interval."""
    text = f"{-100 * record['drop_accuracy']:+.1f}"
    if "drop_accuracy_ci" in record:
        low, high = record["drop_accuracy_ci"]
        text += f" [{-100 * high:+.1f}, {-100 * low:+.1f}]"
    return text


def markdown_table(robustness: dict[str, Any]) -> str:
    """The same table in Markdown (for notes and the leaderboard)."""
    lines = ["| condition | accuracy | UAR | Δ accuracy (pts) [95 % CI] | Δ UAR (pts) | same as clean |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in robustness["conditions"]:
        cells = [r["label"], f"{r['accuracy']:.3f}", f"{r['uar']:.3f}"]
        if r["family"] == "clean":
            cells += ["", "", ""]
        else:
            cells += [accuracy_change(r), f"{-100 * r['drop_uar']:+.1f}", f"{r['agreement']:.2f}"]
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
    ("Actor_13" matches "ravdess/Actor_13"), or by that prefix ("ravdess": all its speakers); "all" takes every
    clip. An unmatched name is an error."""
    names = [part.strip() for entry in wanted for part in entry.split(",") if part.strip()]
    if "all" in names:
        return np.arange(len(dataset))
    speakers = [str(s) if s is not None else "" for s in dataset.speakers]
    chosen = set()
    for name in names:
        hits = {i for i, s in enumerate(speakers) if name in (s, s.rsplit("/", 1)[-1], s.split("/", 1)[0])}
        if not hits:
            raise EmozooError(f"no clips of speaker {name!r} (speakers look like {speakers[0]!r})")
        chosen |= hits
    return np.array(sorted(chosen), dtype=np.int64)


def speaker_folds(dataset: Any, pool: np.ndarray, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """`pool`'s clips in `n_folds` speaker-grouped test folds (`zoo.datasets.speaker_kfold` of those clips)."""
    from zoo import datasets

    return [np.sort(pool[test]) for _, test in datasets.speaker_kfold(dataset.subset(pool), n_folds, seed)]


def _speakers_of(dataset: Any, indices: np.ndarray) -> np.ndarray:
    """Every clip of the speakers of `indices` (a fold trains on none of them, also when --limit left some out)."""
    wanted = {str(s) for s in np.asarray(dataset.speakers, dtype=object)[indices]}
    return np.array([i for i, s in enumerate(dataset.speakers) if str(s) in wanted], dtype=np.int64)


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
@click.option("--test-speakers", multiple=True, help="Held-out speakers (repeat or comma-separate; a corpus "
              "name for all its speakers; 'all' for every clip) [default: a speaker-grouped split, "
              "--test-fraction of the speakers].")
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
@click.option("--folds", type=click.IntRange(min=2), help="Speaker-grouped K-fold over the test speakers "
              "(--test-speakers, or every speaker): each fold's speakers are scored by a model trained without "
              "them, and the scores pool all folds' clips (plugin names only).")
def main(models: tuple[str, ...], data: tuple[str, ...], test_speakers: tuple[str, ...], test_fraction: float,
         seed: int, limit: int | None, condition_ids: str | None, params: tuple[str, ...], json_out: str | None,
         work_dir: str | None, threads: int | None, on_error: str, max_duration: float,
         folds: int | None) -> None:
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
        if folds:
            pool = subsample(speakers_matching(dataset, test_speakers) if test_speakers else everything,
                             dataset.labels, limit, seed)
            tests = speaker_folds(dataset, pool, folds, seed)
            trains = [np.setdiff1d(everything, _speakers_of(dataset, test)) for test in tests]
        else:
            test = speakers_matching(dataset, test_speakers) if test_speakers else datasets.speaker_split(
                dataset, test_fraction, seed)[1]
            trains, tests = [np.setdiff1d(everything, test)], [subsample(test, dataset.labels, limit, seed)]
        splits = [Split(dataset, train, test, on_error=on_error, max_seconds=max_duration)
                  for train, test in zip(trains, tests, strict=True)]
        models_dir = Path(work_dir) if work_dir else (
            Path(json_out).with_name(Path(json_out).stem + "-models") if json_out else Path("robustness-models"))
        described = {"folds": [split.describe() for split in splits]} if folds else splits[0].describe()
        document: dict[str, Any] = {"format": "emozoo-robustness", "data": described, "models": []}
        for spec in models:
            if folds and Path(spec).exists():
                raise EmozooError(f"{spec}: --folds trains a model per fold; give a plugin name, not a saved model")
            chosen = per_model.get(spec, {}) if Path(spec).exists() else {**per_model.get(None, {}),
                                                                          **per_model.get(spec, {})}
            records, truths, speakers, subject = [], [], [], None
            for index, split in enumerate(splits):
                fold = f" (fold {index + 1} of {len(splits)})" if folds else ""
                action = "loading" if Path(spec).exists() else f"training on {len(split.train)} clips"
                click.echo(f"{spec}{fold}: {action}", err=True)
                subject = prepare(spec, split, chosen, models_dir / f"fold{index + 1}" if folds else models_dir)
                model = subject.native
                if model is None:
                    from zoo.onnx_runtime import OnnxEmotionModel

                    model = OnnxEmotionModel(subject.onnx_path)
                audio = split.audio("test", model.sample_rate)
                click.echo(f"{subject.label}{fold}: {len(audio.waveforms)} test clips x {len(conditions)} conditions",
                           err=True)
                truths.append(np.array([i.label for i in audio.items], dtype=np.int64))
                speakers.append([i.speaker for i in audio.items])
                records.append(score_robustness(model, audio.waveforms, truths[-1], speakers=speakers[-1],
                                                conditions=conditions, threads=threads, keep_predictions=bool(folds),
                                                log=lambda line: click.echo(line, err=True)))
            robustness = pooled_robustness(records, truths, speakers) if folds else records[0]
            n_clips = robustness["n_clips"]
            print_table(f"{subject.label}: robustness on {n_clips} held-out clips"
                        + (f", {folds} speaker folds pooled" if folds else ""), robustness)
            document["models"].append({"model": subject.label, "kind": subject.kind, "params": subject.params,
                                       "robustness": robustness})
        failures = [failure for split in splits for failure in split.failures]
        if failures:
            click.echo(f"skipped {len(failures)} bad file(s)", err=True)
        if json_out:
            atomic_write_json(json_out, document)
            click.echo(f"wrote {json_out}", err=True)
    except (EmozooError, ValueError) as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
