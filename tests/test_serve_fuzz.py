"""Fuzzing the upload endpoint of a real server: whatever arrives, the answer is a 2xx or a 4xx, never a 5xx,
and the server is still healthy afterwards."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.serve_support import emodb_clips, live_server, tiny_model, tiny_onnx
from zoo.audio import read_audio
from zoo.serve import ServeSettings, load_models

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SERVER_SETTINGS = ServeSettings(
    max_upload_bytes=400_000, max_duration=10.0, request_timeout=20.0, window_seconds=1.0
)


@pytest.fixture(scope="module")
def client(emodb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    model_dir = tiny_model(emodb_dir, tmp_path_factory.getbasetemp() / "serve-tiny-logreg")
    onnx = tiny_onnx(model_dir, tmp_path_factory.getbasetemp() / "serve-tiny.onnx")
    models = load_models([f"tiny={onnx or model_dir}"])
    with live_server(models, SERVER_SETTINGS) as url, httpx.Client(base_url=url, timeout=60) as session:
        yield session
        assert session.get("/healthz").json()["status"] == "ok"


@pytest.fixture(scope="module")
def seeds(emodb_dir: Path) -> dict[str, bytes]:
    """Valid files of each container, for mutation fuzzing."""
    samples = read_audio(emodb_clips(emodb_dir)[0][0], 16_000)[0][:8_000]
    out = {}
    for name, kwargs in {"wav": {"format": "WAV"}, "flac": {"format": "FLAC"}, "ogg": {"format": "OGG"},
                         "float-wav": {"format": "WAV", "subtype": "FLOAT"}}.items():
        buffer = io.BytesIO()
        sf.write(buffer, samples, 16_000, **kwargs)
        out[name] = buffer.getvalue()
    return out


def check(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    body = response.json()
    event(f"HTTP {response.status_code} {body.get('error', '')}")  # shown by --hypothesis-show-statistics
    if response.status_code >= 400:
        assert body["detail"], body
    else:
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    return body


def post_file(client: httpx.Client, data: bytes, name: str = "fuzz.wav") -> dict[str, Any]:
    return check(client.post("/v1/predict", files={"file": (name, data)}))


@FUZZ
@given(data=st.binary(max_size=4_000))
def test_random_bytes_as_a_file(client: httpx.Client, data: bytes) -> None:
    post_file(client, data)


@FUZZ
@given(kind=st.sampled_from(["wav", "flac", "ogg", "float-wav"]),
       cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=20))
def test_mutated_audio_files(client: httpx.Client, seeds: dict[str, bytes], kind: str, cut: float,
                             flips: list[tuple[float, int]]) -> None:
    data = bytearray(seeds[kind][: max(1, int(len(seeds[kind]) * cut))] if cut < 0.5 else seeds[kind])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    post_file(client, bytes(data), f"fuzz.{kind}")


@FUZZ
@given(samples=arrays(np.float32, st.integers(0, 12_000),
                      elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
       rate=st.one_of(st.integers(-10, 10**7), st.sampled_from([8_000, 16_000, 44_100, 48_000])))
def test_random_float_arrays_and_rates(client: httpx.Client, samples: np.ndarray, rate: int) -> None:
    check(client.post("/v1/predict", content=samples.astype("<f4").tobytes(), params={"sample_rate": rate},
                      headers={"Content-Type": "application/octet-stream"}))


@FUZZ
@given(length=st.integers(0, 12_000), seed=st.integers(0, 999), rate=st.sampled_from([1_000, 8_000, 16_000, 96_000]),
       scale=st.sampled_from([0.0, 1e-5, 1e-3, 0.3, 1.0, 16.0, 20.0, 32_767.0, 1e20, 3e38]))
def test_noise_of_any_loudness_length_and_rate(client: httpx.Client, length: int, seed: int, rate: int,
                                               scale: float) -> None:
    with np.errstate(over="ignore"):
        samples = np.random.default_rng(seed).uniform(-1, 1, length).astype(np.float32) * np.float32(scale)
    check(client.post("/v1/predict", content=samples.astype("<f4").tobytes(), params={"sample_rate": rate},
                      headers={"Content-Type": "application/octet-stream"}))


@FUZZ
@given(rate=st.integers(500, 200_000), channels=st.integers(1, 3), seconds=st.floats(0, 1.5),
       amplitude=st.sampled_from([0.0, 1e-6, 0.01, 0.5, 1.0, 40.0]), seed=st.integers(0, 99),
       subtype=st.sampled_from(["PCM_16", "PCM_24", "PCM_U8", "FLOAT", "DOUBLE", "ULAW"]))
def test_random_valid_wav_files(client: httpx.Client, rate: int, channels: int, seconds: float,
                                amplitude: float, subtype: str, seed: int) -> None:
    frames = int(rate * seconds)
    noise = amplitude * np.random.default_rng(seed).uniform(-1, 1, (frames, channels))
    buffer = io.BytesIO()
    try:
        sf.write(buffer, noise, rate, format="WAV", subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return  # a combination libsndfile cannot write: nothing to send
    body = post_file(client, buffer.getvalue())
    if "windows" in body:
        assert body["duration"] > 0
