"""The deep plugins on real RAVDESS clips, on the CPU, with tiny networks (a few seconds per training).

wav2vec2 runs on a randomly initialised tiny backbone that is written with ``save_pretrained`` and loaded
back through the real ``from_pretrained`` path, exactly like a downloaded checkpoint; nothing touches the
network (conftest sets HF_HUB_OFFLINE).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo import datasets
from zoo.errors import EmozooError
from zoo.labels import LABELS
from zoo.registry import create_model

REPO_ROOT = Path(__file__).resolve().parents[1]
# small and fast: no validation split, no early stopping, one thread (the suite shares 2 cores)
TINY_W2V = {"epochs": 4, "batch_size": 8, "lr": 1e-3, "head_lr": 3e-3, "validation_fraction": 0.0,
            "max_train_seconds": 1.5, "num_threads": 1, "head_hidden": 32, "dropout": 0.0}
TINY_CNN = {"channels": [8, 16], "epochs": 6, "batch_size": 8, "lr": 3e-3, "max_train_seconds": 1.5,
            "num_threads": 1, "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny wav2vec2 saved like a downloaded checkpoint (config.json + model.safetensors)."""
    from transformers import AutoModel

    from plugins.deep.wav2vec2_net import tiny_config

    directory = tmp_path_factory.mktemp("backbone") / "tiny-wav2vec2"
    AutoModel.from_config(tiny_config()).save_pretrained(directory)
    assert (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()
    return directory


def _probabilities_in_fresh_process(model_dir: Path, waveforms: list[np.ndarray], tmp_path: Path) -> np.ndarray:
    """Load `model_dir` with zoo.api.load in a new interpreter and return its probabilities."""
    clips_file = tmp_path / "clips.npz"
    np.savez(clips_file, *waveforms)
    script = (
        "import json, sys, numpy as np\n"
        "from zoo.api import load\n"
        "data = np.load(sys.argv[2])\n"
        "clips = [data[f'arr_{i}'] for i in range(len(data.files))]\n"
        "print(json.dumps(load(sys.argv[1]).predict_proba(clips).tolist()))\n"
    )
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "EMOZOO_QUIET": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(model_dir), str(clips_file)], cwd=REPO_ROOT,
                          env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.array(json.loads(done.stdout.strip().splitlines()[-1]))


def _losses(model: object) -> list[float]:
    return [record["train_loss"] for record in model.training_["history"]]  # type: ignore[attr-defined]


# -- wav2vec2 -----------------------------------------------------------------------------------------------
def test_wav2vec2_fine_tunes_saves_and_reloads_in_a_fresh_process(short_clips, tiny_backbone, tmp_path):
    waveforms, labels, _ = short_clips
    model = create_model("wav2vec2", backbone=str(tiny_backbone), **TINY_W2V)
    model.fit(waveforms, labels)
    losses = _losses(model)
    assert len(losses) == TINY_W2V["epochs"]
    assert losses[-1] < losses[0], losses
    # the CNN feature encoder is frozen by default, the transformer layers are not
    network = model.network_
    assert not any(p.requires_grad for p in network.backbone.feature_extractor.parameters())
    assert any(p.requires_grad for p in network.backbone.encoder.parameters())

    probabilities = model.predict_proba(waveforms)
    assert probabilities.shape == (len(waveforms), 6)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
    # padding never changes a clip's result: one clip alone equals the same clip in a padded batch
    np.testing.assert_allclose(model.predict_proba(waveforms[:1]), probabilities[:1], atol=1e-5)

    saved = model.save(tmp_path / "model")
    # a save_pretrained directory: transformers loads the fine-tuned backbone from it directly
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "head.safetensors",
                 "manifest.json"):
        assert (saved / name).is_file(), name
    assert not list(saved.glob("*.bin")) and not list(saved.glob("*.pkl"))
    reloaded = _probabilities_in_fresh_process(saved, waveforms, tmp_path)
    np.testing.assert_allclose(reloaded, probabilities, atol=1e-6)


def test_wav2vec2_weighted_layers_and_linear_probe(short_clips, tiny_backbone):
    waveforms, labels, _ = short_clips
    model = create_model("wav2vec2", backbone=str(tiny_backbone), weighted_layers=True, freeze_backbone=True,
                         **{**TINY_W2V, "epochs": 2})
    before = {k: v.clone() for k, v in _backbone_state(tiny_backbone).items()}
    model.fit(waveforms, labels)
    after = model.network_.backbone.state_dict()
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before), "linear probe moved the backbone"
    assert model.network_.layer_logits is not None and model.network_.layer_logits.requires_grad
    assert model.predict_proba(waveforms[:3]).shape == (3, 6)


