"""POST /v1/timeline over real HTTP (a real uvicorn server, as tests/test_serve.py runs it): same answers as the
Python API, and the limits and error JSON of /v1/predict."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.serve_support import live_server
from tests.timeline_support import RATE, SEED, Recording, held_out_clips, join, write_bad_files
from zoo.api import load
from zoo.bundled import default_model_path
from zoo.labels import LABELS
from zoo.serve import ServeSettings
from zoo.timeline import timeline_file
from zoo.vad import load_vad

SETTINGS = ServeSettings(max_upload_bytes=4_000_000, max_duration=60.0, request_timeout=60.0, max_concurrency=2,
                         max_queue=4, window_seconds=1.0)


@pytest.fixture(scope="module")
def model() -> Any:
    return load(default_model_path(), threads=1)


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    clips = held_out_clips()[:4]
    path = tmp_path_factory.mktemp("serve-timeline") / "short.wav"
    truth = join([clip for clip, _, _ in clips], np.random.default_rng(SEED + 1), path)
    return Recording(path, truth, [label for _, _, label in clips], [clip for clip, _, _ in clips])


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bad_files(tmp_path_factory.mktemp("serve-timeline-bad"))


@pytest.fixture(scope="module")
def server(model: Any) -> Iterator[httpx.Client]:
    with live_server({"default": model}, SETTINGS) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def post(client: httpx.Client, data: bytes, name: str = "talk.wav", **params: Any) -> httpx.Response:
    return client.post("/v1/timeline", files={"file": (name, data, "application/octet-stream")}, params=params)


def expect_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and fragment in body["detail"], body


def test_server_timeline_matches_the_python_api(server: httpx.Client, short_recording: Recording,
                                                model: Any) -> None:
    expected = timeline_file(model, short_recording.path, detector=load_vad("silero"))
    data = short_recording.path.read_bytes()
    for response in (post(server, data),
                     server.post("/v1/timeline", content=data, headers={"Content-Type": "audio/wav"})):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "default" and body["vad"] == "silero" and body["sample_rate"] == RATE
        assert [(s["start"], s["end"]) for s in body["segments"]] == \
            [(round(s.start, 3), round(s.end, 3)) for s in expected.segments]
        for got, want in zip(body["segments"], expected.segments, strict=True):
            assert got["label"] == want.label and list(got["probabilities"]) == list(LABELS)
            assert got["confidence"] == pytest.approx(want.confidence, abs=1e-6)
    samples = sf.read(short_recording.path, dtype="float32")[0]
    raw = server.post("/v1/timeline", content=samples.astype("<f4").tobytes(), params={"sample_rate": RATE},
                      headers={"Content-Type": "application/octet-stream"})
    assert raw.status_code == 200, raw.text
    assert len(raw.json()["segments"]) == len(expected.segments)


def test_server_timeline_bad_input_and_limits(server: httpx.Client, bad_files: dict[str, Path]) -> None:
    expect_error(post(server, bad_files["text.wav"].read_bytes()), 422, "not a readable audio file")
    expect_error(post(server, bad_files["truncated.wav"].read_bytes()), 422, "truncated")
    expect_error(post(server, b""), 400, "empty")
    expect_error(post(server, bad_files["music.flac"].read_bytes(), model="nope"), 404, "unknown model")
    expect_error(server.post("/v1/timeline", content=b"\0" * 400, headers={"Content-Type": "application/octet-stream"}),
                 422, "sample_rate")
    expect_error(server.post("/v1/timeline", content=b"x", headers={"Content-Type": "text/plain"}), 415, "text/plain")
    long = io.BytesIO()
    sf.write(long, np.zeros(61 * 8_000, dtype=np.int16), 8_000, format="WAV")
    expect_error(post(server, long.getvalue()), 413, "over the 60 s limit")
    expect_error(post(server, b"\0" * 4_100_000), 413, "byte limit")
    quiet = io.BytesIO()
    sf.write(quiet, np.zeros(30 * RATE, dtype=np.int16), RATE, format="WAV")
    response = post(server, quiet.getvalue())
    assert response.status_code == 200 and response.json()["segments"] == []
    music = post(server, bad_files["music.flac"].read_bytes(), name="music.flac")
    assert music.status_code == 200 and music.json()["segments"] == []
