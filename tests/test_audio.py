"""Audio input: every kind of bad file gives an AudioError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone
from zoo.audio import check_waveform, read_audio
from zoo.errors import AudioError


def write(path: Path, samples: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16") -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def expect_error(path: Path, fragment: str, **kwargs: object) -> None:
    with pytest.raises(AudioError) as caught:
        read_audio(path, 16_000, **kwargs)
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message


def test_reads_mono_float32_at_target_rate(tmp_path: Path) -> None:
    path = write(tmp_path / "tone.wav", tone(1.0, 44_100, 440.0), 44_100)
    samples, rate = read_audio(path, 16_000)
    assert rate == 16_000 and samples.dtype == np.float32 and samples.shape == (16_000,)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16_000 / samples.size - 440.0) < 2.0


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = tone(0.5, 16_000, 300.0)
    path = write(tmp_path / "stereo.flac", np.stack([left, np.zeros_like(left)], axis=1))
    samples, _ = read_audio(path, 16_000)
    assert samples.ndim == 1
    np.testing.assert_allclose(samples, left / 2, atol=1e-4)


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.wav", "no such file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    expect_error(path, "empty")


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is a shopping list, not a recording\n" * 20)
    expect_error(path, "not a readable audio file")


def test_truncated_wav(tmp_path: Path) -> None:
    whole = write(tmp_path / "whole.wav", tone(1.0)).read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[: len(whole) // 2])
    expect_error(path, "truncated")


def test_truncated_header(tmp_path: Path) -> None:
    whole = write(tmp_path / "whole.wav", tone(1.0)).read_bytes()
    path = tmp_path / "header.wav"
    path.write_bytes(whole[:30])
    expect_error(path, "not a readable audio file")


def test_zero_length(tmp_path: Path) -> None:
    expect_error(write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32)), "no audio samples")


def test_nan_samples(tmp_path: Path) -> None:
    samples = tone(0.5)
    samples[100:110] = np.nan
    expect_error(write(tmp_path / "nan.wav", samples, subtype="FLOAT"), "NaN")


def test_infinite_samples(tmp_path: Path) -> None:
    samples = tone(0.5)
    samples[5] = np.inf
    expect_error(write(tmp_path / "inf.wav", samples, subtype="FLOAT"), "infinite")


def test_silent(tmp_path: Path) -> None:
    expect_error(write(tmp_path / "silent.wav", np.zeros(16_000, dtype=np.float32)), "silent")


def test_odd_sample_rate(tmp_path: Path) -> None:
    expect_error(write(tmp_path / "slow.wav", tone(2.0, 500, 50.0), 500), "sample rate 500")


def test_too_long_with_configurable_cap(tmp_path: Path) -> None:
    path = write(tmp_path / "long.wav", tone(3.0))
    expect_error(path, "over the 2 s limit", max_seconds=2.0)
    assert read_audio(path, 16_000, max_seconds=5.0)[0].size == 48_000


def test_too_short(tmp_path: Path) -> None:
    expect_error(write(tmp_path / "click.wav", tone(0.01)), "ms long")


def test_arrays_are_checked_too() -> None:
    with pytest.raises(AudioError, match="clip.npy: contains 2000 NaN"):
        check_waveform(np.array([0.1, np.nan] * 2000, dtype=np.float32), 16_000, "clip.npy")
    with pytest.raises(AudioError, match="sample rate 10 "):
        check_waveform(tone(1.0), 10)


def test_float_samples_far_outside_minus_one_to_one(tmp_path: Path) -> None:
    """Integer PCM values stored as float (a peak of 476): refused for files, uploads and arrays alike."""
    from zoo.audio import decode_bytes

    samples = tone(1.0) * (476 / 0.3)
    path = write(tmp_path / "pcm-as-float.wav", samples, subtype="FLOAT")
    expect_error(path, "samples reach 476; float audio must lie within about -1..1 (at most 16)")
    with pytest.raises(AudioError, match="upload.wav: samples reach 476"):
        decode_bytes(path.read_bytes(), "upload.wav")
    with pytest.raises(AudioError, match="clip: samples reach 476"):
        check_waveform(samples, 16_000, "clip")
    assert read_audio(write(tmp_path / "loud.wav", tone(1.0) * 10, subtype="FLOAT"), 16_000)[0].max() > 2.9