def _backbone_state(directory: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_wav2vec2_resume_continues_where_it_stopped(short_clips, tiny_backbone, tmp_path):
    from plugins.deep.checkpoint import epoch_directories, load_checkpoint

    waveforms, labels, speakers = short_clips
    settings = {**TINY_W2V, "validation_fraction": 0.25, "patience": None}
    uninterrupted = create_model("wav2vec2", backbone=str(tiny_backbone), **settings)
    uninterrupted.fit(waveforms, labels, groups=speakers)

    checkpoints = tmp_path / "checkpoints"
    first = create_model("wav2vec2", backbone=str(tiny_backbone), checkpoint_dir=str(checkpoints),
                         epochs_per_run=2, **settings)
    first.fit(waveforms, labels, groups=speakers)
    assert first.training_["epochs_run"] == 2 and not first.training_["finished"]
    assert [p.name for p in epoch_directories(checkpoints)] == ["epoch-001", "epoch-002"]
    checkpoint = load_checkpoint(checkpoints)
    assert checkpoint.state["epoch"] == 2
    step = checkpoint.state["global_step"]
    assert step == first.training_["global_step"] > 0
    # AdamW's moments and step counts are in the checkpoint, not re-initialised on resume
    moments = checkpoint.optimizer["state"]
    assert moments and all(float(slots["step"]) == step for slots in moments.values())

    resumed = create_model("wav2vec2", backbone=str(tiny_backbone), checkpoint_dir=str(checkpoints),
                           resume_from=str(checkpoints), **settings)
    resumed.fit(waveforms, labels, groups=speakers)
    assert [r["epoch"] for r in resumed.training_["history"]] == [1, 2, 3, 4]
    assert resumed.training_["history"][:2] == first.training_["history"]
    assert resumed.training_["global_step"] == uninterrupted.training_["global_step"] == 2 * step
    # per-epoch seeds and the restored optimizer, scheduler and RNG: the same run as without the interruption
    for key in ("train_loss", "val_uar", "lr"):
        np.testing.assert_allclose([r[key] for r in resumed.training_["history"]],
                                   [r[key] for r in uninterrupted.training_["history"]], rtol=1e-5, err_msg=key)
    assert resumed.training_["best_epoch"] == uninterrupted.training_["best_epoch"]
    np.testing.assert_allclose(resumed.predict_proba(waveforms), uninterrupted.predict_proba(waveforms), atol=1e-5)


def test_wav2vec2_resume_refuses_other_data(short_clips, tiny_backbone, tmp_path):
    waveforms, labels, _ = short_clips
    checkpoints = tmp_path / "checkpoints"
    create_model("wav2vec2", backbone=str(tiny_backbone), checkpoint_dir=str(checkpoints),
                 **{**TINY_W2V, "epochs": 1}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="other data"):
        create_model("wav2vec2", backbone=str(tiny_backbone), resume_from=str(checkpoints),
                     **{**TINY_W2V, "epochs": 2}).fit(waveforms[:-6], labels[:-6])


def test_offline_hub_id_is_one_clear_error(short_clips):
    waveforms, labels, _ = short_clips
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    model = create_model("wav2vec2", backbone="facebook/wav2vec2-base", **TINY_W2V)
    with pytest.raises(EmozooError, match="HF_HUB_OFFLINE is set") as raised:
        model.fit(waveforms, labels)
    assert "backbone=facebook/wav2vec2-base" in str(raised.value)
    assert "--param backbone=" in str(raised.value)  # says what to do instead


def test_unreachable_hub_is_a_prompt_clear_error(monkeypatch):
    """Without HF_HUB_OFFLINE and without network, a hub id fails in seconds instead of hanging."""
    import time

    from plugins.deep.wav2vec2_net import hub_reachable, load_backbone

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: no network is touched
    assert not hub_reachable(timeout=2.0)
    started = time.perf_counter()
    with pytest.raises(EmozooError, match="the Hugging Face Hub cannot be reached"):
        load_backbone("facebook/wav2vec2-base")
    assert time.perf_counter() - started < 30


def test_offline_hub_id_on_the_command_line_prints_no_traceback(ravdess_dir, tmp_path):
    dataset = datasets.load(ravdess_dir)
    few = [dataset.items[i] for i in range(0, len(dataset.items), len(dataset.items) // 12)]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,speaker\n" + "".join(
        f"{item.path},{LABELS[item.label]},{item.speaker}\n" for item in few))
    done = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "train", "wav2vec2", "--data", str(manifest), "--out", str(tmp_path / "m"),
         "--param", "backbone=facebook/hubert-base-ls960"],
        cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "error: backbone=facebook/hubert-base-ls960: cannot load this hub model" in done.stderr


@pytest.mark.parametrize("spec, message", [("./no/such/dir", "no such directory"),
                                           (".", "has no config.json")])
def test_bad_backbone_directories(short_clips, spec, message):
    waveforms, labels, _ = short_clips
    with pytest.raises(EmozooError, match=message):
        create_model("wav2vec2", backbone=spec, **TINY_W2V).fit(waveforms, labels)


