"""ONNX export end to end on real speech: parity with the native model, dynamic batch and length, metadata,
failing validation, the runtime (API, CLI) and its import isolation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from exporters import ExportConfig, export_model
from zoo import datasets
from zoo.errors import AudioError, EmozooError, ModelFileError
from zoo.labels import LABELS
from zoo.onnx_runtime import OnnxEmotionModel

TRAIN_SPEAKERS = ("Actor_01", "Actor_02", "Actor_05")
HELD_OUT_SPEAKER = "Actor_06"
HELD_OUT_CLIPS = 14


def emozoo(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], capture_output=True, text=True,
                            env=dict(os.environ))
    assert result.returncode == 0, f"emozoo {' '.join(map(str, args))} failed:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def speech(ravdess_dir: Path) -> dict:
    """A few RAVDESS speakers to train on and clips of an unseen speaker to validate on."""
    dataset = datasets.load(ravdess_dir)
    train = dataset.subset([i for i, item in enumerate(dataset) if item.speaker in TRAIN_SPEAKERS])
    held_out = dataset.subset([i for i, item in enumerate(dataset) if item.speaker == HELD_OUT_SPEAKER])
    held_out = held_out.subset(range(0, len(held_out), max(1, len(held_out) // HELD_OUT_CLIPS))[:HELD_OUT_CLIPS])
    return {
        "train": (datasets.load_waveforms(train.items, 16_000).waveforms, train.labels),
        "test": (datasets.load_waveforms(held_out.items, 16_000).waveforms, held_out.labels),
        "test_paths": [item.path for item in held_out.items],
    }


@pytest.fixture(scope="module")
def exported(speech: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    model = zoo.create_model("librosa-svc", n_jobs=1).fit(*speech["train"])
    folder = tmp_path_factory.mktemp("export")
    report = export_model(model, folder / "svc.onnx", validate_on=speech["test"])
    return {"model": model, "path": folder / "svc.onnx", "report": report, "folder": folder}


def test_export_validates_on_held_out_speech(exported: dict, speech: dict) -> None:
    report = exported["report"]
    assert Path(report.path).is_file()
    validation = report.validation
    assert validation.passed and validation.clips == HELD_OUT_CLIPS
    assert {p.batch_size for p in validation.passes} == {1, 7, 32}
    # an SVC head gets 0.05 (one-vs-one votes flip on float32 rounding: docs/export.md), every other 1e-3
    assert validation.max_allowed_diff == 0.05
    assert validation.agreement >= 0.995 and validation.max_abs_diff <= validation.max_allowed_diff
    # independently of the report: the file, run as users run it, against the native model
    onnx_model = OnnxEmotionModel(exported["path"], threads=1)
    waveforms, labels = speech["test"]
    native = exported["model"].predict_proba(waveforms)
    onnx_probabilities = onnx_model.predict_proba(waveforms)
    assert np.abs(onnx_probabilities - native).max() <= 0.05
    assert np.median(np.abs(onnx_probabilities - native).max(axis=1)) <= 1e-5  # a flip is rare, not the rule
    assert (onnx_model.predict(waveforms) == native.argmax(axis=1)).mean() >= 0.995
    assert report.as_dict()["validation"]["passed"] is True


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_dynamic_batch_and_length(exported: dict, speech: dict, batch: int) -> None:
    """Batches of clips cut to lengths no export saw, zero-padded to the longest: each row as if alone."""
    rng = np.random.default_rng(batch)
    waveforms = speech["test"][0]
    clips = []
    for index in rng.choice(len(waveforms), size=batch, replace=False):
        clip = waveforms[index]
        length = int(rng.integers(int(0.4 * 16_000), clip.size))
        start = int(rng.integers(0, clip.size - length + 1))
        clips.append(clip[start : start + length])
    onnx_model = OnnxEmotionModel(exported["path"], threads=1)
    probabilities, labels = onnx_model.run_batch(clips)
    native = exported["model"].predict_proba(clips)
    assert probabilities.shape == (batch, len(LABELS)) and labels.shape == (batch,)
    np.testing.assert_allclose(probabilities, native, atol=1e-3)
    assert (labels == native.argmax(axis=1)).all()
    # extra padding past the longest clip, and garbage past each row's length, change nothing
    longest = max(c.size for c in clips)
    padded = rng.normal(0, 0.5, (batch, longest + 12_345)).astype(np.float32)
    for row, clip in enumerate(clips):
        padded[row, : clip.size] = clip
    lengths = np.array([c.size for c in clips], dtype=np.int64)
    again = onnx_model.session.run(["probabilities"], {"waveform": padded, "lengths": lengths})[0]
    np.testing.assert_allclose(again, probabilities, atol=1e-5)


def test_metadata_describes_the_model(exported: dict) -> None:
    model, metadata = exported["model"], OnnxEmotionModel(exported["path"]).metadata
    assert metadata["labels"] == {str(i): label for i, label in enumerate(LABELS)}
    assert metadata["sample_rate"] == 16_000
    assert metadata["plugin"] == "librosa-svc" and metadata["family"] == "classic"
    assert metadata["params"]["C"] == model.C
    assert metadata["feature_config"]["name"] == "emorobust-nf"
    assert metadata["emozoo_version"] == zoo.__version__
    assert metadata["training_data_fingerprint"] == model.training_data_["fingerprint"]
    assert metadata["training_data_fingerprint"].startswith("sha256:")
    assert metadata["validation"]["passed"] is True and metadata["validation"]["clips"] == HELD_OUT_CLIPS


def test_failing_validation_raises_and_writes_nothing(exported: dict, speech: dict, tmp_path: Path) -> None:
    waveforms, labels = speech["test"]
    target = tmp_path / "strict.onnx"
    # float32 outputs never match float64 native probabilities to 0.0
    impossible = ExportConfig(max_abs_diff=0.0)
    with pytest.raises(EmozooError, match="failed validation"):
        export_model(exported["model"], target, validate_on=(waveforms[:4], labels[:4]), config=impossible)
    assert list(tmp_path.iterdir()) == []


def test_api_and_cli_run_the_onnx_file(exported: dict, speech: dict) -> None:
    loaded = zoo.load(exported["path"])
    assert isinstance(loaded, OnnxEmotionModel) and loaded.sample_rate == 16_000
    clip = speech["test_paths"][0]
    rows = json.loads(emozoo("predict", exported["path"], clip, "--format", "json").stdout)
    native = exported["model"].predict_proba(speech["test"][0][:1])[0]
    assert rows[0]["label"] == LABELS[int(native.argmax())]
    assert abs(rows[0]["confidence"] - native.max()) < 1e-3


def test_cli_export_validates_by_default(exported: dict, tmp_path: Path) -> None:
    saved = exported["model"].save(tmp_path / "svc")
    result = emozoo("export", saved, "-o", tmp_path / "cli.onnx")
    summary = json.loads(result.stdout)
    assert "demo clips" in summary["validated_on"] and summary["agreement"] >= 0.995
    assert "max |dp|" in result.stderr
    assert OnnxEmotionModel(tmp_path / "cli.onnx").name == "librosa-svc"


def test_runtime_rejects_bad_files_and_inputs(exported: dict, tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.onnx"):
        OnnxEmotionModel(junk)
    with pytest.raises(ModelFileError, match="no such"):
        OnnxEmotionModel(tmp_path / "missing.onnx")
    model = OnnxEmotionModel(exported["path"])
    with pytest.raises(AudioError, match="waveform 1"):
        model.predict_proba([np.full(16_000, 0.1, np.float32), np.zeros((2, 16_000), np.float32)])
    with pytest.raises(AudioError, match="NaN"):
        model.predict_proba([np.full(16_000, np.nan, np.float32)])


def test_onnx_path_imports_no_heavy_library(exported: dict, speech: dict) -> None:
    """OnnxEmotionModel, zoo.load and `emozoo predict model.onnx` in a fresh process: no torch, librosa,
    scikit-learn, transformers (nor scipy) get imported."""
    script = f"""
