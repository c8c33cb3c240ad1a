"""emonet (log-mel CNN + emorobust statistics) on real RAVDESS clips with a tiny network: training with
corpus-balanced weights, save/load, ONNX export with the statistics graph inside, CUDA when present."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.errors import EmozooError, ModelFileError
from zoo.registry import create_model

TINY = {"channels": [8, 16], "epochs": 6, "batch_size": 8, "lr": 3e-3, "max_train_seconds": 1.5,
        "num_threads": 1, "n_jobs": 1}


@pytest.fixture(scope="module")
def trained(short_clips):
    waveforms, labels, _ = short_clips
    return create_model("emonet", **TINY).fit(waveforms, labels, corpora=short_clips.corpora())


def test_emonet_trains_on_balanced_losses_and_round_trips(short_clips, trained, tmp_path):
    waveforms, _, _ = short_clips
    losses = [record["train_loss"] for record in trained.training_["history"]]
    assert losses[-1] < losses[0], losses
    probabilities = trained.predict_proba(waveforms)
    assert probabilities.shape == (len(waveforms), 6)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
    # a clip alone gets what it gets in a padded batch
    np.testing.assert_allclose(trained.predict_proba(waveforms[:1]), probabilities[:1], atol=1e-5)

    saved = trained.save(tmp_path / "model")
    assert sorted(p.name for p in saved.iterdir()) == ["manifest.json", "model.safetensors"]
    from zoo.api import load

    np.testing.assert_allclose(load(saved).predict_proba(waveforms), probabilities, atol=1e-6)


def test_emonet_weights_follow_the_corpora(short_clips):
    """Balanced per-clip weights are what the loss uses: other corpus labels give another model."""
    waveforms, labels, _ = short_clips
    params = {**TINY, "epochs": 2}
    one = create_model("emonet", **params).fit(waveforms, labels, corpora=["a"] * len(labels))
    again = create_model("emonet", **params).fit(waveforms, labels, corpora=["a"] * len(labels))
    other = create_model("emonet", **params).fit(waveforms, labels, corpora=short_clips.corpora())
    np.testing.assert_allclose(one.predict_proba(waveforms), again.predict_proba(waveforms), atol=1e-6)
    assert np.abs(one.predict_proba(waveforms) - other.predict_proba(waveforms)).max() > 1e-4


def test_emonet_onnx_export_holds_the_statistics_graph(short_clips, trained, tmp_path):
    import onnx

    from exporters import export_model
    from zoo.onnx_runtime import OnnxEmotionModel

    waveforms, labels, _ = short_clips
    path = tmp_path / "emonet.onnx"
    report = export_model(trained, path, validate_on=(waveforms, labels))
    assert report.validation is not None and report.validation.passed
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["waveform", "lengths"]
    onnx_model = OnnxEmotionModel(path)
    uneven = [waveforms[0][:7_001], waveforms[1], waveforms[2][:16_000]]
    expected = trained.predict_proba(uneven)
    np.testing.assert_allclose(onnx_model.predict_proba(uneven), expected, atol=1e-4)
    np.testing.assert_allclose(onnx_model.predict_proba(uneven[1:2]), expected[1:2], atol=1e-4)
    # the level is normalised inside the graph too: -20 dB and +10 dB give the clip's own probabilities
    spoken = uneven[1:]  # the first is the clip's leading near-silence, which -20 dB would make silent
    for gain_db in (-20.0, 10.0):
        scaled = [w * np.float32(10 ** (gain_db / 20)) for w in spoken]
        np.testing.assert_allclose(onnx_model.predict_proba(scaled), onnx_model.predict_proba(spoken), atol=1e-4)


def test_emonet_output_does_not_depend_on_the_level(short_clips, trained):
    waveforms, _, _ = short_clips
    clips = waveforms[:6]
    clean = trained.predict_proba(clips)
    for gain_db in (-30.0, -20.0, 10.0):
        scaled = [w * np.float32(10 ** (gain_db / 20)) for w in clips]
        np.testing.assert_allclose(trained.predict_proba(scaled), clean, atol=1e-4)
    # without the normalisation (how models saved before it computed) the level does change the output
    raw = create_model("emonet", **{**TINY, "epochs": 1, "level_normalise": False})
    raw.fit(waveforms, short_clips.labels, corpora=short_clips.corpora())
    quiet = [w * np.float32(10 ** (-30 / 20)) for w in clips]
    assert np.abs(raw.predict_proba(quiet) - raw.predict_proba(clips)).max() > 1e-3


def test_models_saved_before_level_normalisation_and_the_statistics_option_load_as_saved(trained, tmp_path):
    import json

    from zoo.api import load

    saved = trained.save(tmp_path / "model")
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["params"]["level_normalise"] is True
    del manifest["params"]["level_normalise"], manifest["params"]["statistics"]
    (saved / "manifest.json").write_text(json.dumps(manifest))
    old = load(saved)
    assert old.level_normalise is False and old.network_.frontend.level_normalise is False
    assert old.statistics == manifest["feature_config"]["statistics"]["name"]  # the set it recorded
    assert load(trained.save(tmp_path / "new")).network_.frontend.level_normalise is True


def test_emonet_rejects_bad_parameters_and_foreign_weights(short_clips, trained, tmp_path):
    waveforms, labels, _ = short_clips
    with pytest.raises(EmozooError, match="channels"):
        create_model("emonet", **{**TINY, "channels": "wide"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="balance"):
        create_model("emonet", **{**TINY, "balance": "speakers"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="statistics"):
        create_model("emonet", **{**TINY, "statistics": "seed"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="statistics.*unknown feature set"):
        create_model("emonet", **{**TINY, "statistics": "mfcc"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="augment"):
        create_model("emonet", **{**TINY, "augment": "thunder"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="level_normalise"):
        create_model("emonet", **{**TINY, "level_normalise": "yes"}).fit(waveforms, labels)
    saved = trained.save(tmp_path / "model")
    (saved / "model.safetensors").write_bytes(b"not safetensors")
    from zoo.api import load

    with pytest.raises(ModelFileError, match="model.safetensors"):
        load(saved)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_emonet_trains_and_predicts_on_each_device(device, short_clips):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    waveforms, labels, _ = short_clips
    model = create_model("emonet", **{**TINY, "epochs": 1, "device": device}).fit(waveforms, labels)
    assert next(model.network_.parameters()).device.type == device
    probabilities = model.predict_proba(waveforms)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