# -- logmel-cnn ------------------------------------------------------------------------------------------------
def test_logmel_cnn_trains_saves_and_reloads(short_clips, tmp_path):
    waveforms, labels, _ = short_clips
    model = create_model("logmel-cnn", **TINY_CNN)
    model.fit(waveforms, labels)
    losses = _losses(model)
    assert losses[-1] < losses[0], losses
    probabilities = model.predict_proba(waveforms)
    assert probabilities.shape == (len(waveforms), 6)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(waveforms[:1]), probabilities[:1], atol=1e-5)

    saved = model.save(tmp_path / "model")
    assert sorted(p.name for p in saved.iterdir()) == ["manifest.json", "model.safetensors"]
    reloaded = _probabilities_in_fresh_process(saved, waveforms, tmp_path)
    np.testing.assert_allclose(reloaded, probabilities, atol=1e-6)

    # the waveform is divided by its RMS inside the network: the level changes nothing
    for gain_db in (-30.0, 10.0):
        scaled = [w * np.float32(10 ** (gain_db / 20)) for w in waveforms[:6]]
        np.testing.assert_allclose(model.predict_proba(scaled), probabilities[:6], atol=1e-4)
    # models saved before the option load without it, as they were trained
    import json

    from zoo.api import load

    manifest = json.loads((saved / "manifest.json").read_text())
    del manifest["params"]["level_normalise"]
    (saved / "manifest.json").write_text(json.dumps(manifest))
    assert load(saved).network_.frontend.level_normalise is False


