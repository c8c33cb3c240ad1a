"""Long recordings: Silero VAD on onnxruntime, streamed segmentation, `zoo.timeline` and `emozoo timeline`
(POST /v1/timeline: tests/test_serve_timeline.py).

The acceptance recording is built from clips of speakers the bundled default model never trained on (RAVDESS
actor 16, held out when it was built, and NEMO speaker EB0, a corpus it never saw), each trimmed to its
speech, joined by pauses of random length, half digital silence and half noise.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
from click.testing import CliRunner

import zoo
from tests.timeline_support import (
    RATE,
    SEED,
    Recording,
    held_out_clips,
    join,
    spans,
    write_bad_files,
)
from zoo.api import load
from zoo.bundled import default_model_path
from zoo.cli.main import cli
from zoo.errors import AudioError, EmozooError
from zoo.labels import LABELS
from zoo.segments import Segmenter, SegmentParams, fixed_windows
from zoo.timeline import FileTimeline, smooth_probabilities, timeline_file
from zoo.vad import FRAME_MODEL, SEQUENCE_MODEL, EnergyVad, SileroVad, VadFallbackWarning, load_vad, silero_model_path

FRAME_SECONDS = 512 / RATE
BOUNDARY_TOLERANCE = 0.3
TIMELINE = sys.modules["zoo.timeline"]  # the module; `zoo.timeline` itself is the function


# -- recordings ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    clips = held_out_clips()
    path = tmp_path_factory.mktemp("timeline") / "long.flac"
    truth = join([clip for clip, _, _ in clips], np.random.default_rng(SEED), path)
    return Recording(path, truth, [label for _, _, label in clips], [clip for clip, _, _ in clips],
                     [original for _, original, _ in clips])


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def short_recording(recording: Recording, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    path = tmp_path_factory.mktemp("short") / "short.wav"
    clips = recording.clips[:4]
    truth = join(clips, np.random.default_rng(SEED + 1), path)
    return Recording(path, truth, recording.labels[:4], clips)


@pytest.fixture(scope="module")
def model() -> Any:
    return load(default_model_path(), threads=1)


def boundary_recall(result: FileTimeline, truth: list[tuple[float, float]]) -> float:
    found = spans(result)
    if not len(found):
        return 0.0
    hits = sum(int(np.abs(found[:, 0] - start).min() <= BOUNDARY_TOLERANCE)
               + int(np.abs(found[:, 1] - end).min() <= BOUNDARY_TOLERANCE) for start, end in truth)
    return hits / (2 * len(truth))


def segment_accuracy(result: FileTimeline, truth: list[tuple[float, float]], labels: list[int]) -> float:
    """Each segment against the clip it overlaps most; a segment overlapping no clip counts as wrong."""
    correct = 0
    for segment in result.segments:
        overlap = [max(0.0, min(segment.end, end) - max(segment.start, start)) for start, end in truth]
        best = int(np.argmax(overlap))
        correct += overlap[best] > 0 and labels[best] == segment.label_id
    return correct / max(1, len(result.segments))


# -- acceptance ----------------------------------------------------------------------------------------------
def test_long_recording_boundaries_and_per_segment_accuracy(recording: Recording, model: Any) -> None:
    result = zoo.timeline(model, recording.path, vad="silero")[0]
    assert result.vad == "silero" and result.error is None
    recall = boundary_recall(result, recording.truth)
    segment_acc = segment_accuracy(result, recording.truth, recording.labels)
    clip_acc = float(np.mean(model.predict(recording.clips) == np.array(recording.labels)))
    untrimmed_acc = float(np.mean(model.predict(recording.originals) == np.array(recording.labels)))
    print(f"\n{len(recording.clips)} clips, {len(result.segments)} segments over {result.duration:.0f} s: "
          f"boundary recall {recall:.3f} (within {BOUNDARY_TOLERANCE} s), per-segment accuracy {segment_acc:.3f}, "
          f"per-clip accuracy {clip_acc:.3f} (untrimmed clips: {untrimmed_acc:.3f})")
    assert recall >= 0.9
    assert segment_acc >= clip_acc - 0.03
    assert abs(len(result.segments) - len(recording.clips)) <= 2


def test_block_size_does_not_change_the_timeline(recording: Recording, model: Any) -> None:
    detector = load_vad("silero")
    whole = timeline_file(model, recording.path, detector=detector)
    odd = timeline_file(model, recording.path, detector=detector, block_seconds=0.37)
    np.testing.assert_allclose(spans(odd), spans(whole), atol=1e-9)
    np.testing.assert_allclose([s.probabilities for s in odd.segments], [s.probabilities for s in whole.segments],
                               atol=1e-5)


class RecordingModel:
    """Answers 'neutral' for everything and keeps what it was given: checks the audio the model gets."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.pieces: list[np.ndarray] = []

    def predict_proba(self, waveforms: list[np.ndarray]) -> np.ndarray:
        self.pieces += list(waveforms)
        return np.tile(np.eye(len(LABELS))[LABELS.index("neutral")], (len(waveforms), 1))