import sys
import zoo
from zoo.audio import read_audio
from zoo.onnx_runtime import OnnxEmotionModel
model = OnnxEmotionModel({str(exported['path'])!r}, threads=1)
clip = read_audio({str(speech['test_paths'][0])!r}, model.sample_rate)[0]
assert model.predict_proba([clip, clip[:8000]]).shape == (2, 6)
assert zoo.load({str(exported['path'])!r}).predict([clip]).shape == (1,)
from click.testing import CliRunner
from zoo.cli.main import cli
arguments = ["predict", {str(exported['path'])!r}, {str(speech['test_paths'][0])!r}, "--format", "csv"]
run = CliRunner().invoke(cli, arguments)
assert run.exit_code == 0, run.output
heavy = sorted(m for m in ("torch", "librosa", "sklearn", "transformers", "scipy") if m in sys.modules)
print(",".join(heavy))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the ONNX path imported {result.stdout.strip()}"
    assert result.stderr.strip() == "", f"the ONNX path printed to stderr: {result.stderr}"


def test_int8_on_a_classic_model_keeps_it_float_and_says_so(exported: dict, speech: dict, tmp_path: Path) -> None:
    waveforms, labels = speech["test"]
    report = export_model(exported["model"], tmp_path / "q.onnx", quantize="int8",
                          validate_on=(waveforms[:4], labels[:4]))
    assert report.quantize is None and any("nothing to quantise" in note for note in report.notes)
    assert OnnxEmotionModel(tmp_path / "q.onnx").metadata["quantize"] == "none"
    with pytest.raises(EmozooError, match="unknown quantisation"):
        export_model(exported["model"], tmp_path / "bad.onnx", quantize="int4")


