"""Peer baseline: openSMILE eGeMAPSv02 functionals + SVM, leave-one-corpus-out, next to emozoo's own models.

    python -m benchmarks.opensmile_peer --data ../shared/data/emodb --data ../shared/data/ravdess \\
        --data ../shared/data/nemo [--normalize speaker] --json out.json

For each corpus given with --data: train on all the others, test on it (the protocol of
`emozoo cv --leave-one-corpus-out`). The JSON has the same shape as that command's --json-out (protocol, data,
normalize, results[{model, params, accuracy, uar, macro_f1, min_uar, per_corpus{...}, held_out{...}}]), so the
peer's numbers sit next to ours. UAR counts only the classes present in the held-out corpus (nEMO has no
disgust), as `zoo.metrics.scores` does.

Classifiers, each StandardScaler + one of: SVC (RBF, C=1, class_weight=balanced: the customary eGeMAPS
baseline), LinearSVC and logistic regression (both C=1, balanced).

--normalize speaker z-scores the 88 eGeMAPS features over each speaker's clips (mean 0, standard deviation 1
per feature and speaker) before training and testing: the customary speaker normalisation for eGeMAPS. A
held-out speaker's statistics come from that speaker's own unlabelled clips. This is feature-level, unlike
emozoo's `--normalize speaker`, which works on the model's output probabilities.

Features are extracted once per clip (`opensmile.Smile.process_file` on the file itself, at its own sample
rate; one worker process per usable core) and cached in one .npz per corpus under --cache (default
build/opensmile-cache).

Licence: openSMILE is free for research and education only (audEERING's research licence; commercial use
needs a licence from audEERING). It is the optional extra `emozoo[peers]`, used by this benchmark alone, and
must never become a dependency of the zoo or of any model.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import click
import numpy as np

from zoo.errors import EmozooError

FEATURE_SET = "eGeMAPSv02"
FEATURE_LEVEL = "Functionals"
DEFAULT_CACHE = Path("build") / "opensmile-cache"
NORMALIZE_MODES = ("none", "speaker")


def _smile(feature_set: str = FEATURE_SET) -> Any:
    try:
        import opensmile
    except ImportError:
        raise click.ClickException(
            "openSMILE is not installed: pip install 'emozoo[peers]' (research-only licence, see the docstring)"
        ) from None
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                           feature_level=getattr(opensmile.FeatureLevel, FEATURE_LEVEL))


def _version() -> str:
    import opensmile

    return str(opensmile.__version__)


_WORKER: dict[str, Any] = {}


def _start_worker(feature_set: str) -> None:
    _WORKER["smile"] = _smile(feature_set)


def _extract_one(path: str) -> np.ndarray | str:
    """One clip's functionals in a worker process, or why it failed (openSMILE and audiofile raise many kinds)."""
    try:
        return np.asarray(_WORKER["smile"].process_file(path).to_numpy(), dtype=np.float32).reshape(-1)
    except Exception as error:  # noqa: BLE001 - the clip is reported and skipped
        return str(error)


def _key(path: Path) -> tuple[str, int]:
    """Cache key of a clip: its absolute path and its size (a rewritten file is extracted again)."""
    resolved = path.resolve()
    return str(resolved), resolved.stat().st_size