def test_a_model_at_another_rate_gets_the_same_segments_at_its_rate(short_recording: Recording,
                                                                    tmp_path: Path) -> None:
    samples = sf.read(short_recording.path, dtype="float32")[0]
    stereo_48k = tmp_path / "stereo-48k.wav"
    upsampled = soxr.resample(samples, RATE, 48_000)
    sf.write(stereo_48k, np.stack([upsampled, upsampled], axis=1), 48_000)
    at_16k, at_22k = RecordingModel(RATE), RecordingModel(22_050)
    reference = timeline_file(at_16k, short_recording.path, detector=load_vad("silero"))
    other = timeline_file(at_22k, stereo_48k, detector=load_vad("silero"))
    assert other.sample_rate == 48_000 and len(other.segments) == len(reference.segments) == 4
    np.testing.assert_allclose(spans(other), spans(reference), atol=0.07)
    for piece, segment in zip(at_22k.pieces, other.segments, strict=True):
        assert abs(piece.size - (segment.end - segment.start) * 22_050) <= 2
    assert all(s.label == "neutral" and s.confidence == 1.0 for s in other.segments)


def test_memory_is_bounded_and_long_speech_is_cut(recording: Recording, model: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten minutes of noise and 40 s of speech without a pause: the buffer never holds more than its bound."""
    rng = np.random.default_rng(SEED)
    noise = (rng.standard_normal(600 * RATE) * 10 ** (-50 / 20)).astype(np.float32)
    speech = np.concatenate(recording.clips[:16])[: 40 * RATE]
    path = tmp_path / "noise-then-speech.flac"
    sf.write(path, np.concatenate([recording.clips[0], noise, speech, noise[: 5 * RATE]]), RATE, subtype="PCM_16")
    held: list[int] = []
    append = TIMELINE._Buffer.append

    def spy(buffer: Any, samples: np.ndarray) -> None:
        append(buffer, samples)
        held.append(buffer.end - buffer.start)

    monkeypatch.setattr(TIMELINE._Buffer, "append", spy)
    params = SegmentParams()
    result = timeline_file(model, path, params=params, detector=load_vad("silero"))
    bound = 2 * params.max_segment + params.merge_gap + 2 * TIMELINE.BLOCK_SECONDS + 1
    assert max(held) / RATE <= bound
    lengths = np.diff(spans(result), axis=1).ravel()
    assert lengths.max() <= params.max_segment + 1e-6
    long_run = [s for s in result.segments if s.start > 600]
    assert len(long_run) >= 4  # 40 s of speech in pieces of at most 10 s
    assert all(s.end - s.start >= params.max_segment / 2 - 1 for s in long_run[:-1])


# -- the VAD -------------------------------------------------------------------------------------------------
def test_silero_and_an_onnx_timeline_import_no_heavy_library(tmp_path: Path) -> None:
    """In a fresh process: Silero runs on onnxruntime, and a whole timeline with an ONNX model imports neither
    torch (nor the silero_vad package, which would) nor librosa, scikit-learn or transformers."""
    assert silero_model_path() is not None, "silero-vad is a dependency: pip install silero-vad"
    audio = tmp_path / "tone.wav"
    sf.write(audio, np.tile(np.sin(np.arange(RATE) / 5).astype(np.float32) * 0.3, 2), RATE)
    code = (
        "import sys, numpy as np, zoo\n"
        "from zoo.vad import load_vad\n"
        "vad = load_vad('silero')\n"
        "p, e = vad.push(np.zeros(16000, np.float32))\n"
        "assert p.shape == (31,) and e.shape == (31,), p.shape\n"
        f"zoo.timeline({str(default_model_path())!r}, {str(audio)!r}, vad=vad)\n"
        "heavy = [m for m in ('torch', 'silero_vad', 'librosa', 'sklearn', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(vad.path.name)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() in {SEQUENCE_MODEL, FRAME_MODEL}


def test_sequence_model_equals_the_frame_model_in_any_chunking(recording: Recording) -> None:
    folder = silero_model_path().parent
    if not (folder / SEQUENCE_MODEL).is_file() or not (folder / FRAME_MODEL).is_file():
        pytest.skip("this silero-vad has only one of the two ONNX files")
    audio = np.concatenate(recording.clips[:3])
    sequence, frame = SileroVad(folder / SEQUENCE_MODEL), SileroVad(folder / FRAME_MODEL)
    assert sequence.sequence and not frame.sequence
    reference = np.concatenate([frame.push(audio)[0], frame.flush()[0]])
    chunks = np.split(audio, [1000, 1001, 7000, 30_000])
    streamed = np.concatenate([sequence.push(chunk)[0] for chunk in chunks] + [sequence.flush()[0]])
    assert reference.size == int(np.ceil(audio.size / 512))
    np.testing.assert_allclose(streamed, reference, atol=1e-5)


def test_energy_fallback_is_loud_and_still_finds_speech(recording: Recording, model: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules["zoo.vad"], "silero_model_path", lambda: None)
    with pytest.warns(VadFallbackWarning, match="FALLING BACK TO AN ENERGY VAD"):
        detector = load_vad("auto")
    assert isinstance(detector, EnergyVad)
    with pytest.raises(EmozooError, match="pip install silero-vad"):
        load_vad("silero")
    path = tmp_path / "quiet-pauses.wav"
    rng = np.random.default_rng(SEED)
    clips = recording.clips[:10]
    parts = [np.zeros(RATE, np.float32)]
    truth = []
    for clip in clips:
        start = sum(p.size for p in parts)
        truth.append((start / RATE, (start + clip.size) / RATE))
        parts += [clip, np.zeros(int(rng.uniform(0.8, 2.0) * RATE), np.float32)]
    sf.write(path, np.concatenate(parts), RATE)
    result = timeline_file(model, path, detector=detector)
    assert result.vad == "energy"
    assert boundary_recall(result, truth) >= 0.8

    outcome = CliRunner().invoke(cli, ["timeline", str(default_model_path()), str(path)])
    assert outcome.exit_code == 0, outcome.output
    assert "WARNING" in outcome.stderr and "FALLING BACK" in outcome.stderr


# -- segmentation rules, on made-up probabilities ----------------------------------------------------------
def segment(probabilities: list[float], params: SegmentParams | None = None,
            energies: list[float] | None = None) -> list[tuple[float, float]]:
    """Run the segmenter over per-frame probabilities (speech frames -30 dB, others -90 dB by default)."""
    levels = energies if energies is not None else [-30.0 if p >= 0.5 else -90.0 for p in probabilities]
    segmenter = Segmenter(params or SegmentParams(pad=0.0, merge_gap=0.0, min_speech=0.0))
    found = segmenter.push(probabilities, levels) + segmenter.finish(len(probabilities) * 512)
    return [(round(s.start_seconds / FRAME_SECONDS), round(s.end_seconds / FRAME_SECONDS)) for s in found]


def frames(*runs: tuple[float, int]) -> list[float]:
    return [value for value, count in runs for _ in range(count)]


def test_hysteresis_min_silence_and_min_speech() -> None:
    # 0.4 lies between the exit (0.35) and entry (0.5) thresholds: it neither starts nor ends speech
    assert segment(frames((0.4, 10), (0.9, 20), (0.4, 10), (0.9, 20), (0.0, 20))) == [(10, 60)]
    # a dip of 2 frames (64 ms) is shorter than min_silence (0.1 s = 3 frames): one segment
    assert segment(frames((0.0, 5), (0.9, 20), (0.1, 2), (0.9, 20), (0.0, 10))) == [(5, 47)]
    assert segment(frames((0.0, 5), (0.9, 20), (0.1, 4), (0.9, 20), (0.0, 10))) == [(5, 25), (29, 49)]
    # min_speech 0.25 s (8 frames): a 5-frame blip goes, a 10-frame word stays
    params = SegmentParams(pad=0.0, merge_gap=0.0)
    assert segment(frames((0.0, 10), (0.9, 5), (0.0, 20), (0.9, 10), (0.0, 10)), params) == [(35, 45)]


def test_merge_gap_padding_and_edges() -> None:
    params = SegmentParams(pad=0.1, merge_gap=0.5, min_speech=0.0)  # pad 3 frames, merge below 16 frames
    # a 10-frame pause is merged, a 30-frame one is not; padding stops at the audio's start and end
    assert segment(frames((0.0, 1), (0.9, 20), (0.0, 10), (0.9, 20), (0.0, 30), (0.9, 20)), params) == \
        [(0, 54), (78, 101)]
    # two segments 4 frames apart (no merging): the padding stops in the middle of the pause
    params = SegmentParams(pad=0.1, merge_gap=0.0, min_speech=0.0)
    assert segment(frames((0.0, 10), (0.9, 20), (0.0, 4), (0.9, 20), (0.0, 10)), params) == [(7, 32), (32, 57)]


def test_long_speech_is_cut_at_its_quietest_point() -> None:
    params = SegmentParams(pad=0.0, merge_gap=0.0, max_segment=10.0)  # 312 frames
    probabilities = frames((0.9, 600))
    energies = [-30.0] * 600
    for quiet in (230, 231):  # a breath: speech probability stays high, the level drops
        probabilities[quiet], energies[quiet] = 0.6, -60.0
    found = segment(probabilities, params, energies)
    assert found[0] == (0, 230) or found[0] == (0, 231)
    assert all(end - start <= 312 for start, end in found) and found[-1][1] == 600
    assert [start for start, _ in found[1:]] == [end for _, end in found[:-1]]  # cut, nothing lost


def test_trailing_frames_as_quiet_as_the_pause_are_cut() -> None:
    """Silero's probability lingers after speech stops in noise; the level tells where speech really ended."""
    probabilities = frames((0.9, 30), (0.8, 8), (0.2, 10))
    energies = frames((-25.0, 30), (-50.0, 8), (-51.0, 10))
    assert segment(probabilities, SegmentParams(pad=0.0, merge_gap=0.0), energies) == [(0, 30)]
    assert segment(probabilities, SegmentParams(pad=0.0, merge_gap=0.0, trail_db=0.0), energies) == [(0, 38)]


def test_bad_parameters_are_refused() -> None:
    for bad in ({"threshold": 1.5}, {"neg_threshold": 0.9}, {"pad": -1.0}, {"max_segment": 0.5}):
        with pytest.raises(EmozooError, match="bad segmentation parameters"):
            SegmentParams(**bad)


def test_fixed_windows_cover_the_audio() -> None:
    assert fixed_windows(10, RATE, 1.0, 1.0) == [(0, 10)]
    windows = fixed_windows(int(2.5 * RATE), RATE, 1.0, 1.0)
    assert windows == [(0, RATE), (RATE, 2 * RATE), (int(1.5 * RATE), int(2.5 * RATE))]


def test_smoothing_averages_neighbours_by_duration() -> None:
    spans_ = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 7.0]])
    probabilities = np.eye(len(LABELS))[[0, 1, 2]]
    smoothed = smooth_probabilities(spans_, probabilities, 1)
    np.testing.assert_allclose(smoothed[1][:3], [0.2, 0.2, 0.6])
    np.testing.assert_allclose(smoothed[0][:3], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0)
    np.testing.assert_array_equal(smooth_probabilities(spans_, probabilities, 0), probabilities)


