"""Cross-corpus robustness: level-invariant features (natively and in ONNX), corpus-balanced weights,
group normalisation of outputs, augmented training copies and the leave-one-corpus-out protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import zoo
from exporters.classic import feature_model
from plugins.classic.features import VOICE_QUALITY_NAMES, emostats_descriptor_names, extract, feature_config
from tests.conftest import require_corpus
from zoo import datasets
from zoo.balance import balanced_sample_weights
from zoo.cli.main import cli
from zoo.errors import ModelFileError
from zoo.metrics import scores as metric_scores
from zoo.normalize import normalize_probabilities
from zoo.predictions import read_predictions
from zoo.registry import create_model

GAINS_DB = (-30.0, -20.0, -6.0, 6.0, 10.0)


@pytest.fixture(scope="module")
def clips(ravdess_dir: Path) -> list[np.ndarray]:
    dataset = datasets.load(ravdess_dir)
    audio = datasets.load_waveforms(dataset.items[::120], 16_000)
    return [w / max(1.0, float(np.abs(w).max()) * 10 ** (10 / 20) + 1e-3) for w in audio.waveforms]


def _graph_features(name: str, waveforms: list[np.ndarray]) -> np.ndarray:
    config = feature_config(name)
    n_features = extract(waveforms[0], config).size
    session = ort.InferenceSession(feature_model(config, n_features, 17).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    longest = max(len(w) for w in waveforms)
    batch = np.stack([np.pad(w, (0, longest - len(w))) for w in waveforms]).astype(np.float32)
    lengths = np.array([len(w) for w in waveforms], dtype=np.int64)
    return session.run(None, {"waveform": batch, "lengths": lengths})[0]


@pytest.mark.parametrize("name", ["emorobust", "emostats", "emorobust-nf-floor"])
def test_features_do_not_depend_on_the_level_natively_or_in_onnx(name: str, clips: list[np.ndarray]) -> None:
    config = feature_config(name)
    reference = np.stack([extract(w, config) for w in clips])
    scale = np.abs(reference) + 1.0
    for gain in GAINS_DB:
        scaled = [(w * 10 ** (gain / 20)).astype(np.float32) for w in clips]
        assert max(np.abs(w).max() for w in scaled) <= 1.0  # no clipping: the gain alone changes
        native = np.stack([extract(w, config) for w in scaled])
        assert np.max(np.abs(native - reference) / scale) < 1e-4, gain
        graph = _graph_features(name, scaled)
        assert np.max(np.abs(graph - reference) / scale) < 1e-3, gain


def test_seed_features_do_not_depend_on_the_level(clips: list[np.ndarray]) -> None:
    import soxr

    config = feature_config("seed")
    clip = soxr.resample(clips[0], 16_000, config.sample_rate).astype(np.float32)
    reference = extract(clip, config)
    for gain in (-30.0, 10.0):
        changed = extract((clip * 10 ** (gain / 20)).astype(np.float32), config)
        assert np.max(np.abs(changed - reference) / (np.abs(reference) + 1.0)) < 1e-3, gain
    graph = _graph_features("seed", [(clip * 10 ** (-20 / 20)).astype(np.float32)])[0]
    assert np.median(np.abs(graph - reference) / (np.abs(reference) + 1.0)) < 1e-3


def test_voice_quality_descriptors_are_the_last_columns_and_agree_with_onnx(clips: list[np.ndarray]) -> None:
    config = feature_config("emorobust")
    names = emostats_descriptor_names(config)
    assert names[-len(VOICE_QUALITY_NAMES):] == VOICE_QUALITY_NAMES
    native = np.stack([extract(w, config) for w in clips])
    assert native.shape[1] == len(names)
    quality = native[:, -len(VOICE_QUALITY_NAMES):]
    assert np.all(np.isfinite(quality)) and np.all(quality.std(axis=0) > 0)  # each varies across real clips
    graph = _graph_features("emorobust", clips)[:, -len(VOICE_QUALITY_NAMES):]
    np.testing.assert_allclose(graph, quality, rtol=1e-3, atol=1e-3)


def _with_noisy_pauses(clip: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """The clip between two seconds of pause, white noise at `snr_db` below the speech over the whole."""
    pause = np.zeros(16_000, dtype=np.float32)
    padded = np.concatenate([pause, clip, pause])
    speech_power = float(np.mean(np.square(clip, dtype=np.float64)))
    noise = np.random.default_rng(seed).standard_normal(padded.size) * np.sqrt(speech_power / 10 ** (snr_db / 10))
    return (padded + noise).astype(np.float32)


def _frame_log_energy(samples: np.ndarray, config: object) -> np.ndarray:
    import librosa

    from plugins.classic.features import _emostats_frames, emostats_constants, normalise_level

    spectrum = librosa.stft(normalise_level(samples), n_fft=config.n_fft, hop_length=config.hop_length,
                            window=emostats_constants(config)["window"], center=False)
    return _emostats_frames((np.abs(spectrum) ** 2).T.astype(np.float64), config)["log_energy"]


def test_noise_floor_rule_keeps_noisy_pauses_out_of_speech_natively_and_in_onnx(clips: list[np.ndarray]) -> None:
    from plugins.classic.features import speech_frames

    robust, plain = feature_config("emorobust-nf"), feature_config("emostats")
    assert robust.speech_floor_margin_db > 0 and not plain.speech_floor_margin_db
    noisy = [_with_noisy_pauses(c, 20.0, seed) for seed, c in enumerate(clips)]
    pause_frames = (16_000 - robust.n_fft) // robust.hop_length  # frames wholly inside the leading pause
    for clip, noisy_clip in zip(clips, noisy, strict=True):
        silent = np.zeros(16_000, np.float32)
        clean_speech = speech_frames(_frame_log_energy(np.concatenate([silent, clip, silent]), robust), robust)
        energy = _frame_log_energy(noisy_clip, robust)
        assert speech_frames(energy, plain)[:pause_frames].mean() > 0.9  # the range rule takes noise for speech
        found = speech_frames(energy, robust)
        assert found[:pause_frames].mean() < 0.1
        assert (found & clean_speech).sum() >= 0.9 * found.sum()  # what it keeps was speech in the clean clip
        assert (found & clean_speech).sum() >= 0.5 * clean_speech.sum()  # and most of that speech is kept
    graph = _graph_features("emorobust-nf", noisy)
    native = np.stack([extract(w, robust) for w in noisy])
    assert np.max(np.abs(graph - native) / (np.abs(native) + 1.0)) < 1e-3


def test_spectral_floor_hides_a_missing_top_band_natively_and_in_onnx(clips: list[np.ndarray]) -> None:
    """A low-passed copy (as a low-bitrate MP3 leaves it) moves the top log-mel bands' means by tens of dB
    without the floor; with emorobust-nf-floor those bands sit on the floor in both, so they move far less."""
    from scipy.signal import butter, sosfiltfilt

    from plugins.classic.features import emostats_descriptor_names

    floored, plain = feature_config("emorobust-nf-floor"), feature_config("emorobust-nf")
    assert floored.mel_floor > plain.floor and floored.n_mels == plain.n_mels
    assert "mel_floor" not in plain.as_dict()  # models saved before the field existed still load
    names = emostats_descriptor_names(floored)
    top = [names.index(f"logmel{band}_mean") for band in range(floored.n_mels - 3, floored.n_mels)]
    lowpass = butter(10, 6_500, fs=16_000, output="sos")
    muffled = [sosfiltfilt(lowpass, c).astype(np.float32) for c in clips]
    shifts = {}
    for config in (floored, plain):
        before = np.stack([extract(c, config) for c in clips])[:, top]
        after = np.stack([extract(c, config) for c in muffled])[:, top]
        shifts[config.name] = np.abs(before - after).mean()
    assert shifts["emorobust-nf"] > 15.0, shifts  # dB: the band is gone
    assert shifts["emorobust-nf-floor"] < shifts["emorobust-nf"] / 3, shifts
    native = np.stack([extract(w, floored) for w in muffled])
    graph = _graph_features("emorobust-nf-floor", muffled)
    # the emptied bins' float32 powers still put spectral flatness ~1e-3 apart (emorobust-nf's log-mel, 2.5e-3)
    assert np.max(np.abs(graph - native) / (np.abs(native) + 1.0)) < 2e-3


@pytest.fixture(scope="module")
def quiet_speech(emodb_dir: Path) -> list[np.ndarray]:
    """Clean EmoDB and nEMO clips: few pauses, so their quietest tenth of frames is mostly quiet speech."""
    items = datasets.load(emodb_dir).items[::45] + datasets.load(require_corpus("nemo")).items[::150]
    return datasets.load_waveforms(items, 16_000).waveforms


def test_noise_floor_gate_keeps_quiet_speech_of_clean_clips_and_fires_on_noisy_ones(
        quiet_speech: list[np.ndarray]) -> None:
    from dataclasses import replace

    from plugins.classic.features import noise_floor, speech_frames
    from zoo.augment import add_noise

    gated, plain = feature_config("emorobust-nf"), feature_config("emorobust")
    ungated = replace(gated, speech_floor_gate_db=None)

    noisy = [add_noise(c, 20.0, np.random.default_rng(seed)) for seed, c in enumerate(quiet_speech)]
    kept_gated, kept_ungated, clean_weights = [], [], []
    for clip in quiet_speech:
        energy = _frame_log_energy(clip, gated)
        by_range = speech_frames(energy, plain)
        kept_gated.append(speech_frames(energy, gated).sum() / by_range.sum())
        kept_ungated.append(speech_frames(energy, ungated).sum() / by_range.sum())
        clean_weights.append(noise_floor(energy, gated)[1])
    assert np.mean(kept_ungated) < 0.85  # the ungated rule drops the quiet speech of these clips
    assert np.mean(kept_gated) > 0.93
    assert np.mean(np.array(clean_weights) == 0.0) > 0.5
    noisy_weights = [noise_floor(_frame_log_energy(clip, gated), gated)[1] for clip in noisy]
    assert min(noisy_weights) > 0.5 and np.mean(noisy_weights) > 0.9
    # some clean clips (among the first dozen, EmoDB's) are weighed in between: the graph follows the soft limit
    assert any(0.05 < w < 0.95 for w in clean_weights[:12])
    clips = quiet_speech[:12] + noisy[:6]
    graph = _graph_features("emorobust-nf", clips)
    native = np.stack([extract(w, gated) for w in clips])
    assert np.max(np.abs(graph - native) / (np.abs(native) + 1.0)) < 1e-3


def test_configs_without_the_floor_rule_record_no_floor_fields_so_older_saved_models_load() -> None:
    for name in ("emostats", "emorobust"):
        assert "speech_floor_margin_db" not in feature_config(name).as_dict()
        assert "speech_floor_gate_db" not in feature_config(name).as_dict()
    recorded = feature_config("emorobust-nf").as_dict()
    # the gate is part of the config, hence of the cache keys and of saved models' manifests: features and
    # models of the first, ungated emorobust-nf are never mixed with these
    assert recorded["speech_floor_margin_db"] > 0 and recorded["speech_floor_gate_db"] == (5.0, 10.0)


def test_balanced_weights_equalise_classes_and_corpora_within_a_class() -> None:
    labels = np.array([0] * 90 + [1] * 10 + [0] * 5 + [1] * 20 + [2] * 5)
    corpora = ["big"] * 100 + ["small"] * 30
    weights = balanced_sample_weights(labels, corpora, "corpus")
    assert weights.mean() == pytest.approx(1.0)
    totals = {c: weights[labels == c].sum() for c in (0, 1, 2)}
    assert totals[0] == pytest.approx(totals[1]) == pytest.approx(totals[2])
    big, small = (labels == 0) & (np.array(corpora) == "big"), (labels == 0) & (np.array(corpora) == "small")
    assert weights[big].sum() == pytest.approx(weights[small].sum())
    class_only = balanced_sample_weights(labels, corpora, "class")
    assert class_only[big][0] == pytest.approx(class_only[small][0])
    assert balanced_sample_weights(labels, corpora, "none") is None
    with pytest.raises(ValueError, match="balance"):
        balanced_sample_weights(labels, corpora, "speakers")


def test_group_normalisation_removes_a_shared_bias_and_keeps_absent_classes_at_zero() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, 200)
    logits = rng.normal(0, 1, (200, 6)) + 3.0 * np.eye(6)[truth]
    logits[:, 2] += 2.5  # a recording chain that pulls every clip towards "sad"
    logits[:, 3] = -np.inf  # a model that never predicts disgust
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    before = (probabilities.argmax(axis=1) == truth).mean()
    adjusted = normalize_probabilities(probabilities, None)
    after = (adjusted.argmax(axis=1) == truth).mean()
    assert after > before + 0.15
    np.testing.assert_allclose(adjusted.sum(axis=1), 1.0)
    assert np.all(adjusted[:, 3] == 0)
    single = normalize_probabilities(probabilities[:1], None, shrinkage=4.0)
    assert single.argmax() == probabilities[0].argmax()  # one clip is shrunk towards itself


def test_augmented_training_is_reproducible_and_changes_the_model(ravdess_dir: Path) -> None:
    dataset = datasets.load(ravdess_dir)
    audio = datasets.load_waveforms(dataset.items[:60], 16_000)
    labels = datasets.Dataset(audio.items, dataset.source, dataset.layout).labels
    test = datasets.load_waveforms(dataset.items[-20:], 16_000).waveforms

    def fitted(augment: str) -> np.ndarray:
        model = create_model("librosa-logreg", augment=augment, augment_copies=1, n_jobs=1)
        return model.fit(audio.waveforms, labels).predict_proba(test)

    first, again, plain = fitted("noise,telephone"), fitted("noise,telephone"), fitted("none")
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - plain).max() > 1e-3


def test_a_model_saved_with_other_feature_code_is_refused(tmp_path: Path, ravdess_dir: Path) -> None:
    dataset = datasets.load(ravdess_dir)
    audio = datasets.load_waveforms(dataset.items[:30], 16_000)
    labels = datasets.Dataset(audio.items, dataset.source, dataset.layout).labels
    create_model("librosa-logreg", augment="none").fit(audio.waveforms, labels).save(tmp_path / "m")
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["feature_config"].pop("level_normalise")  # as written before features were level-normalised
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="computes differently"):
        zoo.load(tmp_path / "m")


def _manifest_subset(source: Path, target: Path, every: int) -> Path:
    rows = (source / "manifest.csv").read_text().splitlines()
    target.mkdir()
    kept = [rows[0]] + [
        ",".join([str((source / r.split(",")[0]).resolve()), *r.split(",")[1:]]) for r in rows[1::every]
    ]
    (target / "manifest.csv").write_text("\n".join(kept) + "\n")
    return target


def test_leave_one_corpus_out_trains_on_the_others_and_scores_present_classes(tmp_path: Path, emodb_dir: Path,
                                                                             ravdess_dir: Path) -> None:
    nemo = _manifest_subset(emodb_dir.parent / "nemo", tmp_path / "nemo", 40)
    emodb = _manifest_subset(emodb_dir, tmp_path / "emodb", 6)
    ravdess = _manifest_subset(ravdess_dir, tmp_path / "ravdess", 8)
    runner = CliRunner()
    out = tmp_path / "loco.json"
    result = runner.invoke(cli, ["cv", "librosa-logreg", "--data", str(emodb), "--data", str(ravdess),
                                 "--data", str(nemo), "--leave-one-corpus-out", "--param", "augment=none",
                                 "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    row = report["results"][0]
    assert report["protocol"] == "leave-one-corpus-out" and set(row["held_out"]) == {"emodb", "ravdess", "nemo"}
    assert "disgust" not in row["held_out"]["nemo"]["per_class_recall"]  # nEMO has none: not in its UAR
    assert row["uar"] == pytest.approx(np.mean([r["uar"] for r in row["held_out"].values()]))
    assert row["held_out"]["nemo"]["train_corpora"] == ["emodb", "ravdess"]
    # the same as training on the other two through the CLI and evaluating on the held-out one
    model_dir = tmp_path / "model"
    assert runner.invoke(cli, ["train", "librosa-logreg", "--data", str(emodb), "--data", str(ravdess),
                               "--param", "augment=none", "--out", str(model_dir)]).exit_code == 0
    evaluated = runner.invoke(cli, ["evaluate", str(model_dir), "--data", str(nemo), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.output[evaluated.output.index("{"):])
    assert scores["uar"] == pytest.approx(row["held_out"]["nemo"]["uar"])
    # one held-out corpus alone (as a separate process would run it), its clips' probabilities written out
    predictions = tmp_path / "nemo.csv"
    alone = runner.invoke(cli, ["cv", "librosa-logreg", "--data", str(emodb), "--data", str(ravdess),
                                "--data", str(nemo), "--leave-one-corpus-out", "--held-out", "nemo",
                                "--param", "augment=none", "--predictions-out", str(predictions)])
    assert alone.exit_code == 0, alone.output
    (run,) = read_predictions(predictions)
    assert set(run.splits) == {"nemo"} and {item.corpus for item in run.items} == {"nemo"}
    assert len(run.items) == row["held_out"]["nemo"]["n"]
    assert metric_scores(run.labels, run.probabilities.argmax(1))["uar"] == pytest.approx(
        row["held_out"]["nemo"]["uar"])


def test_leave_one_corpus_out_needs_two_corpora(emodb_dir: Path, ravdess_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["cv", "librosa-logreg", "--data", str(emodb_dir), "--leave-one-corpus-out"])
    assert result.exit_code != 0 and "two or more --data" in result.output
    unknown = CliRunner().invoke(cli, ["cv", "librosa-logreg", "--data", str(emodb_dir), "--data", str(ravdess_dir),
                                       "--leave-one-corpus-out", "--held-out", "nemo"])
    assert unknown.exit_code != 0 and "--held-out nemo: no such corpus among emodb, ravdess" in unknown.output


def test_predict_normalizes_per_speaker_or_session_and_says_when_speakers_are_missing(tmp_path: Path,
                                                                                      emodb_dir: Path) -> None:
    manifest = _manifest_subset(emodb_dir, tmp_path / "emodb", 15)
    runner = CliRunner()
    outputs = {}
    for mode in ("none", "session", "speaker"):
        result = runner.invoke(cli, ["predict", str(manifest / "manifest.csv"), "--format", "json",
                                     "--normalize", mode])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output[result.output.index("["):])
        outputs[mode] = np.array([[r["probabilities"][label] for label in r["probabilities"]] for r in rows])
    assert outputs["none"].shape == outputs["session"].shape == outputs["speaker"].shape
    np.testing.assert_allclose(outputs["session"].sum(axis=1), 1.0, atol=1e-6)
    assert np.abs(outputs["session"] - outputs["none"]).max() > 1e-3
    assert np.abs(outputs["speaker"] - outputs["session"]).max() > 1e-3
    clip = next(iter(sorted(emodb_dir.glob("*.wav"))))
    missing = runner.invoke(cli, ["predict", str(clip), "--normalize", "speaker"])
    assert missing.exit_code == 1 and "needs a speaker for every clip" in missing.output
