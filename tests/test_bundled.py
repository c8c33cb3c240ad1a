"""The bundled default model: matches its model card, and is what `predict` uses when no model is given."""

from __future__ import annotations

import csv
import json

import onnx
from click.testing import CliRunner

from zoo.bundled import default_model_path, demo_clips_dir
from zoo.cli.main import cli
from zoo.labels import LABELS


def test_bundled_model_matches_its_card() -> None:
    path = default_model_path()
    card = json.loads(path.with_name("model_card.json").read_text())
    metadata = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert metadata["training_data_fingerprint"] == card["training_data_fingerprint"]
    assert card["size_bytes"] == path.stat().st_size
    assert path.stat().st_size < 20e6


def test_predict_without_model_uses_the_bundled_one() -> None:
    clip = demo_clips_dir() / "angry.flac"
    result = CliRunner().invoke(cli, ["predict", str(clip), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and rows[0]["label"] in LABELS
    explicit = CliRunner().invoke(cli, ["predict", str(default_model_path()), str(clip), "--format", "json"])
    assert json.loads(explicit.stdout)[0]["probabilities"] == rows[0]["probabilities"]


def test_demo_clips_are_labelled_better_than_chance() -> None:
    result = CliRunner().invoke(cli, ["predict", str(demo_clips_dir() / "manifest.csv"), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    truth = {r["path"]: r["label"] for r in csv.DictReader((demo_clips_dir() / "manifest.csv").open())}
    assert len(rows) == len(truth) == 6
    correct = sum(row["label"] == row["true"] for row in rows)
    assert correct >= 3, rows
