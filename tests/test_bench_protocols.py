"""`emozoo bench --protocol speakers|corpora` on small real corpora, and their leaderboard page in Chromium."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import folds
from benchmarks.leaderboard import build
from tests.conftest import require_corpus
from tests.test_leaderboard import dump_dom
from zoo import datasets
from zoo.cli.main import cli

LOGREG = ["--param", "librosa-logreg:augment=none"]


def small_corpus(root: Path, name: str, speakers: int, per_class: int) -> Path:
    """A manifest of the first `speakers` speakers of a corpus, `per_class` clips of each class each (absolute
    paths into the real corpus: nothing is copied)."""
    source = require_corpus(name)
    rows = list(csv.DictReader((source / "manifest.csv").read_text().splitlines()))
    chosen_speakers = sorted({r["speaker"] for r in rows})[:speakers]
    kept, taken = [], {}
    for row in rows:
        key = (row["speaker"], row["label"])
        if row["speaker"] in chosen_speakers and taken.get(key, 0) < per_class:
            taken[key] = taken.get(key, 0) + 1
            kept.append(f"{source / row['path']},{row['label']},{row['speaker']}")
    folder = root / name
    folder.mkdir()
    (folder / "manifest.csv").write_text("path,label,speaker\n" + "\n".join(kept) + "\n")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("protocols")
    fold_dir = root / "folds"
    fold_dir.mkdir()
    emodb = small_corpus(root, "emodb", 6, 3)
    (fold_dir / "emodb.csv").write_text(folds.make_folds(datasets.load(emodb), 3))
    speakers = root / "speakers.json"
    outcome = CliRunner().invoke(cli, ["bench", "chance", "librosa-logreg", "--protocol", "speakers", "--data",
                                       str(emodb), "--folds-dir", str(fold_dir), "--resamples", "200", *LOGREG,
                                       "--out", str(speakers)])
    assert outcome.exit_code == 0, outcome.output
    others = [small_corpus(root, name, 2, 2) for name in ("ravdess", "nemo")]
    corpora = root / "corpora.json"
    outcome = CliRunner().invoke(cli, ["bench", "chance", "librosa-logreg", "--protocol", "corpora", "--data",
                                       str(emodb), *(a for o in others for a in ("--data", str(o))), "--resamples",
                                       "200", *LOGREG, "--note", "chance=a note", "--out", str(corpora)])
    assert outcome.exit_code == 0, outcome.output
    return {"speakers": speakers, "corpora": corpora, "root": root}


def test_speakers_protocol_scores_every_clip_once_with_intervals_and_calibration(runs: dict[str, Path]) -> None:
    document = json.loads(runs["speakers"].read_text())
    models = {m["model"]: m for m in document["models"]}
    assert set(models) == {"chance", "librosa-logreg augment=none"}
    assert models["chance"]["reference"] and not models["librosa-logreg augment=none"]["reference"]
    assert document["settings"]["data"]["emodb"]["folds"] == 3
    for model in models.values():
        (cell,) = model["cells"]
        assert cell["test"] == "emodb" and cell["n"] == document["settings"]["data"]["emodb"]["clips"]
        assert cell["speakers"] == 6
        for metric in ("accuracy", "uar", "macro_f1"):
            assert cell["intervals"][metric]["low"] <= cell[metric] <= cell["intervals"][metric]["high"]
        assert 0 <= cell["ece"] <= 1 and 0 <= cell["brier"] <= 2 and cell["reliability"]
    assert models["chance"]["mean"]["uar"] == pytest.approx(1 / 6)
    assert models["librosa-logreg augment=none"]["mean"]["uar"] > 0.35  # unseen speakers, well above chance


def test_corpora_protocol_fills_the_train_by_test_matrix(runs: dict[str, Path]) -> None:
    document = json.loads(runs["corpora"].read_text())
    model = next(m for m in document["models"] if m["model"] == "librosa-logreg augment=none")
    cells = {(c["train"], c["test"]) for c in model["cells"]}
    names = ("emodb", "nemo", "ravdess")
    assert cells == {(a, b) for a in names for b in names if a != b} | {("all others", n) for n in names}
    assert sorted(model["mean"]["corpora"]) == list(names)
    assert next(m for m in document["models"] if m["model"] == "chance")["note"] == "a note"


def test_a_fold_file_that_disagrees_is_refused_before_training(runs: dict[str, Path]) -> None:
    fold_dir = runs["root"] / "folds"
    outcome = CliRunner().invoke(cli, ["bench", "librosa-logreg", "--protocol", "speakers", "--data",
                                       str(require_corpus("emodb")), "--folds-dir", str(fold_dir), "--out",
                                       str(runs["root"] / "no.json")])
    assert outcome.exit_code != 0
    assert "disagree" in outcome.output and "emodb.csv" in outcome.output


def test_leaderboard_page_has_corpus_filters_heat_map_and_reliability(runs: dict[str, Path], tmp_path: Path) -> None:
    made = build([runs["speakers"], runs["corpora"]], tmp_path / "site", tmp_path / "LEADERBOARD.md")
    markdown = made.markdown.read_text()
    assert "## Unseen speakers" in markdown and "## Unseen corpora" in markdown
    assert "chance (reference)" in markdown and "### Train corpus × test corpus" in markdown
    dom = dump_dom(made.html, "#corpus=nemo")
    corpora_section = re.search(r'<section class="protocol" id="protocol-corpora".*?</section>', dom, re.S).group(0)
    shown = re.findall(r'<tr data-corpus="([^"]+)"[^>]*>', corpora_section)
    hidden = re.findall(r'<tr data-corpus="([^"]+)"[^>]*hidden[^>]*>', corpora_section)
    assert set(shown) >= {"mean", "nemo", "emodb"}
    assert set(shown) - set(hidden) == {"nemo"}  # the filter shows the chosen corpus only
    heat = re.findall(r'<td class="heat" style="[^"]+"[^>]*data-train="([^"]+)" '
                      r'data-test="([^"]+)">([0-9.–]+)</td>', dom)
    diagonal = [v for train, test, v in heat if train == test == "emodb"]
    assert diagonal and diagonal[0] != "–"  # filled from the speakers protocol of the same model
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-images-broken="0"' in body
    assert "reliability-speakers.png" in dom and "reliability-corpora.png" in dom
