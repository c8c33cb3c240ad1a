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


def write_listing(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_malformed_rows_are_reported_with_file_line_and_id(dacon_dir: Path, tmp_path: Path) -> None:
    test = dacon_dir / "test"
    listing = write_listing(tmp_path / "test.csv", (
        "id,path\n"
        f"TEST_0000,{test / 'TEST_0000.wav'}\n"
        "TEST_0001\n"  # no path column at all
        "TEST_0002,\n"  # a blank path
        f"TEST_0003,{test / 'TEST_0003.wav'}\n"
        f'TEST_0004,"{test / "TEST_0004.wav"}\n'  # an unclosed quote swallows the next line
        f"TEST_0005,{test / 'TEST_0005.wav'}\n"
    ))
    dataset = datasets.load(listing)
    with pytest.raises(DatasetError) as caught:
        datasets.load_waveforms(dataset.items, 16_000)
    assert str(caught.value) == f"{listing}: line 3 (id TEST_0001): no path value (the row has 1 of the 2 fields)"

    loaded = datasets.load_waveforms(dataset.items, 16_000, on_error="skip")
    assert [item.id for item in loaded.items] == ["TEST_0000", "TEST_0003"]
    messages = [message for _, message in loaded.failures]
    assert messages[1] == f"{listing}: line 4 (id TEST_0002): the path column is blank"
    assert messages[2].startswith(f"{listing}: line 6 (id TEST_0004): malformed quoting")


def test_a_manifest_row_without_a_label_is_reported_too(emodb_dir: Path, tmp_path: Path) -> None:
    clip = emodb_dir / "03a01Wa.wav"
    listing = write_listing(tmp_path / "manifest.csv", f"path,label,speaker\n{clip},angry,03\n{clip}\n")
    loaded = datasets.load_waveforms(datasets.load(listing).items, 16_000, on_error="skip")
    assert len(loaded.items) == 1
    assert loaded.failures[0][1] == f"{listing}: line 3: no label value (the row has 1 of the 3 fields)"


def test_repeated_ids_in_a_competition_listing_are_refused(dacon_dir: Path, tmp_path: Path) -> None:
    rows = [f"TEST_{i:04d},{dacon_dir / 'test' / f'TEST_{i:04d}.wav'}" for i in range(4)]
    rows.append(f"TEST_0001,{dacon_dir / 'test' / 'TEST_0009.wav'}")
    listing = write_listing(tmp_path / "test.csv", "id,path\n" + "\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"ids must be unique; repeated: TEST_0001 \(lines 3, 6\)"):
        datasets.load(listing)


def test_ids_are_paths_relative_to_the_folder_given_with_their_suffix(tmp_path: Path) -> None:
    touch_clips(tmp_path / "folders", ["angry/a.wav", "sad/b.flac"])
    assert sorted(i.id for i in datasets.load(tmp_path / "folders")) == ["angry/a.wav", "sad/b.flac"]
    touch_clips(tmp_path / "named", ["03a01Wa.wav", "sub/08b02Tb.wav"])
    assert sorted(i.id for i in datasets.load(tmp_path / "named")) == ["03a01Wa.wav", "sub/08b02Tb.wav"]
    touch_clips(tmp_path / "listed", ["x/one.wav"])
    write_listing(tmp_path / "listed" / "manifest.csv", "path,label,speaker\nx/one.wav,happy,s1\n")
    assert [i.id for i in datasets.load(tmp_path / "listed")] == ["x/one.wav"]


def test_skipping_every_clip_is_an_error_not_an_empty_success(tmp_path: Path) -> None:
    touch_clips(tmp_path, ["angry/a.wav"])
    (tmp_path / "angry" / "a.wav").write_bytes(b"not audio")
    with pytest.raises(DatasetError, match="none of the 1 clips could be read: .*a.wav"):
        datasets.load_waveforms(datasets.load(tmp_path).items, 16_000, on_error="skip")
