"""`--min-confidence`: below it `emozoo predict` and `emozoo serve` answer 'uncertain', probabilities still given."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.serve_support import live_server
from zoo.bundled import default_model_path, demo_clips_dir
from zoo.calibration import UNCERTAIN
from zoo.cli.main import cli
from zoo.labels import LABELS
from zoo.serve import ServeSettings, load_models


def predict(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["predict", str(default_model_path()), *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def demo_rows() -> list[dict]:
    code, output = predict(str(demo_clips_dir()), "--format", "json")
    assert code == 0, output
    return json.loads(output)


def between(rows: list[dict]) -> float:
    """A threshold with some demo clips above it and some below."""
    confidences = sorted(row["confidence"] for row in rows)
    assert confidences[0] < confidences[-1]
    return (confidences[0] + confidences[-1]) / 2


def test_predict_json_and_csv_mark_low_confidence_clips_uncertain(demo_rows: list[dict]) -> None:
    threshold = between(demo_rows)
    code, output = predict(str(demo_clips_dir()), "--format", "json", "--min-confidence", str(threshold))
    assert code == 0, output
    rows = json.loads(output)
    assert [r["probabilities"] for r in rows] == [r["probabilities"] for r in demo_rows]
    for row, plain in zip(rows, demo_rows, strict=True):
        assert row["confidence"] == plain["confidence"]
        if plain["confidence"] < threshold:
            assert (row["label"], row["label_id"]) == (UNCERTAIN, None)
        else:
            assert (row["label"], row["label_id"]) == (plain["label"], plain["label_id"])
    assert {r["label"] for r in rows} & {UNCERTAIN} and set(LABELS) & {r["label"] for r in rows}

    code, output = predict(str(demo_clips_dir()), "--format", "csv", "--min-confidence", str(threshold))
    assert code == 0, output
    table = list(csv.DictReader(io.StringIO(output)))
    uncertain = [r for r in table if r["label"] == UNCERTAIN]
    assert uncertain and all(r["label_id"] == "" and float(r["p_angry"]) >= 0 for r in uncertain)
    assert len(uncertain) == sum(r["confidence"] < threshold for r in demo_rows)


def test_predict_table_counts_uncertain_clips(demo_rows: list[dict]) -> None:
    code, output = predict(str(demo_clips_dir()), "--min-confidence", "1")
    assert code == 0, output
    assert "0/6 correct, 6 uncertain" in output


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_predict_refuses_a_threshold_outside_zero_one(value: str) -> None:
    code, output = predict(str(demo_clips_dir()), "--min-confidence", value)
    assert code == 2
    assert "--min-confidence" in output


def test_predict_refuses_min_confidence_for_a_competition_submission() -> None:
    code, output = predict(str(demo_clips_dir()), "--format", "dacon", "--min-confidence", "0.5")
    assert code == 2
    assert "a competition submission needs one of the six labels" in output


def test_serve_answers_uncertain_below_the_threshold(demo_rows: list[dict]) -> None:
    models = load_models([str(default_model_path())])
    clip = min(demo_rows, key=lambda row: row["confidence"])
    audio = Path(clip["path"]).read_bytes()
    settings = ServeSettings(min_confidence=clip["confidence"] + 0.01)
    with live_server(models, settings) as url, httpx.Client(base_url=url, timeout=60) as session:
        answer = session.post("/v1/predict", files={"file": ("clip.flac", audio)})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["label"], body["label_id"]) == (UNCERTAIN, None)
        assert body["confidence"] < settings.min_confidence
        assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        # a request may lower the server's threshold, and 0 never answers uncertain
        answer = session.post("/v1/predict", params={"min_confidence": 0}, files={"file": ("clip.flac", audio)})
        assert answer.json()["label"] in LABELS
        assert answer.json()["probabilities"] == body["probabilities"]
        refused = session.post("/v1/predict", params={"min_confidence": 2}, files={"file": ("clip.flac", audio)})
        assert refused.status_code == 422
        assert "min_confidence" in refused.json()["detail"]