# -- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, problem", [
    ("text.wav", "not a readable audio file"),
    ("truncated.wav", "truncated"),
    ("truncated.flac", "truncated or corrupt"),
    ("empty.wav", "empty"),
    ("nan.wav", "NaN"),
])
def test_bad_files_are_clear_errors(bad_files: dict[str, Path], model: Any, name: str, problem: str) -> None:
    with pytest.raises(AudioError, match=problem):
        timeline_file(model, bad_files[name])
    outcome = CliRunner().invoke(cli, ["timeline", str(default_model_path()), str(bad_files[name])])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    assert name in outcome.stderr and problem in outcome.stderr


@pytest.mark.parametrize("name", ["silence.flac", "noise.flac", "music.flac"])
def test_silence_noise_and_music_give_no_segments(bad_files: dict[str, Path], model: Any, name: str) -> None:
    result = timeline_file(model, bad_files[name], detector=load_vad("silero"))
    assert result.segments == [] and result.duration > 0


def test_on_error_skip_goes_on_and_reports(bad_files: dict[str, Path], recording: Recording, tmp_path: Path) -> None:
    results = zoo.timeline(default_model_path(), [bad_files["text.wav"], recording.path], on_error="skip")
    assert results[0].error and "not a readable audio file" in results[0].error and not results[0].segments
    assert results[1].error is None and results[1].segments
    with pytest.raises(AudioError):
        zoo.timeline(default_model_path(), [bad_files["text.wav"], recording.path])
    with pytest.raises(EmozooError, match="no such model"):
        zoo.timeline(tmp_path / "missing.onnx", recording.path)