def test_seed_feature_graph_matches_librosa(speech: dict) -> None:
    """The `seed` set rebuilt in ONNX, batched with different lengths, against librosa itself."""
    import onnxruntime as ort

    from exporters.classic import feature_model
    from exporters.seed_graph import seed_feature_count
    from plugins.classic.features import SeedConfig, seed_features
    from zoo.audio import resample

    config = SeedConfig()
    clips = [resample(w, 16_000, config.sample_rate) for w in speech["test"][0][:3]]
    clips[1] = clips[1][: clips[1].size // 2]
    # shorter than the deltas' 9 frames (186 ms): zero-padded to that, natively and in the graph alike
    clips.append(clips[0][clips[0].size // 2 :][: int(0.06 * config.sample_rate)])
    native = np.stack([seed_features(c, config) for c in clips]).astype(np.float64)
    graph = feature_model(config, seed_feature_count(config), 17)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = np.zeros((len(clips), max(c.size for c in clips) + 3000), dtype=np.float32)
    for row, clip in enumerate(clips):
        batch[row, : clip.size] = clip
    lengths = np.array([c.size for c in clips], dtype=np.int64)
    features = session.run(None, {"waveform": batch, "lengths": lengths})[0]
    pitch, energy, tempo, rest = slice(0, 1000), 1000, 1001, slice(1002, None)
    np.testing.assert_allclose(features[:, rest], native[:, rest], rtol=1e-3, atol=1e-3)  # MFCCs and deltas
    np.testing.assert_allclose(features[:, energy], native[:, energy], rtol=1e-3)
    # tempo is an argmax over a 9-frame onset envelope for the 60 ms clip: a float32 near-tie there may pick a
    # neighbouring tempo (seen after level normalisation: 123.0 vs 117.5 BPM); real clips must agree
    np.testing.assert_allclose(features[:3, tempo], native[:3, tempo], rtol=1e-3)
    # yin: the same period in (almost) every frame; a near-tie between troughs may pick another one
    close = np.isclose(features[:, pitch], native[:, pitch], rtol=1e-3)
    assert close.mean() >= 0.99, f"{(~close).sum()} of {close.size} pitch values differ"


def test_tolerance_overrides_are_per_model() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from zoo.registry import exporter_for

    exporter = exporter_for("classic")
    assert exporter.export_config(zoo.create_model("librosa-svc")) == ExportConfig()
    assert exporter.export_config(zoo.create_model("librosa-svc", features="seed")).max_abs_diff == 2e-3
    forest = zoo.create_model("librosa-rf", n_estimators=100)
    rng = np.random.default_rng(0)
    forest.pipeline_ = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=100)).fit(
        rng.normal(size=(40, 3)), rng.integers(0, 6, 40))
    config = exporter.export_config(forest)
    assert config.max_abs_diff == pytest.approx(0.02) and config.min_agreement == 0.995
    # seed features with a linear head: raw per-frame f0 goes straight to the logits
    linear = zoo.create_model("librosa-logreg", features="seed")
    linear.pipeline_ = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        rng.normal(size=(40, 3)), rng.integers(0, 6, 40))
    assert exporter.export_config(linear).max_abs_diff == pytest.approx(0.02)
    linear.features = "default"
    assert exporter.export_config(linear) == ExportConfig()


def test_logistic_regression_head_exports_with_one_opset_per_domain(speech: dict, tmp_path: Path) -> None:
    import onnx

    model = zoo.create_model("librosa-logreg", n_jobs=1).fit(*speech["train"])
    waveforms, labels = speech["test"]
    report = export_model(model, tmp_path / "logreg.onnx", quantize="int8", validate_on=(waveforms, labels))
    assert report.validation is not None and report.validation.passed
    # its MatMul is a few thousand weights: int8 would only add quantisation work
    assert report.quantize is None and any("nothing worth quantising" in note for note in report.notes)
    domains = [entry.domain for entry in onnx.load(tmp_path / "logreg.onnx").opset_import]
    assert sorted(domains) == sorted(set(domains))


def test_predict_threads_and_device(exported: dict, speech: dict, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from zoo.cli.main import cli
    from zoo.onnx_runtime import cuda_usable

    clip = str(speech["test_paths"][0])
    runs = {}
    for options in ([], ["--threads", "1", "--device", "cpu"]):
        result = CliRunner().invoke(cli, ["predict", str(exported["path"]), clip, "--format", "json", *options])
        assert result.exit_code == 0, result.output
        runs[len(options)] = json.loads(result.output)
    assert runs[0] == runs[4]
    if not cuda_usable():  # asking for CUDA where there is none is an error, not a quiet CPU run
        result = CliRunner().invoke(cli, ["predict", str(exported["path"]), clip, "--device", "cuda"])
        assert result.exit_code == 1 and "CUDA provider is not usable" in result.output
    native = exported["model"].save(tmp_path / "svc")
    result = CliRunner().invoke(cli, ["predict", str(native), clip, "--device", "cuda"])
    assert result.exit_code == 1 and "runs on the CPU only" in result.output
    result = CliRunner().invoke(cli, ["predict", str(native), clip, "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in result.output
