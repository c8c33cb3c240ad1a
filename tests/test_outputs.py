"""Where emozoo writes: never over the user's own files or folders, and with the permissions the umask asks for."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.storage import OutputPathError, atomic_directory, atomic_write_text, check_directory_target

REPO_ROOT = Path(__file__).resolve().parents[1]


def emozoo(*args: str | Path, cwd: Path | None = None, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, preexec_fn=None if umask is None else lambda: os.umask(umask))


@pytest.fixture(scope="module")
def tiny_corpus(emodb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two EmoDB clips per emotion (a manifest with absolute paths): enough to train a real model quickly."""
    rows = list(csv.DictReader((emodb_dir / "manifest.csv").open()))
    chosen: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if len(chosen.setdefault(row["label"], [])) < 2:
            chosen[row["label"]].append(row)
    path = tmp_path_factory.mktemp("tiny-corpus") / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"])
        for row in (r for group in chosen.values() for r in group):
            writer.writerow([str((emodb_dir / row["path"]).resolve()), row["label"], row["speaker"]])
    return path


def user_folder(root: Path) -> Path:
    folder = root / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "sub" / "y.txt").write_text("y\n")
    return folder


def leftovers(*folders: Path) -> list[str]:
    """Hidden staging or retired folders (`.NAME.XXXX.staging`, `..XXXX.old`) left behind."""
    return [p.name for folder in folders for p in folder.iterdir() if p.name.startswith(".")]


# -- train --out ------------------------------------------------------------------------------------------------
def test_train_refuses_a_folder_holding_other_files_and_deletes_nothing(tiny_corpus: Path, tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    result = emozoo("train", "librosa-logreg", "--data", tiny_corpus, "--out", folder)
    assert result.returncode == 1, result.stderr
    assert "exists and is not a saved emozoo model" in result.stderr and "--force" in result.stderr
    assert "notes.txt" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (folder / "notes.txt").read_text() == "my notes\n" and (folder / "sub" / "y.txt").is_file()
    assert leftovers(tmp_path) == []


def test_train_refuses_an_ordinary_file_and_force_replaces_it_with_a_model(tiny_corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_text("an ordinary file\n")
    refused = emozoo("train", "librosa-logreg", "--data", tiny_corpus, "--out", target)
    assert refused.returncode == 1 and "exists and is a file" in refused.stderr, refused.stderr
    assert target.read_text() == "an ordinary file\n"

    forced = emozoo("train", "librosa-logreg", "--data", tiny_corpus, "--out", target, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (target / "manifest.json").is_file()
    again = emozoo("train", "librosa-logreg", "--data", tiny_corpus, "--out", target)  # a model: replaced as before
    assert again.returncode == 0, again.stderr
    assert json.loads((target / "manifest.json").read_text())["plugin"] == "librosa-logreg"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("out", [".", "..", "./"])
def test_train_into_the_current_directory_or_a_parent_is_refused_cleanly(tiny_corpus: Path, tmp_path: Path,
                                                                         out: str) -> None:
    here = tmp_path / "work"
    here.mkdir()
    (here / "keep.txt").write_text("keep\n")
    for _ in range(2):
        result = emozoo("train", "librosa-logreg", "--data", tiny_corpus, "--out", out, "--force", cwd=here)
        assert result.returncode == 1, result.stderr
        assert "current directory" in result.stderr and "Traceback" not in result.stderr
        assert "Errno" not in result.stderr
    assert leftovers(here, tmp_path) == [] and (here / "keep.txt").is_file()


def test_mount_points_are_never_replaced() -> None:
    mounts = [p for p in (Path("/proc"), Path("/sys"), Path("/dev")) if os.path.ismount(p)]
    if not mounts:
        pytest.skip("no mount point to try")
    with pytest.raises(OutputPathError, match="is a mount point"):
        check_directory_target(mounts[0], force=True)


def test_a_folder_replaced_only_when_ours_empty_or_forced(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    with atomic_directory(ours) as staging:
        (staging / "marker").write_text("1")
    with pytest.raises(OutputPathError, match="refusing to replace it"):
        with atomic_directory(ours) as staging:
            (staging / "marker").write_text("2")
    assert (ours / "marker").read_text() == "1"
    with atomic_directory(ours, replace_if=lambda folder: (folder / "marker").is_file()) as staging:
        (staging / "marker").write_text("3")
    assert (ours / "marker").read_text() == "3"
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as staging:
        (staging / "marker").write_text("4")
    assert (tmp_path / "empty" / "marker").read_text() == "4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "ours"]


# -- file outputs ----------------------------------------------------------------------------------------------
def test_predict_output_naming_a_folder_is_one_clear_line(tmp_path: Path) -> None:
    from zoo.bundled import demo_clips_dir

    result = emozoo("predict", demo_clips_dir() / "angry.flac", "-o", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path}: is a folder; give the name of a file to write"
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_to_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="is a folder"):
        atomic_write_text(tmp_path, "text")


# -- permissions -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_outputs_honour_the_umask(tiny_corpus: Path, tmp_path: Path, umask: int) -> None:
    """Model folders, manifest.json, predictions, .onnx files, leaderboard pages: what a new file would get."""
    from zoo.bundled import default_model_path, demo_clips_dir

    file_mode, folder_mode = 0o666 & ~umask, 0o777 & ~umask
    model = tmp_path / "model"
    trained = emozoo("train", "librosa-logreg", "--data", tiny_corpus, "--out", model, umask=umask)
    assert trained.returncode == 0, trained.stderr
    submission = tmp_path / "out" / "predictions.csv"
    predicted = emozoo("predict", default_model_path(), demo_clips_dir(), "--format", "csv", "-o", submission,
                       umask=umask)
    assert predicted.returncode == 0, predicted.stderr
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from zoo.storage import atomic_directory, atomic_write_bytes\n"
        "root = Path(sys.argv[1])\n"
        "atomic_write_bytes(root / 'exported.onnx', b'onnx bytes')\n"
        "with atomic_directory(root / 'checkpoint') as staging:\n"
        "    (staging / 'state.json').write_text('{}')\n"
    )
    helpers = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                             cwd=REPO_ROOT, preexec_fn=lambda: os.umask(umask))
    assert helpers.returncode == 0, helpers.stderr

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(model) == folder_mode and mode(tmp_path / "checkpoint") == folder_mode
    for path in (model / "manifest.json", model / "model.skops", submission, tmp_path / "exported.onnx"):
        assert mode(path) == file_mode, (path, oct(mode(path)))