def extract_corpus(corpus: str, paths: Sequence[Path], cache_dir: Path,
                   log: Callable[[str], None] = lambda _: None,
                   feature_set: str = FEATURE_SET) -> tuple[np.ndarray, list[str]]:
    """Functionals of `feature_set` (eGeMAPS: [len(paths), 88]) of one corpus's clips (NaN rows: failed), and the
    failures.

    Clips already in `cache_dir / f"{corpus}.npz"` (another feature set: `{corpus}-{feature_set}.npz`; same
    path, size, openSMILE version and feature set) are read from it; the others are extracted and added to it.
    """
    from zoo.storage import atomic_write_bytes

    suffix = "" if feature_set == FEATURE_SET else f"-{feature_set}"
    cache_file = Path(cache_dir) / f"{corpus}{suffix}.npz"
    cached: dict[tuple[str, int], np.ndarray] = {}
    stamp = f"opensmile {_version()} {feature_set} {FEATURE_LEVEL}"
    if cache_file.exists():
        with np.load(cache_file, allow_pickle=False) as stored:
            if str(stored["stamp"]) == stamp:
                cached = {(str(p), int(s)): row for p, s, row in zip(stored["paths"], stored["sizes"],
                                                                     stored["features"], strict=True)}
    features: list[np.ndarray | None] = []
    failures: list[str] = []
    missing = []
    for index, path in enumerate(paths):
        try:
            key = _key(path)
        except OSError as error:
            features.append(None)
            failures.append(f"{path}: {error}")
            continue
        features.append(cached.get(key))
        if key not in cached:
            missing.append((index, key))
    if missing:
        _smile(feature_set)  # a clear error here when openSMILE is missing, not in a worker
        started = time.perf_counter()
        log(f"{corpus}: extracting {feature_set} from {len(missing)} clips ({len(paths) - len(missing)} cached)")
        workers = max(1, min(len(os.sched_getaffinity(0)), len(missing) // 8 or 1))
        with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(feature_set,)) as pool:
            outcomes = pool.map(_extract_one, [key[0] for _, key in missing], chunksize=8)
            for done, ((index, key), outcome) in enumerate(zip(missing, outcomes, strict=True), 1):
                if isinstance(outcome, str):
                    failures.append(f"{paths[index]}: {outcome}")
                    continue
                row = outcome
                features[index] = row
                cached[key] = row
                if done % 250 == 0 or done == len(missing):
                    log(f"{corpus}: {done}/{len(missing)} ({time.perf_counter() - started:.0f} s)")
        keys = list(cached)
        buffer = io.BytesIO()
        np.savez(buffer, stamp=np.array(stamp), paths=np.array([k[0] for k in keys]),
                 sizes=np.array([k[1] for k in keys], dtype=np.int64),
                 features=np.stack([cached[k] for k in keys]).astype(np.float32))
        atomic_write_bytes(cache_file, buffer.getvalue())
    width = next((len(f) for f in features if f is not None), 88)
    matrix = np.full((len(paths), width), np.nan, dtype=np.float32)
    for index, row in enumerate(features):
        if row is not None:
            matrix[index] = row
    return matrix, failures


def speaker_zscore(features: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """Each feature z-scored over each speaker's clips (a constant feature of a speaker becomes 0)."""
    result = np.empty_like(features, dtype=np.float64)
    keys = np.array(speakers)
    for speaker in np.unique(keys):
        rows = keys == speaker
        block = features[rows].astype(np.float64)
        std = block.std(axis=0)
        result[rows] = (block - block.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)
    return result


def classifiers() -> dict[str, tuple[dict[str, Any], Callable[[], Any]]]:
    """name -> (params, factory) of the peer pipelines (StandardScaler + classifier)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    base = {"features": f"{FEATURE_SET} {FEATURE_LEVEL.lower()}", "C": 1.0, "class_weight": "balanced"}
    return {
        "egemaps-svc": ({**base, "kernel": "rbf"}, lambda: make_pipeline(
            StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"))),
        "egemaps-linearsvc": ({**base, "kernel": "linear"}, lambda: make_pipeline(
            StandardScaler(), LinearSVC(C=1.0, class_weight="balanced", max_iter=10_000, random_state=0))),
        "egemaps-logreg": (base, lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2_000))),
    }


def class_probabilities(model: Any, features: np.ndarray) -> np.ndarray:
    """[n, 6] probabilities: predict_proba where the classifier has it, else the softmax of its margins (SVMs:
    not calibrated); a class never seen in training gets 0."""
    from zoo.labels import LABELS

    if hasattr(model, "predict_proba"):
        partial = model.predict_proba(features)
    else:
        margins = np.atleast_2d(model.decision_function(features))
        margins = np.exp(margins - margins.max(axis=1, keepdims=True))
        partial = margins / margins.sum(axis=1, keepdims=True)
    probabilities = np.zeros((len(features), len(LABELS)))
    probabilities[:, model.classes_] = partial
    return probabilities


def pick(labels: np.ndarray, corpora: Sequence[str], limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most `limit` clips per corpus, spread evenly over its labels (all clips without a limit)."""
    if limit is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    names = np.array(corpora)
    for corpus in sorted(set(corpora)):
        members = np.flatnonzero(names == corpus)
        by_label = [list(rng.permutation(members[labels[members] == label])) for label in np.unique(labels[members])]
        taken: list[int] = []
        while len(taken) < min(limit, len(members)):
            for group in by_label:
                if group and len(taken) < limit:
                    taken.append(int(group.pop()))
        chosen += taken
    return np.sort(np.array(chosen, dtype=np.int64))


def run(data: Sequence[str], cache_dir: Path = DEFAULT_CACHE, normalize: str = "none", limit: int | None = None,
        models: Sequence[str] | None = None, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The leave-one-corpus-out document (the shape of `emozoo cv --leave-one-corpus-out --json-out`)."""
    from zoo import datasets
    from zoo.evaluation import CorpusTransferResult
    from zoo.metrics import brier_score, expected_calibration_error, scores

    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_MODES)}, not {normalize!r}")
    dataset = datasets.load_all(data)
    items = [item for item in dataset.items if item.problem is None]
    corpora = [item.corpus for item in items]
    names = sorted({c for c in corpora if c is not None})
    if any(c is None for c in corpora) or len(names) < 2:
        raise ValueError("leave-one-corpus-out needs at least two corpora (repeat --data), every clip from one")
    labels = np.array([item.label for item in items], dtype=np.int64)
    keep = pick(labels, corpora, limit)
    items, labels = [items[i] for i in keep], labels[keep]
    corpora = [item.corpus for item in items]
    if normalize == "speaker" and any(item.speaker is None for item in items):
        raise ValueError("--normalize speaker needs a speaker id for every clip")
    log(f"data: {len(items)} clips from {', '.join(names)}")

    features = np.empty((len(items), 0))
    failures: list[str] = []
    cache_dir = Path(cache_dir)
    for name in names:
        rows = np.flatnonzero(np.array(corpora) == name)
        block, failed = extract_corpus(name, [items[i].path for i in rows], cache_dir, log)
        if features.shape[1] == 0:
            features = np.full((len(items), block.shape[1]), np.nan)
        features[rows] = block
        failures += failed
    usable = np.isfinite(features).all(axis=1)
    if not usable.all():
        log(f"skipped {int((~usable).sum())} clip(s) without features")
    items, labels, features = [i for i, ok in zip(items, usable, strict=True) if ok], labels[usable], features[usable]
    corpora = np.array([item.corpus for item in items])
    if normalize == "speaker":
        features = speaker_zscore(features, [str(item.speaker) for item in items])

    results = []
    for model_name, (params, factory) in classifiers().items():
        if models and model_name not in models:
            continue
        started = time.perf_counter()
        result = CorpusTransferResult(model_name, dict(params), normalize)
        for name in names:
            test = corpora == name
            model = factory().fit(features[~test], labels[~test])
            probabilities = class_probabilities(model, features[test])
            row = scores(labels[test], model.predict(features[test]))
            # CorpusTransferResult.summary reports calibration too (issue 16)
            row["ece"] = expected_calibration_error(labels[test], probabilities)
            row["brier"] = brier_score(labels[test], probabilities)
            row["train_corpora"] = [n for n in names if n != name]
            result.held_out[name] = row
            log(f"{model_name}: held out {name} ({row['n']} clips): accuracy {row['accuracy']:.3f}  "
                f"UAR {row['uar']:.3f}  macro-F1 {row['macro_f1']:.3f}")
        result.seconds = time.perf_counter() - started
        results.append({**result.summary(), "held_out": result.held_out})
    return {"data": names, "protocol": "leave-one-corpus-out", "normalize": normalize,
            "normalize_level": "features" if normalize != "none" else None,
            "peer": f"openSMILE {_version()} {FEATURE_SET} {FEATURE_LEVEL}", "limit_per_corpus": limit,
            "failures": failures, "results": results}


def print_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    corpora = document["data"]
    table = Table("model", "params", *(f"{c} UAR" for c in corpora), "mean acc.", "mean UAR", "mean F1", "min UAR",
                  "seconds", title="openSMILE eGeMAPS peer, leave-one-corpus-out (train on the others, test on the "
                  "named corpus)" + (f", normalize={document['normalize']} (features)"
                                     if document["normalize"] != "none" else ""))
    for result in document["results"]:
        params = {k: v for k, v in result["params"].items() if k != "features"}
        table.add_row(result["model"], ", ".join(f"{k}={v}" for k, v in params.items()),
                      *(f"{result['per_corpus'][c]['uar']:.3f}" for c in corpora),
                      f"{result['accuracy']:.3f}", f"{result['uar']:.3f}", f"{result['macro_f1']:.3f}",
                      f"{result['min_uar']:.3f}", f"{result['seconds']:.0f}")
    Console(width=160).print(table)


@click.command("opensmile-peer")
@click.option("--data", "data", required=True, multiple=True, help="A labelled corpus (repeat: two or more).")
@click.option("--normalize", type=click.Choice(NORMALIZE_MODES), default="none", show_default=True,
              help="speaker: z-score the eGeMAPS features over each speaker's clips before training and testing.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=str(DEFAULT_CACHE),
              show_default=True, help="Folder of the per-corpus feature caches (.npz).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many clips per corpus (spread over labels).")
@click.option("--model", "models", multiple=True, type=click.Choice(["egemaps-svc", "egemaps-linearsvc",
                                                                     "egemaps-logreg"]),
              help="Only these classifiers [default: all three].")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results to this JSON file.")
def main(data: tuple[str, ...], normalize: str, cache_dir: str, limit: int | None, models: tuple[str, ...],
         json_out: str | None) -> None:
    """openSMILE eGeMAPS + SVM, leave-one-corpus-out over the --data corpora (research-only licence)."""
    from zoo.storage import atomic_write_json

    if len(data) < 2:
        raise click.UsageError("leave-one-corpus-out needs two or more --data corpora")
    try:
        document = run(data, Path(cache_dir), normalize, limit, models or None,
                       log=lambda line: click.echo(line, err=True))
    except (EmozooError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if document["failures"]:
        click.echo(f"skipped {len(document['failures'])} clip(s): " + "; ".join(document["failures"][:5]), err=True)
    print_table(document)
    if json_out:
        atomic_write_json(json_out, document)
        click.echo(f"wrote {json_out}", err=True)


if __name__ == "__main__":
    main()
