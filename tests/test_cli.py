"""The emozoo command line end to end, on the competition layout and real corpora."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.metrics import scores
from zoo.predictions import read_predictions


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
    # no augmented copies: what these tests check is the command line, and the cost of augmentation is paid once
    # in the suite, by tests/test_classic.py
    result = emozoo("train", "librosa-svc", "--data", dacon_dir / "train.csv", "--out", out, "--param", "augment=none")
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

    # the other formats in this process (a new interpreter per command costs seconds of imports)
    from click.testing import CliRunner

    from zoo.cli.main import cli

    table = CliRunner().invoke(cli, ["predict", str(dacon_model), str(clips / "TEST_0000.wav")])
    assert table.exit_code == 0 and "TEST_0000.wav" in table.stdout and rows[0]["label"] in table.stdout
    as_csv = CliRunner().invoke(cli, ["predict", str(dacon_model), str(clips / "TEST_0000.wav"), "--format", "csv"])
    assert as_csv.exit_code == 0
    assert as_csv.stdout.splitlines()[0].startswith("id,path,true,label,label_id,confidence,p_angry")


def test_cross_validation_command_prints_speaker_grouped_scores(emodb_dir: Path, tmp_path: Path) -> None:
    out, predictions = tmp_path / "cv.json", tmp_path / "predictions.csv"
    result = emozoo("cv", "librosa-logreg", "--data", emodb_dir, "--folds", "3", "--param", "augment=none",
                    "--param", "calibrate=none", "--json-out", out, "--predictions-out", predictions)
    assert "speaker-grouped" in result.stdout and "librosa-logreg" in result.stdout
    summary = json.loads(out.read_text())["results"][0]
    assert summary["accuracy"] > 0.4  # chance is about 0.17 on six classes
    for fold in summary["fold_results"]:
        assert fold["test_speakers"]
    all_test = [s for fold in summary["fold_results"] for s in fold["test_speakers"]]
    assert len(all_test) == len(set(all_test)) == 10
    # every clip's held-out probabilities, read back: they give the reported scores again, fold by fold
    (run,) = read_predictions(predictions)
    assert run.model == "librosa-logreg" and run.protocol == "speaker-kfold" and len(run.items) == summary_n(summary)
    np.testing.assert_allclose(run.probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert scores(run.labels, run.probabilities.argmax(axis=1))["uar"] == pytest.approx(summary["uar"], abs=1e-9)
    for number, fold in enumerate(summary["fold_results"], start=1):
        speakers = {item.speaker for item, split in zip(run.items, run.splits, strict=True) if split == str(number)}
        assert sorted(speakers) == fold["test_speakers"]


def summary_n(summary: dict) -> int:
    return sum(fold["n"] for fold in summary["fold_results"])


def test_evaluate_and_clear_errors(dacon_dir: Path, dacon_model: Path) -> None:
    result = emozoo("evaluate", dacon_model, "--data", dacon_dir / "test.csv", "--json")
    assert json.loads(result.stdout)["n"] == 120
    unknown = emozoo("train", "librosa-svm", "--data", dacon_dir, "--out", "x", check=False)
    assert unknown.returncode == 1 and "Did you mean: librosa-svc" in unknown.stderr
    not_model = emozoo("evaluate", dacon_dir, "--data", dacon_dir, check=False)
    assert "manifest.json is missing" in not_model.stderr and "Traceback" not in not_model.stderr


def test_train_reports_on_the_first_process_of_a_multi_process_launch_only(dacon_dir: Path, tmp_path: Path) -> None:
    """Under torchrun / accelerate launch every process runs the command; one line of result, not N."""
    command = [sys.executable, "-m", "zoo.cli", "train", "librosa-logreg", "--data", str(dacon_dir / "train.csv"),
               "--param", "augment=none"]
    for rank, expect_report in (("1", False), ("0", True)):
        result = subprocess.run([*command, "--out", str(tmp_path / f"rank{rank}")], capture_output=True, text=True,
                                env={**os.environ, "RANK": rank, "WORLD_SIZE": "2"})
        assert result.returncode == 0, result.stderr
        assert ('"saved"' in result.stdout) is expect_report, result.stdout


# -- issue 18: bad listings, long and out-of-range audio, interrupts, progress ------------------------------------
def bad_listing(dacon_dir: Path, folder: Path) -> Path:
    """A test.csv with a row lacking its path, a blank path and an unclosed quote among good rows."""
    test = dacon_dir / "test"
    listing = folder / "test.csv"
    listing.write_text(
        "id,path\n"
        f"TEST_0000,{test / 'TEST_0000.wav'}\n"
        "TEST_0001\n"
        "TEST_0002,\n"
        f"TEST_0003,{test / 'TEST_0003.wav'}\n"
        f'TEST_0004,"{test / "TEST_0004.wav"}\n'
        f"TEST_0005,{test / 'TEST_0005.wav'}\n"
    )
    return listing


def test_malformed_csv_rows_are_one_clear_line_in_every_command(dacon_dir: Path, tmp_path: Path) -> None:
    from zoo.bundled import default_model_path

    listing = bad_listing(dacon_dir, tmp_path)
    first_problem = f"error: {listing}: line 3 (id TEST_0001): no path value (the row has 1 of the 2 fields)"
    for command in (["predict", listing], ["evaluate", default_model_path(), "--data", listing],
                    ["train", "librosa-logreg", "--data", listing, "--out", tmp_path / "model"]):
        result = emozoo(*command, check=False)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines()[-1] == first_problem, result.stderr
        assert "Traceback" not in result.stderr

    skipped = emozoo("predict", listing, "--on-error", "skip", "--format", "json")
    assert [row["id"] for row in json.loads(skipped.stdout)] == ["TEST_0000", "TEST_0003"]
    assert "skipped 3 bad" in skipped.stderr
    assert f"{listing}: line 4 (id TEST_0002): the path column is blank" in skipped.stderr
    assert f"{listing}: line 6 (id TEST_0004): malformed quoting" in skipped.stderr


def test_repeated_ids_in_a_competition_test_csv_are_an_error(dacon_dir: Path, tmp_path: Path) -> None:
    rows = [f"TEST_{i:04d},{dacon_dir / 'test' / f'TEST_{i:04d}.wav'}" for i in range(3)]
    rows.append(f"TEST_0002,{dacon_dir / 'test' / 'TEST_0007.wav'}")
    (tmp_path / "test.csv").write_text("id,path\n" + "\n".join(rows) + "\n")
    (tmp_path / "sample_submission.csv").write_text("id,label\nTEST_0000,0\nTEST_0001,0\nTEST_0002,0\n")
    result = emozoo("predict", tmp_path / "test.csv", "--format", "dacon", "-o", tmp_path / "sub.csv", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "repeated: TEST_0002 (lines 4, 5)" in result.stderr
    assert not (tmp_path / "sub.csv").exists()


def test_onnx_models_honour_max_duration_above_600_seconds(ravdess_dir: Path, tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    rows = list(csv.DictReader((ravdess_dir / "manifest.csv").open()))
    pieces, total = [], 0
    for row in rows:
        samples, rate = sf.read(ravdess_dir / row["path"], dtype="float32")
        pieces.append(samples)
        total += samples.size
        if total > 610 * rate:
            break
    long_clip = tmp_path / "long.wav"
    sf.write(long_clip, np.concatenate(pieces)[: 610 * rate], rate, subtype="PCM_16")

    refused = emozoo("predict", long_clip, check=False)  # the default limit: 600 s
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"error: {long_clip}: is 610 s long, over the 600 s limit "
                                      "(raise it with --max-duration)")
    allowed = emozoo("predict", long_clip, "--max-duration", "700", "--format", "json")
    assert json.loads(allowed.stdout)[0]["id"] == "long.wav"


def test_float_audio_far_outside_minus_one_to_one_is_refused_naming_the_file(tmp_path: Path) -> None:
    import soundfile as sf

    from zoo.bundled import demo_clips_dir

    samples, rate = sf.read(demo_clips_dir() / "angry.flac", dtype="float32")
    loud = tmp_path / "int16-as-float.wav"
    sf.write(loud, samples * (476 / abs(samples).max()), rate, subtype="FLOAT")
    shutil.copy(demo_clips_dir() / "sad.flac", tmp_path / "sad.flac")
    refused = emozoo("predict", loud, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith(f"error: {loud}: samples reach 476; float audio must lie within")
    skipped = emozoo("predict", tmp_path, "--on-error", "skip", "--format", "json")
    assert [row["id"] for row in json.loads(skipped.stdout)] == ["sad.flac"]
    assert f"{loud}: samples reach 476" in skipped.stderr


def test_skipping_every_input_exits_non_zero_with_the_report(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"not audio")
    (tmp_path / "b.wav").write_bytes(b"")
    result = emozoo("predict", tmp_path, "--on-error", "skip", "--format", "csv", check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert "skipped 2 bad file(s)" in result.stderr and "a.wav" in result.stderr and "b.wav" in result.stderr
    assert "none of the 2 input(s) could be read" in result.stderr


def test_ids_are_the_same_for_a_file_and_for_the_folder_holding_it() -> None:
    from zoo.bundled import demo_clips_dir

    alone = json.loads(emozoo("predict", demo_clips_dir() / "angry.flac", "--format", "json").stdout)
    listed = json.loads(emozoo("predict", demo_clips_dir(), "--format", "json").stdout)
    assert alone[0]["id"] == "angry.flac"
    assert sorted(row["id"] for row in listed) == sorted(f"{label}.flac" for label in
                                                        ("angry", "fear", "sad", "disgust", "neutral", "happy"))


def test_missing_input_is_reported_before_the_model_loads(dacon_model: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from zoo.cli.main import cli\n"
        f"result = CliRunner().invoke(cli, ['predict', {str(dacon_model)!r}, {str(tmp_path / 'nope.wav')!r}])\n"
        "print(result.exit_code, result.output.strip())\n"
        "print(sorted(m for m in ('torch', 'librosa', 'sklearn', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    outcome, heavy = result.stdout.strip().splitlines()
    assert outcome == f"1 error: {tmp_path / 'nope.wav'}: no such file or folder"
    assert heavy == "[]"


def ctrl_c_blocked_or_ignored_in_children(pid: int) -> dict[int, bool]:
    """Each child process of `pid` (from /proc) and whether SIGINT is blocked or ignored in it."""
    result = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                masks = [int(line.split()[1], 16) for line in (stat.parent / "status").read_text().splitlines()
                         if line.startswith(("SigBlk:", "SigIgn:"))]
                result[int(stat.parent.name)] = any(mask & (1 << (signal.SIGINT - 1)) for mask in masks)
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return result


def test_ctrl_c_exits_130_with_a_short_message(emodb_dir: Path, tmp_path: Path, ctrl_c_delivered: None) -> None:
    import time

    env = {k: v for k, v in os.environ.items() if k != "EMOZOO_QUIET"}  # progress lines tell when work is under way
    env["EMOZOO_CACHE_DIR"] = str(tmp_path / "cache")  # nothing cached: training takes a while
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "train", "librosa-svc", "--data", str(emodb_dir), "--out",
         str(tmp_path / "model")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )
    assert process.stderr is not None
    # interrupt once feature extraction is under way (a progress line): its worker processes have started
    for _ in range(60):
        if process.stderr.readline().startswith("features ("):
            break
    time.sleep(0.5)
    # Linux: the workers never see Ctrl-C (one reaching them mid-import made them print their own tracebacks);
    # the command gets it and stops them
    children = ctrl_c_blocked_or_ignored_in_children(process.pid) if Path("/proc/self/status").is_file() else None
    # what Ctrl-C in a terminal does: SIGINT to the whole foreground group. On a busy machine a single one was
    # once lost inside joblib's dispatching (the run finished with 0), so like a user we press again if needed
    for _ in range(3):
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 130, rest
    assert children is None or (children and all(children.values())), children
    # the message is ours; a library may still warn while its workers shut down (loky's resource tracker)
    assert "interrupted" in [line.strip() for line in rest.splitlines()] and "Traceback" not in rest


def test_cv_sweep_shows_progress_in_a_log(emodb_dir: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader((emodb_dir / "manifest.csv").open()))
    chosen: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if len(chosen.setdefault(row["speaker"], [])) < 4:
            chosen[row["speaker"]].append(row)
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"])
        writer.writerows([emodb_dir / r["path"], r["label"], r["speaker"]] for group in chosen.values() for r in group)
    env = {k: v for k, v in os.environ.items() if k != "EMOZOO_QUIET"} | {"EMOZOO_CACHE_DIR": str(tmp_path / "c")}
    result = subprocess.run([sys.executable, "-m", "zoo.cli", "cv", "librosa-logreg", "--data", str(manifest),
                             "--folds", "2", "--sweep", "C=0.01,1"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    # a pipe, not a terminal: one line per tenth
    assert re.search(r"^features \([\w-]+\): 20/20 \(100%", result.stderr, re.MULTILINE), lines
    for run in ("cv librosa-logreg:", "cv librosa-logreg C=1:"):  # C=0.01 is the default, so not named
        assert [line for line in lines if line.startswith(f"{run} fold ")][-1].startswith(f"{run} fold 2/2 done")
