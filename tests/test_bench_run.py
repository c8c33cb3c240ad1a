"""`emozoo bench` end to end on real EmoDB clips: training, held-out accuracy, native and ONNX timing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks.bench import BenchSettings, run_bench
from benchmarks.results import load
from benchmarks.subjects import Split
from benchmarks.timing import TimingConfig
from zoo import datasets
from zoo.cli.main import cli

CLIPS_PER_SPEAKER = 6
FAST = ["--warmup", "1", "--min-iterations", "3", "--min-seconds", "0", "--offline-iterations", "1",
        "--batch-size", "4"]


@pytest.fixture(scope="module")
def small_corpus(emodb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six clips from each EmoDB speaker (a manifest with absolute paths)."""
    rows = list(csv.DictReader((emodb_dir / "manifest.csv").open()))
    chosen: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        taken = chosen.setdefault(row["speaker"], [])
        if len(taken) < CLIPS_PER_SPEAKER and row["label"] not in {r["label"] for r in taken}:
            taken.append(row)
    folder = tmp_path_factory.mktemp("corpus")
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"])
        for row in (r for group in chosen.values() for r in group):
            writer.writerow([str((emodb_dir / row["path"]).resolve()), row["label"], row["speaker"]])
    return folder


@pytest.fixture(scope="module")
def benched(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    outcome = CliRunner().invoke(cli, [
        "bench", "librosa-rf", "--data", str(small_corpus), "--param", "librosa-rf:n_estimators=30",
        "--runtime", "native,onnx", "--device", "cpu,cuda", "--out", str(out), "--threads", "1", *FAST,
    ])
    assert outcome.exit_code == 0, outcome.output
    return out, json.loads(out.read_text())


def test_bench_trains_scores_and_times_every_runtime(benched: tuple[Path, dict]) -> None:
    path, document = benched
    loaded = load(path)
    keys = {(r["runtime"], r["device"], r["scenario"]) for r in loaded.records}
    assert {("native", "cpu", "single-stream"), ("native", "cpu", "offline"), ("onnx", "cpu", "single-stream"),
            ("onnx", "cpu", "offline")} <= keys
    data = document["settings"]["data"]
    assert data["test_clips"] + data["train_clips"] == data["clips"] and data["test_speakers"]
    for record in loaded.records:
        accuracy = record["accuracy"]
        assert accuracy["n"] == data["test_clips"]
        assert np.asarray(accuracy["confusion"]).sum() == data["test_clips"]
        assert 0 <= accuracy["uar"] <= 1 and record["model"] == "librosa-rf n_estimators=30"
        assert record["latency_ms"]["n"] >= (3 if record["scenario"] == "single-stream" else 1)
        assert record["latency_ms"]["min"] > 0
        assert record["latency_ms"]["p50"] <= record["latency_ms"]["p99"] <= record["latency_ms"]["max"]
    assert all(r["threads"] == 1 for r in loaded.records)
    native = next(r for r in loaded.records if r["runtime"] == "native" and r["scenario"] == "single-stream")
    assert set(native["stages_ms"]) == {"features", "classifier"}  # extraction timed as its own stage
    assert native["stages_ms"]["features"]["mean"] > 0
    offline = next(r for r in loaded.records if r["runtime"] == "onnx" and r["scenario"] == "offline")
    assert offline["batch_size"] == 4 and offline["throughput"]["clips"] >= 4
    throughput = offline["throughput"]
    assert throughput["clips_per_second"] == pytest.approx(throughput["clips"] / throughput["wall_seconds"])
    assert throughput["real_time_factor"] == pytest.approx(throughput["wall_seconds"] / throughput["audio_seconds"])
    # the classic model has no CUDA path: that combination is skipped with its reason, never silently
    assert any(s["runtime"] == "native" and s["device"] == "cuda" and "CPU only" in s["reason"]
               for s in document["skipped"])
    assert document["environment"]["git"]["commit"]


def test_trained_models_are_evaluated_without_training(benched: tuple[Path, dict], small_corpus: Path,
                                                       tmp_path: Path) -> None:
    path, document = benched
    models = path.with_name("results-models")
    model_dir, onnx_file = models / "librosa-rf_n_estimators_30", models / "librosa-rf_n_estimators_30.onnx"
    assert (model_dir / "manifest.json").is_file() and onnx_file.is_file()
    split = Split.of(datasets.load(small_corpus))
    settings = BenchSettings(runtimes=["native", "onnx"], devices=["cpu"],
                             timing=TimingConfig(0, 2, 0.0), offline_timing=TimingConfig(0, 1, 0.0))
    evaluated = run_bench([str(model_dir), str(onnx_file)], split, settings, tmp_path)
    kinds = {(r["kind"], r["runtime"]) for r in evaluated.records}
    assert kinds == {("directory", "native"), ("directory", "onnx"), ("onnx", "onnx")}
    assert all(r["train_seconds"] is None for r in evaluated.records)
    before = {r["runtime"]: r["accuracy"]["confusion"] for r in document["records"]}
    assert all(r["accuracy"]["confusion"] == before[r["runtime"]] for r in evaluated.records)
    labels = {r["kind"]: r["model"] for r in evaluated.records}
    assert labels == {"directory": "librosa-rf (librosa-rf_n_estimators_30)",
                      "onnx": "librosa-rf (librosa-rf_n_estimators_30.onnx)"}
    # ONNX only: no native runtime
    assert {(s["model"], s["runtime"]) for s in evaluated.skipped} == {(labels["onnx"], "native")}


def test_bad_arguments_are_one_clear_line(small_corpus: Path, tmp_path: Path) -> None:
    outcome = CliRunner().invoke(cli, ["bench", "librosa-rf", "--data", str(small_corpus), "--runtime", "tensorrt"])
    assert outcome.exit_code == 1 and "unknown runtime 'tensorrt'" in outcome.output
    outcome = CliRunner().invoke(cli, ["bench", "librosa-rf", "--data", str(small_corpus), "--param", "other:C=1"])
    assert outcome.exit_code == 1 and "'other'" in outcome.output


def test_unknown_models_and_missing_files_fail_before_training(small_corpus: Path, tmp_path: Path) -> None:
    outcome = CliRunner().invoke(cli, ["bench", "librosa-rf", "librosa-svx", "--data", str(small_corpus),
                                       "--out", str(tmp_path / "r.json")])
    assert outcome.exit_code == 1 and "unknown model 'librosa-svx'" in outcome.output
    assert "training" not in outcome.output
    outcome = CliRunner().invoke(cli, ["bench", str(tmp_path / "gone.onnx"), "--data", str(small_corpus)])
    assert outcome.exit_code == 1 and "gone.onnx: no such model directory or ONNX file" in outcome.output


def test_deep_model_is_timed_natively_and_int8_is_skipped_when_nothing_is_quantised(small_corpus: Path,
                                                                                      tmp_path: Path) -> None:
    split = Split.of(datasets.load(small_corpus))
    settings = BenchSettings(runtimes=["native", "int8"], devices=["cpu", "cuda"], threads=1,
                             timing=TimingConfig(1, 3, 0.0), offline_timing=TimingConfig(0, 1, 0.0),
                             offline_batch_size=4)
    params = {"logmel-cnn": {"epochs": 1, "channels": [8, 8], "batch_size": 16}}
    made = run_bench(["logmel-cnn"], split, settings, tmp_path, params)
    keys = {(r["runtime"], r["scenario"]) for r in made.records}
    assert keys == {("native", "single-stream"), ("native", "offline")}
    assert all(r["device"] == "cpu" and r["family"] == "logmel-cnn" for r in made.records)
    assert all(r["stages_ms"] == {} for r in made.records)  # extraction is inside the network: one stage
    assert all(r["threads"] == 1 for r in made.records)
    # a small CNN's one MatMul is not worth int8: no row that would time the float file again, and no file
    int8 = [s for s in made.skipped if s["runtime"] == "int8" and s["device"] == "cpu"]
    assert len(int8) == 1 and "nothing worth quantising" in int8[0]["reason"]
    assert not list(tmp_path.rglob("*-int8.onnx"))
    assert {s["device"] for s in made.skipped if s["runtime"] == "native"} <= {"cuda"}
