"""The robustness benchmark on a small real subset: a tiny classic model trained on 60 RAVDESS clips,
scored on 30 clips of four held-out actors under three conditions; the records, the CLI, the bench results
schema and the leaderboard's robustness columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks import conditions as test_conditions
from benchmarks.leaderboard import build
from benchmarks.results import ResultsError, validate
from benchmarks.robustness import main as robustness_cli
from benchmarks.robustness import score_robustness
from tests.bench_support import results
from zoo import datasets
from zoo.api import load
from zoo.augment.augmenter import TRAINING_STREAM
from zoo.metrics import scores
from zoo.registry import create_model

TEST_ACTORS = {"Actor_13", "Actor_14", "Actor_15", "Actor_16"}
CHOSEN = ("clean", "white10", "gain-20", "babble10")


@pytest.fixture(scope="module")
def subset(ravdess_dir: Path) -> dict:
    """60 training clips (actors 1-12) and 30 test clips (actors 13-16), decoded at 16 kHz."""
    dataset = datasets.load(ravdess_dir)
    train = [i for i in dataset.items if i.speaker not in TEST_ACTORS][::8][:60]
    test = [i for i in dataset.items if i.speaker in TEST_ACTORS][::5][:30]
    return {"train": datasets.load_waveforms(train, 16_000), "test": datasets.load_waveforms(test, 16_000)}


@pytest.fixture(scope="module")
def saved_model(subset: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = subset["train"]
    model = create_model("librosa-rf", n_estimators=40, n_jobs=1)
    model.fit(train.waveforms, [item.label for item in train.items])
    return model.save(tmp_path_factory.mktemp("robust") / "rf")


def test_scores_every_condition_and_clean_like_predict(subset, saved_model):
    model = load(saved_model)
    test = subset["test"]
    truth = [item.label for item in test.items]
    chosen = [test_conditions.BY_ID[i] for i in CHOSEN[1:]]  # clean is added first
    record = score_robustness(model, test.waveforms, truth, speakers=[i.speaker for i in test.items],
                              conditions=chosen, keep_predictions=True, threads=1)
    assert [c["id"] for c in record["conditions"]] == list(CHOSEN)
    assert record["n_clips"] == 30 and set(record["families"]) == {"noise", "level", "babble"}
    clean = record["conditions"][0]
    predicted = model.predict(test.waveforms)
    assert clean["predicted"] == predicted.tolist()  # clean is exactly model.predict on the same clips
    expected = scores(np.array(truth), predicted)
    assert clean["accuracy"] == expected["accuracy"] and clean["uar"] == expected["uar"]
    assert clean["drop_accuracy"] == 0 and clean["agreement"] == 1.0
    for condition in record["conditions"][1:]:
        assert condition["n"] == 30 and condition["failed"] == 0
        assert condition["drop_accuracy"] == pytest.approx(clean["accuracy"] - condition["accuracy"])
        agreement = np.mean(np.array(condition["predicted"]) == predicted)
        assert condition["agreement"] == pytest.approx(agreement)
        low, high = condition["drop_accuracy_ci"]  # a speaker bootstrap of the same drop
        assert low <= condition["drop_accuracy"] <= high
    noise = record["families"]["noise"]["drop_accuracy"]
    assert noise == pytest.approx(record["conditions"][1]["drop_accuracy"])
    # seeded: the same record again
    again = score_robustness(model, test.waveforms, truth, speakers=[i.speaker for i in test.items],
                             conditions=chosen, keep_predictions=True, threads=1)
    assert again == record


def test_test_conditions_use_their_own_seeds_and_other_speakers_babble(subset):
    test = subset["test"]
    condition = test_conditions.BY_ID["babble10"]
    assert test_conditions.TEST_STREAM != TRAINING_STREAM
    first = test_conditions.generator(condition, test.waveforms[0]).random(4)
    assert np.array_equal(first, test_conditions.generator(condition, test.waveforms[0]).random(4))
    assert not np.array_equal(first, test_conditions.generator(test_conditions.BY_ID["white10"],
                                                               test.waveforms[0]).random(4))
    speakers = [item.speaker for item in test.items]
    sources = test_conditions.babble_sources(test.waveforms, speakers, 0)
    assert sources and all(all(s is not w for s in sources)
                           for w, who in zip(test.waveforms, speakers, strict=True) if who == speakers[0])
    with pytest.raises(ValueError, match="unknown condition"):
        test_conditions.select(["white11"])


def test_cli_writes_json_for_a_saved_model(ravdess_dir, saved_model, tmp_path):
    folder = _manifest_subset(ravdess_dir, tmp_path / "corpus", 6)
    out = tmp_path / "robust.json"
    outcome = CliRunner().invoke(robustness_cli, [
        str(saved_model), "--data", str(folder), "--test-speakers", "Actor_15,Actor_16", "--limit", "12",
        "--conditions", "gain+20,telephone", "--json", str(out), "--threads", "1"])
    assert outcome.exit_code == 0, outcome.output
    document = json.loads(out.read_text())
    assert document["data"]["test_speakers"] == ["Actor_15", "Actor_16"]
    (entry,) = document["models"]
    assert entry["kind"] == "directory"
    assert [c["id"] for c in entry["robustness"]["conditions"]] == ["clean", "gain+20", "telephone"]
    assert entry["robustness"]["n_clips"] <= 12
    assert "telephone" in outcome.output and "Δ acc" in outcome.output


def _manifest_subset(ravdess_dir: Path, folder: Path, step: int) -> Path:
    rows = list(csv.DictReader((ravdess_dir / "manifest.csv").open()))
    folder.mkdir()
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"])
        for row in rows[::step]:
            writer.writerow([str((ravdess_dir / row["path"]).resolve()), row["label"], row["speaker"]])
    return folder


def test_cli_folds_score_every_test_speaker_once_with_a_model_trained_without_it(ravdess_dir, tmp_path):
    folder = _manifest_subset(ravdess_dir, tmp_path / "corpus", 8)
    dataset = datasets.load(folder)
    pool = [i for i, s in enumerate(dataset.speakers) if s in TEST_ACTORS]
    out, work = tmp_path / "folds.json", tmp_path / "models"
    outcome = CliRunner().invoke(robustness_cli, [
        "librosa-rf", "--data", str(folder), "--test-speakers", ",".join(sorted(TEST_ACTORS)), "--folds", "2",
        "--conditions", "gain-20", "--param", "n_estimators=30", "--param", "augment=none",
        "--param", "calibrate=none", "--json", str(out), "--work-dir", str(work), "--threads", "1"])
    assert outcome.exit_code == 0, outcome.output
    document = json.loads(out.read_text())
    folds = document["data"]["folds"]
    tested = [set(fold["test_speakers"]) for fold in folds]
    assert len(folds) == 2 and not tested[0] & tested[1] and tested[0] | tested[1] == TEST_ACTORS
    for fold in folds:  # a fold trains on every clip but those of its own test speakers
        held_out = sum(1 for s in dataset.speakers if s in set(fold["test_speakers"]))
        assert fold["train_clips"] == len(dataset) - held_out == len(dataset) - fold["test_clips"]
    robustness = document["models"][0]["robustness"]
    assert robustness["n_clips"] == len(pool) == sum(f["n_clips"] for f in robustness["folds"])
    assert sorted(p.name for p in work.iterdir()) == ["fold1", "fold2"]
    clean, quieter = robustness["conditions"]
    assert clean["accuracy"] > 1 / 6 + 0.1  # pooled over both folds' speakers, above chance
    low, high = quieter["drop_accuracy_ci"]
    assert low <= quieter["drop_accuracy"] <= high
    assert "2 speaker folds pooled" in " ".join(outcome.output.split())  # the table title, maybe wrapped

    refused = CliRunner().invoke(robustness_cli, [str(work / "fold1"), "--data", str(folder), "--folds", "2"])
    assert refused.exit_code != 0 and "give a plugin name" in refused.output


def test_drop_interval_is_a_speaker_bootstrap_of_paired_hits():
    from benchmarks.robustness import drop_interval

    speakers = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    clean = np.ones(30, dtype=bool)
    same_drop = np.tile([True] * 7 + [False] * 3, 3)  # every speaker loses 3 clips of 10
    assert drop_interval(clean, same_drop, speakers) == pytest.approx([0.3, 0.3])
    uneven = np.array([True] * 10 + [True] * 5 + [False] * 5 + [False] * 10)  # drops 0, 0.5, 1 by speaker
    low, high = drop_interval(clean, uneven, speakers)
    assert 0.0 <= low < 0.5 < high <= 1.0
    assert drop_interval(clean, uneven, speakers) == [low, high]  # seeded


def robustness_record(drop: float) -> dict:
    conditions = [{"id": "clean", "family": "clean", "accuracy": 0.6, "uar": 0.6, "drop_accuracy": 0.0,
                   "drop_uar": 0.0}]
    conditions += [{"id": f"c-{family}", "family": family, "accuracy": 0.6 - drop, "uar": 0.6 - drop,
                    "drop_accuracy": drop, "drop_uar": drop} for family in test_conditions.FAMILIES]
    return {"conditions": conditions, "runtime": "native", "device": "cpu",
            "families": {f: {"drop_accuracy": drop, "drop_uar": drop} for f in test_conditions.FAMILIES}}


def test_leaderboard_shows_the_robustness_group(tmp_path):
    made = results([("sturdy", "native", "cpu", 10, 5.0), ("fragile", "native", "cpu", 11, 4.0),
                    ("fragile", "onnx", "cpu", 11, 3.0)])
    for record in made.records:
        if record["runtime"] == "native":
            record["robustness"] = robustness_record(0.02 if record["model"] == "sturdy" else 0.25)
    source = made.write(tmp_path / "results.json")
    board = build([source], tmp_path / "site")
    markdown = board.markdown.read_text()
    assert "| Δ level | Δ noise | Δ babble | Δ phone | Δ codec | Δ reverb |" in markdown
    lines = {line.split(" | ")[1] + "/" + line.split(" | ")[2]: line for line in markdown.splitlines()
             if line.startswith("| ") and line[2].isdigit()}
    assert lines["sturdy/native"].rstrip(" |").endswith("| 2.0 | 2.0 | 2.0 | 2.0 | 2.0 | 2.0")
    assert "| 25.0 | 25.0 |" in lines["fragile/native"] and "| – | – |" in lines["fragile/onnx"]
    assert "## Robustness" in markdown and "| sturdy (native/cpu) |" in markdown
    assert 'data-key="drop_noise"' in board.html.read_text()
    plain = build([results([("x", "native", "cpu", 10, 5.0)]).write(tmp_path / "plain.json")], tmp_path / "p")
    assert "Δ level" not in plain.markdown.read_text()  # no robustness measured: no such columns


def test_results_reject_a_malformed_robustness_record():
    made = results([("m", "native", "cpu", 10, 5.0)])
    made.records[0]["robustness"] = {"conditions": [{"id": "clean", "family": "clean", "accuracy": "high"}],
                                     "families": {}}
    with pytest.raises(ResultsError, match="robustness.conditions"):
        validate(made.as_dict())
    made.records[0]["robustness"] = robustness_record(0.1)
    validate(made.as_dict())


def test_bench_with_robustness_stores_it_in_the_records(subset, tmp_path):
    from benchmarks.bench import BenchSettings, run_bench
    from benchmarks.subjects import Split
    from benchmarks.timing import TimingConfig

    items = subset["train"].items[:40] + subset["test"].items[:12]
    dataset = datasets.Dataset(items, "ravdess-subset", "manifest")
    split = Split(dataset, np.arange(40), np.arange(40, 52))
    settings = BenchSettings(runtimes=["native"], devices=["cpu"], timing=TimingConfig(0, 1, 0.0),
                             offline_timing=TimingConfig(0, 1, 0.0), offline_batch_size=4, threads=1,
                             robustness=True)
    made = run_bench(["librosa-rf"], split, settings, tmp_path / "models", {None: {"n_estimators": 20}})
    assert made.records and all(r["robustness"]["n_clips"] == 12 for r in made.records)
    record = made.records[0]["robustness"]
    assert [c["id"] for c in record["conditions"]] == [c.id for c in test_conditions.CONDITIONS]
    assert set(record["families"]) == set(test_conditions.FAMILIES) and record["runtime"] == "native"
    validate(made.as_dict())


def test_test_speakers_match_exactly_after_the_corpus_prefix_or_by_corpus(emodb_dir, ravdess_dir):
    from benchmarks.robustness import speakers_matching
    from zoo.errors import EmozooError

    dataset = datasets.load_all([emodb_dir, ravdess_dir])
    speakers = np.array([str(s) for s in dataset.speakers])
    corpus = speakers_matching(dataset, ["ravdess"])
    assert len(corpus) == sum(s.startswith("ravdess/") for s in speakers) > 0
    one = speakers_matching(dataset, ["Actor_13"])
    assert set(speakers[one]) == {"ravdess/Actor_13"}
    assert set(speakers_matching(dataset, ["ravdess/Actor_13,emodb"])) == set(one) | {
        i for i, s in enumerate(speakers) if s.startswith("emodb/")}
    with pytest.raises(EmozooError, match="no clips of speaker 'Actor_99'"):
        speakers_matching(dataset, ["Actor_99"])
