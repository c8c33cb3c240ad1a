"""The committed speaker folds (benchmarks/folds/*.csv) and the bootstrap over speakers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bootstrap, folds
from tests.conftest import require_corpus
from zoo import datasets
from zoo.errors import DatasetError
from zoo.metrics import scores

CORPORA = ("emodb", "ravdess", "nemo")


@pytest.mark.parametrize("corpus", CORPORA)
def test_fold_files_are_speaker_disjoint_and_cover_every_clip_once(corpus: str) -> None:
    dataset = datasets.load(require_corpus(corpus))
    assignment, fold_of = folds.folds_for(dataset)  # refuses any clip missing, extra or relabelled
    assert sorted(assignment.folds) == sorted(item.id for item in dataset.items)  # each clip once
    assert len(set(assignment.folds)) == len(dataset.items)
    speaker_folds: dict[str, set[int]] = {}
    for item, fold in zip(dataset.items, fold_of, strict=True):
        speaker_folds.setdefault(str(item.speaker), set()).add(int(fold))
    assert all(len(f) == 1 for f in speaker_folds.values())  # no speaker in two folds
    per_fold = np.bincount([next(iter(f)) for f in speaker_folds.values()])
    assert len(per_fold) == folds.DEFAULT_FOLDS and per_fold.max() - per_fold.min() <= 1  # balanced by speakers


@pytest.mark.parametrize("corpus", CORPORA)
def test_committed_file_is_what_the_generator_writes(corpus: str) -> None:
    dataset = datasets.load(require_corpus(corpus))
    assert folds.make_folds(dataset) == folds.fold_file(corpus).read_text(encoding="utf-8")


def test_a_manifest_that_disagrees_with_its_fold_file_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "emodb"
    source = require_corpus("emodb")
    corpus.mkdir()
    lines = (source / "manifest.csv").read_text().splitlines()
    (corpus / "manifest.csv").write_text("\n".join(lines[:-1]) + "\n")  # one clip fewer
    for line in lines[1:4]:
        shutil.copy(source / line.split(",")[0], corpus)
    with pytest.raises(DatasetError, match=r"emodb/manifest.csv and .*emodb.csv disagree: .* not in the manifest"):
        folds.folds_for(datasets.load(corpus))


def test_a_speaker_in_two_folds_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("path,speaker,label,fold\na.wav,s1,angry,0\nb.wav,s1,sad,1\n")
    with pytest.raises(DatasetError, match=r"x.csv: line 3: speaker s1 is in folds 0 and 1"):
        folds.read_folds(bad)


def predictions(speakers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """30 clips per speaker; each speaker's own accuracy varies (some speakers are easy, some hard)."""
    rng = np.random.default_rng(seed)
    true, predicted, who = [], [], []
    for speaker in range(speakers):
        labels = np.arange(30) % 6
        right = rng.random(30) < rng.uniform(0.3, 0.9)
        true.append(labels)
        predicted.append(np.where(right, labels, (labels + 1) % 6))
        who += [f"s{speaker}"] * 30
    return np.concatenate(true), np.concatenate(predicted), who


def test_interval_contains_the_point_estimate() -> None:
    true, predicted, who = predictions(8)
    point = scores(true, predicted)
    intervals = bootstrap.speaker_intervals(true, predicted, who)
    for metric in bootstrap.METRICS:
        assert intervals[metric]["low"] < point[metric] < intervals[metric]["high"]


def test_bootstrap_metrics_match_zoo_metrics() -> None:
    true, predicted, _ = predictions(3)
    confusion = np.asarray(scores(true, predicted)["confusion"], dtype=float)
    again = bootstrap.metrics_of_confusions(confusion)
    for metric in bootstrap.METRICS:
        assert again[metric] == pytest.approx(scores(true, predicted)[metric])


def test_interval_shrinks_with_more_speakers() -> None:
    widths = []
    for speakers in (5, 20, 80):
        intervals = bootstrap.speaker_intervals(*predictions(speakers))
        widths.append(intervals["uar"]["high"] - intervals["uar"]["low"])
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 2.5  # about 1 / sqrt(speakers)


def test_interval_is_seeded() -> None:
    true, predicted, who = predictions(6)
    assert bootstrap.speaker_intervals(true, predicted, who, seed=3) == bootstrap.speaker_intervals(
        true, predicted, who, seed=3)
