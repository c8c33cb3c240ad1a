"""Dataset layouts and speaker-grouped splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone
from zoo import datasets
from zoo.errors import DatasetError
from zoo.labels import LABELS


def touch_clips(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(0.2), 16_000)


def test_manifest_corpora_keep_speakers(ravdess_dir: Path, emodb_dir: Path) -> None:
    ravdess = datasets.load(ravdess_dir)
    assert ravdess.layout == "manifest" and len(ravdess) == 703
    assert len(set(ravdess.speakers)) == 16
    emodb = datasets.load(emodb_dir)
    assert len(emodb) == 454 and len(set(emodb.speakers)) == 10
    assert set(emodb.labels) == set(range(len(LABELS)))


def test_competition_layout(dacon_dir: Path) -> None:
    train = datasets.load(dacon_dir)
    assert train.layout == "competition" and len(train) == 320
    assert train.items[0].id == "TRAIN_0000" and train.items[0].path.is_file()
    test = datasets.load(dacon_dir / "test.csv")
    assert len(test) == 120
    assert all(item.label is not None for item in test)  # filled from test_answers.csv


@pytest.mark.parametrize(
    ("corpus", "names", "expected"),
    [
        ("ravdess", ["Actor_01/03-01-05-01-01-01-01.wav", "Actor_02/03-01-02-01-01-01-02.wav"],
         [("angry", "Actor_01")]),
        ("crema-d", ["1001_DFA_ANG_XX.wav", "1002_IEO_SAD_HI.wav"], [("angry", "1001"), ("sad", "1002")]),
        ("emodb", ["03a01Wa.wav", "08b02Lb.wav", "16a05Tc.wav"], [("angry", "03"), ("sad", "16")]),
        ("tess", ["OAF_back_angry.wav", "YAF_dog_ps.wav", "YAF_dog_happy.wav"],
         [("angry", "OAF"), ("happy", "YAF")]),
        ("savee", ["DC_a01.wav", "JK_sa03.wav", "KL_su01.wav"], [("angry", "DC"), ("sad", "JK")]),
    ],
)
def test_corpora_by_file_naming(tmp_path: Path, corpus: str, names: list[str],
                                expected: list[tuple[str, str]]) -> None:
    touch_clips(tmp_path, names)
    dataset = datasets.load(tmp_path)
    assert dataset.layout == corpus
    assert sorted((LABELS[i.label], i.speaker) for i in dataset.items) == sorted(expected)
    assert sum(dataset.dropped.values()) == len(names) - len(expected)  # calm, boredom, surprise


def test_folder_per_label(tmp_path: Path) -> None:
    touch_clips(tmp_path, ["angry/a.wav", "Happy/b.flac", "calm/c.wav"])
    dataset = datasets.load(tmp_path)
    assert dataset.layout == "label-folders"
    assert sorted(LABELS[i.label] for i in dataset.items) == ["angry", "happy"]


def test_unrecognised_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DatasetError, match="not a recognised dataset layout"):
        datasets.load(tmp_path)


def test_speaker_folds_never_share_a_speaker(ravdess_dir: Path) -> None:
    dataset = datasets.load(ravdess_dir)
    folds = datasets.speaker_kfold(dataset, 5)
    assert len(folds) == 5
    seen_test = np.zeros(len(dataset), dtype=int)
    for train, test in folds:
        train_speakers = {dataset.items[i].speaker for i in train}
        test_speakers = {dataset.items[i].speaker for i in test}
        assert not train_speakers & test_speakers
        seen_test[test] += 1
    assert (seen_test == 1).all()


def test_split_without_speakers_refuses(dacon_dir: Path) -> None:
    with pytest.raises(DatasetError, match="speaker-independent split is impossible"):
        datasets.speaker_split(datasets.load(dacon_dir))


def test_load_waveforms_skips_bad_files_and_keeps_the_rest(tmp_path: Path) -> None:
    touch_clips(tmp_path, ["angry/good.wav", "sad/good.wav"])
    (tmp_path / "sad" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    dataset = datasets.load(tmp_path)
    with pytest.raises(Exception, match="broken.wav"):
        datasets.load_waveforms(dataset.items, 16_000)
    loaded = datasets.load_waveforms(dataset.items, 16_000, on_error="skip")
    assert len(loaded.waveforms) == 2
    assert [item.path.name for item, _ in loaded.failures] == ["broken.wav"]