def test_logmel_cnn_rejects_bad_parameters(short_clips):
    waveforms, labels, _ = short_clips
    with pytest.raises(EmozooError, match="channels"):
        create_model("logmel-cnn", **{**TINY_CNN, "channels": "wide"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="pooling"):
        create_model("logmel-cnn", **{**TINY_CNN, "pooling": "max"}).fit(waveforms, labels)
    with pytest.raises(EmozooError, match="level_normalise"):
        create_model("logmel-cnn", **{**TINY_CNN, "level_normalise": 1}).fit(waveforms, labels)


def test_importing_the_plugin_imports_neither_torch_nor_transformers():
    script = ("import sys\nfrom zoo.registry import get_registry\nregistry = get_registry()\n"
              "assert {'wav2vec2', 'logmel-cnn', 'emonet'} <= set(registry.models)\n"
              "assert {'wav2vec2', 'logmel-cnn', 'emonet'} <= set(registry.exporters)\n"
              "print(sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# -- ONNX export -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["logmel-cnn", "wav2vec2"])
def test_onnx_export_matches_the_torch_model(name, short_clips, tiny_backbone, tmp_path):
    from exporters import export_model
    from zoo.onnx_runtime import OnnxEmotionModel

    waveforms, labels, _ = short_clips
    params = {**TINY_CNN, "epochs": 2} if name == "logmel-cnn" else {**TINY_W2V, "backbone": str(tiny_backbone),
                                                                     "epochs": 1}
    model = create_model(name, **params).fit(waveforms, labels)
    report = export_model(model, tmp_path / f"{name}.onnx", validate_on=(waveforms, labels))
    assert report.validation is not None and report.validation.passed
    onnx_model = OnnxEmotionModel(tmp_path / f"{name}.onnx")
    assert onnx_model.family == name
    # dynamic batch and samples: clips of other lengths than the traced example, one at a time and batched
    uneven = [waveforms[0][:7_001], waveforms[1], waveforms[2][:16_000]]
    expected = model.predict_proba(uneven)
    np.testing.assert_allclose(onnx_model.predict_proba(uneven), expected, atol=1e-4)
    np.testing.assert_allclose(onnx_model.predict_proba(uneven[:1]), expected[:1], atol=1e-4)
    if name == "logmel-cnn":  # divides the waveform by its RMS, in the graph too: the level changes nothing
        spoken = uneven[1:]  # the first is a clip's leading near-silence, which -20 dB would make silent
        for gain_db in (-20.0, 10.0):
            scaled = [w * np.float32(10 ** (gain_db / 20)) for w in spoken]
            np.testing.assert_allclose(onnx_model.predict_proba(scaled), onnx_model.predict_proba(spoken),
                                       atol=1e-4)


def test_int8_quantises_large_products_and_keeps_small_ones_float(short_clips, tiny_backbone, tmp_path):
    from dataclasses import replace

    import onnx

    from exporters import export_model
    from zoo.registry import exporter_for

    waveforms, labels, _ = short_clips
    model = create_model("wav2vec2", **{**TINY_W2V, "backbone": str(tiny_backbone), "epochs": 1})
    model.fit(waveforms, labels)
    # the tiny backbone's products are too small for int8 to pay: exported in float, and the note says why
    kept = export_model(model, tmp_path / "kept.onnx", quantize="int8", validate_on=(waveforms, labels))
    assert kept.quantize is None and any("nothing worth quantising" in note for note in kept.notes)
    # with the size floor lowered, its MatMuls become integer products whose probabilities stay close. A
    # one-epoch tiny model's probabilities are near uniform, so label agreement says nothing here (int8 noise
    # flips near-ties; its training is cut by wall time, so how near varies): only |dp| is held to
    config = replace(exporter_for("wav2vec2").config, min_quantized_weights=0, quantized_min_agreement=0.0)
    report = export_model(model, tmp_path / "int8.onnx", quantize="int8", validate_on=(waveforms, labels),
                          config=config)
    assert report.quantize == "int8" and report.validation is not None and report.validation.passed
    assert 0 < report.validation.max_abs_diff <= config.quantized_max_abs_diff
    graph = onnx.load(tmp_path / "int8.onnx").graph
    assert any(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for node in graph.node)


TINY_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(32, 32, 32), conv_kernel=(20, 16, 8), conv_stride=(10, 8, 4), num_conv_pos_embeddings=16,
                  num_conv_pos_embedding_groups=4, vocab_size=8, layerdrop=0.0)
# the layers that let padding in (plugins/deep/padding.py), each in a miniature of the model that has it
PADDING_CASES = {
    "wav2vec2-base layout (time-wise GroupNorm)": ("wav2vec2", {"feat_extract_norm": "group",
                                                               "do_stable_layer_norm": False}),
    "data2vec-audio (positional convolution of several layers)": ("data2vec-audio", {"conv_pos_kernel_size": 5}),
    "wav2vec2-conformer (depthwise convolutions)": ("wav2vec2-conformer", {"conformer_conv_depthwise_kernel_size": 3,
                                                                           "position_embeddings_type": "relative"}),
}


def save_tiny_backbone(model_type: str, directory: Path, **overrides: object) -> Path:
    import torch
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.for_model(model_type, **{**TINY_SIZES, **overrides})).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("case", list(PADDING_CASES))
def test_a_clip_gets_the_same_answer_alone_or_padded_in_a_batch(case, short_clips, tmp_path):
    from exporters import export_model
    from zoo.onnx_runtime import OnnxEmotionModel

    model_type, overrides = PADDING_CASES[case]
    waveforms, labels, _ = short_clips
    backbone = save_tiny_backbone(model_type, tmp_path / "backbone", **overrides)
    model = create_model("wav2vec2", **{**TINY_W2V, "backbone": str(backbone), "epochs": 1}).fit(waveforms, labels)
    # the swapped layers are saved once, as the backbone's own (save_pretrained directories stay loadable)
    assert all(key.startswith(("backbone.", "head.")) for key in model.network_.state_dict())
    short, long = waveforms[0][:9_000], waveforms[1]
    alone = model.predict_proba([short])
    padded = model.predict_proba([short, long])  # one batch: the short clip is zero-padded to the long one
    np.testing.assert_allclose(padded[:1], alone, atol=1e-6)
    # the exported graph holds the same masking: cut clips of many lengths, batched, agree
    report = export_model(model, tmp_path / "model.onnx", validate_on=(waveforms, labels))
    assert report.validation is not None and report.validation.passed
    np.testing.assert_allclose(OnnxEmotionModel(tmp_path / "model.onnx").run_batch([short, long])[0][:1], alone,
                               atol=1e-5)
    reloaded = _probabilities_in_fresh_process(model.save(tmp_path / "model"), [short], tmp_path)
    np.testing.assert_allclose(reloaded, alone, atol=1e-6)


def test_weighted_layers_train_with_a_backbone_that_drops_layers(short_clips, tmp_path):
    """LayerDrop skips layers while training, leaving fewer hidden states than layer weights: it is turned off."""
    waveforms, labels, _ = short_clips
    backbone = save_tiny_backbone("wav2vec2", tmp_path / "backbone", layerdrop=0.5)
    model = create_model("wav2vec2", **{**TINY_W2V, "backbone": str(backbone), "epochs": 2, "weighted_layers": True})
    model.fit(waveforms, labels)
    assert model.network_.backbone.config.layerdrop == 0.0
    assert model.predict_proba(waveforms[:2]).shape == (2, 6)


def test_a_backbone_that_takes_log_mel_features_is_refused_clearly(tmp_path):
    backbone = save_tiny_backbone("wav2vec2-bert", tmp_path / "bert", conformer_conv_depthwise_kernel_size=3)
    with pytest.raises(EmozooError, match="takes log-mel input features, not waveforms"):
        create_model("wav2vec2", **{**TINY_W2V, "backbone": str(backbone)}).fit([np.zeros(16_000)] * 2, [0, 1])
