"""`emozoo predict --engine ray`: Ray Data batch scoring, against the single-process path on real audio.

One local Ray (2 CPUs, small object store, no dashboard, no usage reports) serves the whole session.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import ray
import soundfile
from click.testing import CliRunner

from tests.conftest import tone
from zoo.bundled import default_model_path, demo_clips_dir
from zoo.cli.main import cli
from zoo.distributed import engine
from zoo.distributed.engine import RayOptions, score_with_ray
from zoo.distributed.ledger import SUMMARY_FILE, partition_files
from zoo.distributed.partitions import PROBABILITY_COLUMNS, read_partition
from zoo.distributed.timeline_engine import timeline_schema
from zoo.errors import EmozooError
from zoo.labels import LABELS

QUIET = RayOptions(progress=False)


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by ray.init: nothing leaves the machine
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2, log_to_driver=False,
             logging_level="warning")
    yield
    ray.shutdown()


def options(**changes: object) -> RayOptions:
    return RayOptions(**{**QUIET.__dict__, **changes})


def rows_by_path(out: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for file in partition_files(out):
        for row in read_partition(file):
            assert row["path"] not in rows, f"{row['path']} scored twice"
            rows[row["path"]] = row
    return rows


def single_process(inputs: list[str], tmp_path: Path, *extra: str) -> dict[str, dict[str, str]]:
    target = tmp_path / "single.csv"
    outcome = CliRunner().invoke(cli, ["predict", str(default_model_path()), *inputs, "--format", "csv",
                                       "-o", str(target), "--on-error", "skip", *extra])
    assert outcome.exit_code == 0, outcome.output
    with target.open(newline="") as handle:
        return {str(Path(row["path"]).absolute()): row for row in csv.DictReader(handle)}


def assert_same_predictions(ray_rows: dict[str, dict], single: dict[str, dict[str, str]]) -> None:
    assert set(ray_rows) == set(single)
    for path, expected in single.items():
        got = ray_rows[path]
        assert got["error"] is None, got["error"]
        assert (got["id"], got["label"], got["true"] or "") == (expected["id"], expected["label"], expected["true"])
        # predict's CSV rounds to 6 decimals; batches differ in which clips are padded together (float32)
        assert np.allclose([got[c] for c in PROBABILITY_COLUMNS], [float(expected[c]) for c in PROBABILITY_COLUMNS],
                           atol=2e-6), path


class Stop(Exception):
    pass


def ravdess_sample(ravdess_dir: Path, folder: Path, every: int = 6) -> Path:
    """A manifest of every `every`-th RAVDESS clip (all actors and emotions; absolute paths, true labels)."""
    with (ravdess_dir / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[::every]
    listing = folder / "manifest.csv"
    with listing.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows({**row, "path": str((ravdess_dir / row["path"]).resolve())} for row in rows)
    return listing


def test_killed_halfway_a_rerun_scores_only_the_rest_and_every_clip_equals_predict(
        local_ray: None, ravdess_dir: Path, tmp_path: Path) -> None:
    listing = ravdess_sample(ravdess_dir, tmp_path)  # 118 clips: four decode blocks, so both actors work
    clips = sum(1 for _ in listing.open()) - 1
    out = tmp_path / "out"
    written: list[Path] = []

    def stop_after_three(path: Path) -> None:  # the job dies once three partitions are on disk
        written.append(path)
        if len(written) == 3:
            raise Stop

    with pytest.raises(Stop):
        score_with_ray(default_model_path(), [str(listing)], out, options(partition_rows=20), stop_after_three)
    first = rows_by_path(out)
    assert len(first) == 60 and not (out / SUMMARY_FILE).exists()

    summary = score_with_ray(default_model_path(), [str(listing)], out, options(partition_rows=25))
    assert (summary.run["listed"], summary.run["already_done"], summary.run["scored"]) == (clips, 60, clips - 60)
    assert (summary.rows, summary.scored, summary.failed, summary.stale_rows) == (clips, clips, 0, 0)
    assert summary.partitions == 3 + math.ceil((clips - 60) / 25)
    assert json.loads((out / SUMMARY_FILE).read_text())["scored"] == clips
    after = rows_by_path(out)  # asserts that no clip was scored twice
    assert all(after[path] == row for path, row in first.items())
    assert all(row["true"] for row in after.values())  # the manifest's labels came through
    assert_same_predictions(after, single_process([str(listing)], tmp_path))


def test_bad_files_are_recorded_and_the_others_scored(local_ray: None, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("angry", "sad", "happy"):
        (folder / f"{name}.flac").write_bytes((demo_clips_dir() / f"{name}.flac").read_bytes())
    (folder / "truncated.wav").write_bytes((demo_clips_dir() / "fear.flac").read_bytes()[:300])
    (folder / "empty.wav").write_bytes(b"")
    soundfile.write(folder / "silence.wav", np.zeros(16_000, dtype=np.float32), 16_000)
    soundfile.write(folder / "long.wav", tone(seconds=30.0), 16_000)
    out = tmp_path / "out"
    outcome = CliRunner().invoke(cli, ["predict", str(default_model_path()), str(folder), "--engine", "ray",
                                       "--format", "parquet", "-o", str(out), "--max-duration", "20"])
    assert outcome.exit_code == 0, outcome.output
    assert "recorded 4 bad file(s)" in outcome.output
    summary = json.loads((out / SUMMARY_FILE).read_text())
    failures = {Path(f["path"]).name: f["error"] for f in summary["failures"]}
    assert sorted(failures) == ["empty.wav", "long.wav", "silence.wav", "truncated.wav"]
    assert all(error.startswith(str(folder / name)) for name, error in failures.items())
    assert "over the 20 s limit" in failures["long.wav"]
    assert (summary["scored"], summary["failed"]) == (3, 4)
    assert all(p.suffix == ".parquet" for p in partition_files(out))
    single = single_process([str(folder)], tmp_path, "--max-duration", "20")
    assert_same_predictions({k: v for k, v in rows_by_path(out).items() if v["error"] is None}, single)


def test_a_scoring_actor_that_dies_is_restarted_and_its_batch_retried(local_ray: None, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "died"

    class DiesOnce(engine.Scorer):  # defined here so that Ray ships it by value to the actor
        def __call__(self, batch: object) -> object:
            if not marker.exists():  # the first batch kills the actor's process mid-way, once
                marker.write_text("died")
                os._exit(1)
            return super().__call__(batch)

    monkeypatch.setattr(engine, "Scorer", DiesOnce)
    summary = score_with_ray(default_model_path(), [str(demo_clips_dir())], tmp_path / "out", QUIET)
    assert marker.exists()
    assert (summary.rows, summary.scored, summary.failed) == (6, 6, 0)
    assert_same_predictions(rows_by_path(tmp_path / "out"), single_process([str(demo_clips_dir())], tmp_path))


def test_an_output_folder_of_another_model_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "run.json").parent.mkdir()
    (out / "run.json").write_text(json.dumps({"model": "other.onnx", "model_sha256": "0" * 64}))
    with pytest.raises(EmozooError, match="another model"):
        score_with_ray(default_model_path(), [str(demo_clips_dir())], out, QUIET)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(EmozooError, match="refusing to replace it"):
        score_with_ray(default_model_path(), [str(demo_clips_dir())], tmp_path / "mine", QUIET)


def test_without_ray_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    script = ("import sys; sys.modules['ray'] = None\n"  # as if the extra were not installed
              "from click.testing import CliRunner; from zoo.cli.main import cli as main\n"
              f"r = CliRunner().invoke(main, ['predict', {str(demo_clips_dir() / 'sad.flac')!r}, '--engine', 'ray',"
              f" '-o', {str(tmp_path / 'out')!r}])\n"
              "print(r.exit_code); print(r.output)\n"
              f"r = CliRunner().invoke(main, ['predict', {str(demo_clips_dir() / 'sad.flac')!r}, '--format', 'csv'])\n"
              "print(r.exit_code); print(r.output)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ))
    lines = result.stdout.splitlines()
    assert lines[0] == "1" and "pip install 'emozoo[ray]'" in lines[1], result.stdout + result.stderr
    assert not (tmp_path / "out").exists()
    assert "0" in lines and any(line.startswith("sad.flac,") for line in lines), result.stdout  # local engine works


def test_timeline_on_ray_gives_the_single_process_segments_and_resumes(local_ray: None, tmp_path: Path) -> None:
    from zoo.distributed.timeline_engine import timeline_with_ray
    from zoo.timeline import timeline

    folder = tmp_path / "talks"
    folder.mkdir()
    clips = [soundfile.read(demo_clips_dir() / f"{name}.flac", dtype="float32")[0] for name in ("angry", "sad")]
    pause = np.zeros(16_000, dtype=np.float32)
    soundfile.write(folder / "talk.flac", np.concatenate([pause, clips[0], pause, clips[1], pause]), 16_000)
    (folder / "fear.flac").write_bytes((demo_clips_dir() / "fear.flac").read_bytes())
    soundfile.write(folder / "quiet.flac", pause, 16_000)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "out"
    summary = timeline_with_ray(default_model_path(), [str(folder)], out, options())
    expected = {str(Path(r.file).absolute()): r for r in timeline(default_model_path(), [str(folder)], on_error="skip")}
    assert summary.files == 4 and summary.failed == 1 == sum(1 for r in expected.values() if r.error)
    rows: dict[str, list[dict]] = {}
    for file in partition_files(out):
        for row in read_partition(file, timeline_schema()):
            rows.setdefault(row["path"], []).append(row)
    assert set(rows) == set(expected)
    for path, result in expected.items():
        if result.error:
            assert [r["error"] for r in rows[path]] == [result.error]
        elif not result.segments:
            assert [(r["start"], r["error"]) for r in rows[path]] == [(None, None)]
        else:
            assert [{k: r[k] for k in ("start", "end", "label", "confidence", *LABELS)} for r in rows[path]] == [
                {k: v for k, v in segment.items() if k != "file"} for segment in result.rows()]
    assert summary.segments == sum(len(r.segments) for r in expected.values()) >= 3
    again = timeline_with_ray(default_model_path(), [str(folder)], out, options())
    assert (again.run["already_done"], again.run["processed"], again.segments) == (4, 0, summary.segments)
