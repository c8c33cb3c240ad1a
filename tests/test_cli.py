"""The emozoo command line end to end, on the competition layout and real corpora."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def emozoo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], capture_output=True, text=True,
                            env=dict(os.environ))
    if check:
        assert result.returncode == 0, f"emozoo {' '.join(map(str, args))} failed:\n{result.stderr}"
    return result


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def dacon_model(dacon_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dacon") / "svc"
    result = emozoo("train", "librosa-svc", "--data", dacon_dir / "train.csv", "--out", out)
    assert json.loads(result.stdout)["clips"] == 320
    return out


def test_dacon_submission_has_the_sample_layout_and_beats_chance(dacon_dir: Path, dacon_model: Path,
                                                                tmp_path: Path) -> None:
    submission = tmp_path / "submission.csv"
    emozoo("predict", dacon_model, dacon_dir / "test.csv", "--format", "dacon", "-o", submission)
    rows = read_rows(submission)
    sample = read_rows(dacon_dir / "sample_submission.csv")
    assert rows[0] == sample[0] == ["id", "label"]
    assert [r[0] for r in rows] == [r[0] for r in sample]
    answers = {r[0]: r[1] for r in read_rows(dacon_dir / "test_answers.csv")[1:]}
    accuracy = sum(answers[i] == label for i, label in rows[1:]) / len(answers)
    assert accuracy > 1 / 6 + 0.15, f"accuracy {accuracy:.3f}"


def test_predict_formats_and_skipping_bad_files(dacon_dir: Path, dacon_model: Path, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("TEST_0000.wav", "TEST_0001.wav"):
        shutil.copy(dacon_dir / "test" / name, clips / name)
    (clips / "broken.wav").write_bytes(b"not audio at all")

    failed = emozoo("predict", dacon_model, clips, check=False)
    assert failed.returncode == 1
    assert "broken.wav" in failed.stderr and "Traceback" not in failed.stderr

    skipped = emozoo("predict", dacon_model, clips, "--format", "json", "--on-error", "skip")
    rows = json.loads(skipped.stdout)
    assert [row["id"] for row in rows] == ["TEST_0000.wav", "TEST_0001.wav"]
    assert "skipped 1 bad file" in skipped.stderr and "broken.wav" in skipped.stderr
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-6

    table = emozoo("predict", dacon_model, clips / "TEST_0000.wav").stdout
    assert "TEST_0000.wav" in table and rows[0]["label"] in table
    as_csv = emozoo("predict", dacon_model, clips / "TEST_0000.wav", "--format", "csv").stdout.splitlines()
    assert as_csv[0].startswith("id,path,true,label,label_id,confidence,p_angry")


def test_cross_validation_command_prints_speaker_grouped_scores(emodb_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv.json"
    result = emozoo("cv", "librosa-logreg", "--data", emodb_dir, "--folds", "3", "--json-out", out)
    assert "speaker-grouped" in result.stdout and "librosa-logreg" in result.stdout
    summary = json.loads(out.read_text())["results"][0]
    assert summary["accuracy"] > 0.4  # chance is about 0.17 on six classes
    for fold in summary["fold_results"]:
        assert fold["test_speakers"]
    all_test = [s for fold in summary["fold_results"] for s in fold["test_speakers"]]
    assert len(all_test) == len(set(all_test)) == 10


def test_evaluate_and_clear_errors(dacon_dir: Path, dacon_model: Path) -> None:
    result = emozoo("evaluate", dacon_model, "--data", dacon_dir / "test.csv", "--json")
    assert json.loads(result.stdout)["n"] == 120
    unknown = emozoo("train", "librosa-svm", "--data", dacon_dir, "--out", "x", check=False)
    assert unknown.returncode == 1 and "Did you mean: librosa-svc" in unknown.stderr
    not_model = emozoo("evaluate", dacon_dir, "--data", dacon_dir, check=False)
    assert "manifest.json is missing" in not_model.stderr and "Traceback" not in not_model.stderr


def test_train_reports_on_the_first_process_of_a_multi_process_launch_only(dacon_dir: Path, tmp_path: Path) -> None:
    """Under torchrun / accelerate launch every process runs the command; one line of result, not N."""
    command = [sys.executable, "-m", "zoo.cli", "train", "librosa-logreg", "--data", str(dacon_dir / "train.csv")]
    for rank, expect_report in (("1", False), ("0", True)):
        result = subprocess.run([*command, "--out", str(tmp_path / f"rank{rank}")], capture_output=True, text=True,
                                env={**os.environ, "RANK": rank, "WORLD_SIZE": "2"})
        assert result.returncode == 0, result.stderr
        assert ('"saved"' in result.stdout) is expect_report, result.stdout