# -- command line --------------------------------------------------------------------------------------------
def test_cli_writes_csv_json_and_a_plot(recording: Recording, short_recording: Recording,
                                        bad_files: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "talk.flac").write_bytes(recording.path.read_bytes())
    (folder / "broken.wav").write_text("not audio")
    rows_csv, rows_json, plot = tmp_path / "rows.csv", tmp_path / "rows.json", tmp_path / "timeline.png"
    model = str(default_model_path())
    outcome = CliRunner().invoke(cli, ["timeline", model, str(folder), "-o", str(rows_csv), "--plot", str(plot),
                                       "--on-error", "skip", "--threads", "1"])
    assert outcome.exit_code == 0, outcome.output
    assert "skipped 1 bad file" in outcome.stderr and "broken.wav" in outcome.stderr
    with rows_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file", "start", "end", "label", "confidence", *LABELS]
    assert len(rows) == pytest.approx(len(recording.clips), abs=2)
    assert all(row["label"] in LABELS and float(row["end"]) > float(row["start"]) for row in rows)
    assert plot.stat().st_size > 10_000

    arguments = ["timeline", model, str(short_recording.path), "--threads", "1"]
    plain = CliRunner().invoke(cli, arguments + ["--format", "json"])
    outcome = CliRunner().invoke(cli, arguments + ["-o", str(rows_json), "--smooth", "1"])
    assert plain.exit_code == 0 and outcome.exit_code == 0, outcome.output
    raw, smoothed = json.loads(plain.stdout), json.loads(rows_json.read_text())
    assert len(raw) == len(short_recording.clips) and [r["start"] for r in smoothed] == [r["start"] for r in raw]
    assert [r["angry"] for r in smoothed] != [r["angry"] for r in raw]
    assert all(sum(r[label] for label in LABELS) == pytest.approx(1.0, abs=1e-4) for r in smoothed)

    outcome = CliRunner().invoke(cli, ["timeline", model, str(bad_files["silence.flac"])])
    assert outcome.exit_code == 0 and outcome.stdout.strip() == ",".join(["file", "start", "end", "label",
                                                                          "confidence", *LABELS])
    assert "no speech found" in outcome.stderr


# -- server --------------------------------------------------------------------------------------------------
def test_no_warning_when_silero_is_installed() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", VadFallbackWarning)
        assert isinstance(load_vad("auto"), SileroVad)
