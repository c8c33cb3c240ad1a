"""The ensemble plugin on real speech: two cheap classic members fitted on RAVDESS speakers, scored on an unseen
one; save/load round-trip; one ONNX file with one shared feature graph that validates; stacking's speaker
folds; clear errors for bad member lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import zoo
from exporters import export_model
from exporters.classic import feature_model
from plugins.ensemble.model import speaker_folds
from zoo import datasets
from zoo.calibration import Calibration
from zoo.errors import EmozooError
from zoo.model import fit_with_speakers

TRAIN_SPEAKERS = ("Actor_01", "Actor_02", "Actor_05")  # as tests/test_export.py: the session cache is shared
HELD_OUT_SPEAKER = "Actor_06"
# cheap members: no augmented copies, no temperature fitted in training (one is set by hand below)
MEMBERS = ("librosa-logreg(augment=none,calibrate=\"none\",n_jobs=1),"
           "librosa-rf(augment=none,calibrate=\"none\",n_estimators=60,n_jobs=1)")


@pytest.fixture(scope="module")
def speech(ravdess_dir: Path) -> dict:
    dataset = datasets.load(ravdess_dir)
    train = dataset.subset([i for i, item in enumerate(dataset) if item.speaker in TRAIN_SPEAKERS])
    test = dataset.subset([i for i, item in enumerate(dataset) if item.speaker == HELD_OUT_SPEAKER])
    return {
        "train": (datasets.load_waveforms(train.items, 16_000).waveforms, train.labels,
                  [item.speaker for item in train.items]),
        "test": (datasets.load_waveforms(test.items, 16_000).waveforms, test.labels),
    }


@pytest.fixture(scope="module")
def mean_ensemble(speech: dict) -> zoo.EmotionModel:
    waveforms, labels, speakers = speech["train"]
    model = fit_with_speakers(zoo.create_model("ensemble", members=MEMBERS), waveforms, labels, speakers)
    # a member with a confidence temperature: the ensemble must apply it natively, keep it when saved and
    # put it in the ONNX graph
    model.members_[0].calibration_ = Calibration(method="temperature", temperature=1.7)
    return model


@pytest.fixture(scope="module")
def stacked_ensemble(speech: dict) -> zoo.EmotionModel:
    waveforms, labels, speakers = speech["train"]
    model = zoo.create_model("ensemble", members=MEMBERS, combine="stack", stack_folds=3)
    return fit_with_speakers(model, waveforms, labels, speakers)


def test_ensemble_beats_chance_on_an_unseen_speaker(mean_ensemble, speech: dict) -> None:
    waveforms, labels = speech["test"]
    accuracy = float((mean_ensemble.predict(waveforms) == labels).mean())
    assert accuracy > 1 / 6 + 0.15, accuracy
    probabilities = mean_ensemble.predict_proba(waveforms[:5])
    members = [m.predict_proba(waveforms[:5]) for m in mean_ensemble.members_]
    np.testing.assert_allclose(probabilities, (members[0] + members[1]) / 2, atol=1e-12)


def test_save_load_round_trip_predicts_the_same(mean_ensemble, speech: dict, tmp_path: Path) -> None:
    mean_ensemble.save(tmp_path / "ensemble")
    assert sorted(p.name for p in (tmp_path / "ensemble" / "members").iterdir()) == ["0", "1"]
    assert not list((tmp_path / "ensemble").rglob("*.pkl"))
    loaded = zoo.load(tmp_path / "ensemble")
    assert [m.name for m in loaded.members_] == ["librosa-logreg", "librosa-rf"]
    assert loaded.members_[0].calibration_.temperature == 1.7
    clips = speech["test"][0][:8]
    np.testing.assert_array_equal(loaded.predict_proba(clips), mean_ensemble.predict_proba(clips))


@pytest.mark.parametrize("which", ["mean", "stack"])
def test_one_onnx_file_with_one_shared_feature_graph_validates(which: str, mean_ensemble, stacked_ensemble,
                                                               speech: dict, tmp_path: Path) -> None:
    model = mean_ensemble if which == "mean" else stacked_ensemble
    waveforms, labels = speech["test"]
    report = export_model(model, tmp_path / "ensemble.onnx", validate_on=(waveforms[:16], labels[:16]))
    assert report.validation.passed and report.validation.agreement == 1.0
    graph = onnx.load(tmp_path / "ensemble.onnx").graph
    member = model.members_[0]
    one_copy = len(feature_model(member.config, int(member.pipeline_.n_features_in_), 17).graph.node)
    # both members use the same feature set: one copy of its graph plus two small heads, never two copies
    assert one_copy <= len(graph.node) < 2 * one_copy
    produced = {name for node in graph.node for name in node.output}
    assert any(n.startswith("features0/") for n in produced)
    assert not any(n.startswith("features1/") for n in produced)


def test_int8_leaves_the_nested_feature_graphs_in_float(mean_ensemble, speech: dict, tmp_path: Path) -> None:
    """The members' feature graphs sit under prefixes (features0/features/...): int8 must not touch their DFT and
    filterbank matrices, which once made an int8 ensemble agree with the float one on 7 % of clips."""
    waveforms, labels = speech["test"]
    report = export_model(mean_ensemble, tmp_path / "int8.onnx", quantize="int8",
                          validate_on=(waveforms[:16], labels[:16]))
    assert report.validation.passed and report.validation.agreement == 1.0


def test_stacking_learns_on_out_of_fold_speakers(stacked_ensemble, speech: dict) -> None:
    waveforms, labels, speakers = speech["train"]
    folds = speaker_folds(labels, speakers, None, 3, 0)
    assert len(folds) == 3
    for train, test in folds:
        assert not {speakers[i] for i in train} & {speakers[i] for i in test}
    assert stacked_ensemble.combiner_.coef.shape == (6, 12)
    accuracy = float((stacked_ensemble.predict(speech["test"][0]) == speech["test"][1]).mean())
    assert accuracy > 1 / 6 + 0.15, accuracy
    with pytest.raises(EmozooError, match="speaker id"):
        zoo.create_model("ensemble", members=MEMBERS, combine="stack").fit(waveforms[:20], labels[:20])


@pytest.mark.parametrize(("params", "message"), [
    ({"members": "librosa-svc,no-such-model"}, "ensemble member no-such-model: unknown model 'no-such-model'"),
    ({"members": "librosa-svc(Cx=3),librosa-logreg"}, "ensemble member librosa-svc.*no parameter 'Cx'"),
    ({"members": "librosa-svc(C=3,librosa-logreg"}, "is never closed"),
    ({"members": "emonet(channels=[8,16),librosa-logreg"}, "without its opening bracket"),
    ({"members": "librosa-svc"}, "at least two members"),
    ({"members": "librosa-svc,librosa-logreg", "weights": "1,2,3"}, "3 weight.* for 2 members"),
    ({"members": "librosa-svc,librosa-logreg", "combine": "max"}, "combine='max'"),
    ({"members": "librosa-svc,ensemble"}, "cannot be a member"),
])
def test_bad_member_lists_name_the_problem(params: dict, message: str) -> None:
    with pytest.raises(EmozooError, match=message):
        zoo.create_model("ensemble", **params)


def test_member_params_and_weights_parse() -> None:
    model = zoo.create_model("ensemble", members="librosa-svc(C=3,gamma=0.01),librosa-svc(C=30)", weights="3,1")
    assert [(m.C, m.gamma) for m in model.members_] == [(3, 0.01), (30, "scale")]
    listed = zoo.create_model("ensemble", members="emonet(channels=[8,16],epochs=1),librosa-logreg")
    assert (list(listed.members_[0].channels), listed.members_[0].epochs) == ([8, 16], 1)
    assert model.weights_ == [0.75, 0.25]


def test_a_network_and_a_classic_model_make_one_validated_onnx_file(short_clips, tmp_path: Path) -> None:
    """A deep member enters the graph whole beside a classic member's feature graph and head."""
    waveforms, labels, speakers = short_clips
    members = ("emonet(channels=[8,16],epochs=2,batch_size=8,max_train_seconds=1.5,num_threads=1,n_jobs=1),"
               "librosa-logreg(augment=none,calibrate=\"none\",n_jobs=1)")
    model = fit_with_speakers(zoo.create_model("ensemble", members=members), waveforms, labels, speakers)
    native = model.predict_proba(waveforms)
    np.testing.assert_allclose(native, np.mean([m.predict_proba(waveforms) for m in model.members_], axis=0),
                               atol=1e-9)
    report = export_model(model, tmp_path / "ensemble.onnx", validate_on=(waveforms, labels))
    assert report.validation.passed and report.validation.agreement == 1.0
    assert list((tmp_path).glob("*.onnx*")) == [tmp_path / "ensemble.onnx"]  # one file, no external data
    # both members read emorobust-nf: ONE feature graph feeds emonet's statistics input and logreg's head
    import onnx

    from exporters.torch_models import EmoNetExporter

    nodes = onnx.load(tmp_path / "ensemble.onnx").graph.node
    pieces = [n.output[0].split("/")[0] for n in nodes if "/" in n.output[0]]
    assert {p for p in pieces if p.startswith("features")} == {"features0"}
    network_alone = EmoNetExporter().network_graph(model.members_[0], report.opset).graph.node
    assert pieces.count("member0") == len(network_alone) + 3  # + the Identities wiring its three inputs
