"""`emozoo serve` over real HTTP: a real uvicorn server on a loopback port, a real model, real emodb audio.

Every endpoint, every kind of bad input (always a 4xx with a JSON message naming the problem, never a 500),
and every limit (upload size, duration, timeout, full queue).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.serve_support import LOOPBACK, SlowModel, emodb_clips, live_server, tiny_model, tiny_onnx
from zoo.api import load
from zoo.audio import read_audio
from zoo.labels import LABELS
from zoo.serve import ServeSettings, load_models

RATE = 16_000
SETTINGS = ServeSettings(max_upload_bytes=1_000_000, max_duration=20.0, request_timeout=20.0,
                         max_concurrency=2, max_queue=8, window_seconds=1.0)


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(emodb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(emodb_dir, tmp_path_factory.getbasetemp() / "serve-tiny-logreg")


@pytest.fixture(scope="module")
def onnx_file(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return tiny_onnx(model_dir, tmp_path_factory.getbasetemp() / "serve-tiny.onnx")


@pytest.fixture(scope="module")
def models(model_dir: Path, onnx_file: Path | None) -> dict[str, Any]:
    """'tiny' is the exported ONNX file once the exporter exists (the native directory until then);
    'native' is always the saved model directory."""
    return load_models([f"tiny={onnx_file or model_dir}", f"native={model_dir}"])


@pytest.fixture(scope="module")
def client(models: dict[str, Any]) -> Iterator[httpx.Client]:
    with live_server(models, SETTINGS) as url, httpx.Client(base_url=url, timeout=30) as session:
        yield session


@pytest.fixture(scope="module")
def clip(emodb_dir: Path) -> Path:
    return emodb_clips(emodb_dir)[0][0]


@pytest.fixture(scope="module")
def samples(clip: Path) -> np.ndarray:
    return read_audio(clip, RATE)[0]


# -- helpers -------------------------------------------------------------------------------------------------
def encode(samples: np.ndarray, rate: int = RATE, file_format: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


def upload(
    client: httpx.Client, data: bytes, name: str = "clip.wav", field: str = "file", **params: Any
) -> httpx.Response:
    return client.post("/v1/predict", files={field: (name, data, "application/octet-stream")}, params=params)


def raw(client: httpx.Client, samples: np.ndarray | bytes, **params: Any) -> httpx.Response:
    body = samples if isinstance(samples, bytes) else np.asarray(samples, dtype="<f4").tobytes()
    return client.post("/v1/predict", content=body, params=params,
                       headers={"Content-Type": "application/octet-stream"})


def expect_error(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


def check_prediction(body: dict[str, Any], model: str = "tiny") -> None:
    assert body["model"] == model
    assert body["label"] == LABELS[body["label_id"]]
    assert list(body["probabilities"]) == list(LABELS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["confidence"] == max(body["probabilities"].values())
    assert body["windows"] and body["duration"] > 0


# -- good input ----------------------------------------------------------------------------------------------
def test_wav_upload_matches_the_model_called_directly(client: httpx.Client, model_dir: Path,
                                                      samples: np.ndarray) -> None:
    short = samples[: int(0.9 * RATE)]  # shorter than one window: the answer is one model call
    response = upload(client, encode(short, subtype="FLOAT"))
    assert response.status_code == 200, response.text
    body = response.json()
    check_prediction(body)
    expected = load(model_dir).predict_proba([short])[0]
    np.testing.assert_allclose([body["probabilities"][label] for label in LABELS], expected, atol=1e-4)
    assert body["label_id"] == int(np.argmax(expected))
    assert body["duration"] == pytest.approx(0.9, abs=1e-3) and body["sample_rate"] == RATE
    assert len(body["windows"]) == 1 and body["windows"][0]["start"] == 0.0


def test_flac_ogg_mp3_and_audio_body_decode(client: httpx.Client, samples: np.ndarray) -> None:
    pcm = np.round(samples * 32767).astype(np.int16)  # the same integers in both files
    wav = upload(client, encode(pcm)).json()
    flac = upload(client, encode(pcm, file_format="FLAC"), name="clip.flac").json()
    assert flac["probabilities"] == pytest.approx(wav["probabilities"], abs=1e-6)  # lossless: same samples
    for name, data in (("clip.ogg", encode(samples, file_format="OGG")),
                       ("clip.mp3", encode(samples, file_format="MP3"))):
        response = upload(client, data, name=name)
        assert response.status_code == 200, (name, response.text)
        check_prediction(response.json())
    body = client.post("/v1/predict", content=encode(pcm), headers={"Content-Type": "audio/wav"})
    assert body.status_code == 200 and body.json()["probabilities"] == pytest.approx(wav["probabilities"])


def test_raw_float32_equals_the_same_samples_as_a_file(client: httpx.Client, samples: np.ndarray) -> None:
    as_file = upload(client, encode(samples, subtype="FLOAT")).json()
    response = raw(client, samples, sample_rate=RATE)
    assert response.status_code == 200, response.text
    assert response.json()["probabilities"] == pytest.approx(as_file["probabilities"], abs=1e-6)


def test_other_rates_and_stereo_are_converted(client: httpx.Client, samples: np.ndarray) -> None:
    mono = upload(client, encode(samples)).json()
    stereo = upload(client, encode(np.stack([samples, samples], axis=1))).json()
    assert stereo["probabilities"] == pytest.approx(mono["probabilities"], abs=1e-4)
    import soxr

    at_44k = soxr.resample(samples, RATE, 44_100).astype(np.float32)
    response = raw(client, at_44k, sample_rate=44_100)
    assert response.status_code == 200, response.text
    assert response.json()["sample_rate"] == 44_100
    assert response.json()["duration"] == pytest.approx(samples.size / RATE, abs=1e-3)


def test_long_audio_is_scored_in_windows_and_averaged(client: httpx.Client, model_dir: Path,
                                                      samples: np.ndarray) -> None:
    long = np.concatenate([samples, np.zeros(RATE // 2, np.float32), samples])
    body = upload(client, encode(long, subtype="FLOAT")).json()
    check_prediction(body)
    windows = body["windows"]
    starts = [round(w["start"] * RATE) for w in windows]
    assert len(windows) == int(np.ceil(long.size / RATE))
    assert starts[:-1] == [i * RATE for i in range(len(windows) - 1)]
    assert windows[-1]["end"] == pytest.approx(long.size / RATE, abs=1e-3)  # last window ends with the audio
    scored = [w for w in windows if not w["silent"]]
    expected = load(model_dir).predict_proba([long[s : s + RATE] for s, w in zip(starts, windows, strict=True)
                                              if not w["silent"]])
    for window, row in zip(scored, expected, strict=True):
        np.testing.assert_allclose([window["probabilities"][label] for label in LABELS], row, atol=1e-4)
    np.testing.assert_allclose([body["probabilities"][label] for label in LABELS], expected.mean(axis=0),
                               atol=1e-4)


def test_silent_windows_are_marked_and_left_out(client: httpx.Client, samples: np.ndarray) -> None:
    speech = samples[:RATE]
    body = upload(client, encode(np.concatenate([np.zeros(2 * RATE, np.float32), speech]), subtype="FLOAT"))
    windows = body.json()["windows"]
    assert [w["silent"] for w in windows] == [True, True, False]
    assert windows[0]["probabilities"] is None and windows[0]["label"] is None
    alone = upload(client, encode(speech, subtype="FLOAT")).json()
    assert body.json()["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-5)


def test_model_parameter_chooses_the_model(client: httpx.Client, samples: np.ndarray) -> None:
    assert upload(client, encode(samples)).json()["model"] == "tiny"  # the first is the default
    assert upload(client, encode(samples), model="native").json()["model"] == "native"


def test_models_health_and_openapi(client: httpx.Client, onnx_file: Path | None) -> None:
    listed = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in listed] == ["tiny", "native"]
    assert [m["default"] for m in listed] == [True, False]
    assert all(m["sample_rate"] == RATE and m["labels"] == list(LABELS) for m in listed)
    assert listed[1]["kind"] == "native" and listed[1]["plugin"] == "librosa-logreg"
    assert listed[0]["kind"] == ("onnx" if onnx_file else "native")

    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["limits"]["max_upload_bytes"] == 1_000_000

    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/v1/predict"]["post"]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Prediction")
    assert {"multipart/form-data", "application/octet-stream"} <= set(predict["requestBody"]["content"])
    assert {"413", "422", "503", "504"} <= set(predict["responses"])
    assert set(schema["components"]["schemas"]["Probabilities"]["properties"]) == set(LABELS)
    assert "/v1/models" in schema["paths"] and "/healthz" in schema["paths"]


def test_onnx_file_is_served(client: httpx.Client, onnx_file: Path | None, samples: np.ndarray) -> None:
    if onnx_file is None:
        pytest.skip("exporters.export_model / zoo.onnx_runtime not in the tree yet; 'tiny' is the native model")
    onnx = upload(client, encode(samples)).json()
    native = upload(client, encode(samples), model="native").json()
    assert onnx["label"] == native["label"]
    assert onnx["probabilities"] == pytest.approx(native["probabilities"], abs=1e-3)


# -- bad input: a clear 4xx, never a 500 ---------------------------------------------------------------------
BAD_FILES = {
    "not audio": (b"this is a shopping list, not a recording\n" * 20, 422, "not a readable audio file"),
    "random bytes": (np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(), 422,
                     "not a readable"),
    "empty": (b"", 400, "empty"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files(client: httpx.Client, case: str) -> None:
    data, status, fragment = BAD_FILES[case]
    expect_error(upload(client, data, name="upload.wav"), status, fragment)


def test_truncated_wav(client: httpx.Client, samples: np.ndarray) -> None:
    data = encode(samples)
    body = expect_error(upload(client, data[: len(data) // 2], name="cut.wav"), 422, "truncated")
    assert "cut.wav" in body["detail"]


def test_zero_length_nan_short_silent_and_bad_rate_files(client: httpx.Client, samples: np.ndarray) -> None:
    expect_error(upload(client, encode(np.zeros(0, np.float32))), 422, "zero length")
    with_nan = samples.copy()
    with_nan[100:110] = np.nan
    expect_error(upload(client, encode(with_nan, subtype="FLOAT")), 422, "NaN")
    expect_error(upload(client, encode(samples[:160])), 422, "ms long")
    expect_error(upload(client, encode(np.zeros(RATE, np.float32))), 422, "silent")
    expect_error(upload(client, encode(samples[:1000], rate=100)), 422, "sample rate 100")


def test_wrong_field_text_field_and_two_files(client: httpx.Client, samples: np.ndarray) -> None:
    expect_error(upload(client, encode(samples), field="audio"), 422, "no field 'file'", "'audio'")
    expect_error(client.post("/v1/predict", data={"file": "hello"}, files={"other": ("x", b"1")}),
                 422, "holds text")
    two = [("file", ("a.wav", encode(samples))), ("file", ("b.wav", encode(samples)))]
    expect_error(client.post("/v1/predict", files=two), 400, "files")


def test_malformed_multipart(client: httpx.Client) -> None:
    expect_error(client.post("/v1/predict", content=b"--x\r\nnonsense",
                             headers={"Content-Type": "multipart/form-data"}), 400)
    empty = client.post("/v1/predict", content=b"", headers={"Content-Type": "multipart/form-data; boundary=x"})
    expect_error(empty, 422, "no field 'file'")


def test_raw_body_errors(client: httpx.Client, samples: np.ndarray) -> None:
    expect_error(raw(client, b"", sample_rate=RATE), 400, "empty")
    expect_error(raw(client, samples), 422, "sample_rate")
    expect_error(raw(client, samples.tobytes()[:-1], sample_rate=RATE), 422, "not a whole number", "float32")
    nan = samples.copy()
    nan[5] = np.nan
    nan[6] = np.inf
    expect_error(raw(client, nan, sample_rate=RATE), 422, "2 NaN or infinite samples")
    for rate in (0, -16_000, 5, 10**9):
        expect_error(raw(client, samples, sample_rate=rate), 422, f"sample rate {rate}")
    expect_error(raw(client, samples, sample_rate="fast"), 422, "sample_rate", "integer")
    expect_error(raw(client, samples * 32767, sample_rate=RATE), 422, "were integer PCM values stored or sent as float")


def test_unknown_model_content_type_and_method(client: httpx.Client, samples: np.ndarray) -> None:
    expect_error(upload(client, encode(samples), model="nope"), 404, "unknown model 'nope'", "tiny, native")
    expect_error(client.post("/v1/predict", content=b"{}", headers={"Content-Type": "application/json"}),
                 415, "application/json")
    expect_error(client.post("/v1/predict", content=b"abc", headers={"Content-Type": ""}), 415, "(none)")
    expect_error(client.get("/v1/predict"), 405)
    expect_error(client.get("/v2/nothing"), 404)


# -- limits --------------------------------------------------------------------------------------------------
def test_upload_over_the_size_limit_is_refused_from_content_length(client: httpx.Client) -> None:
    for size in (1_200_000, 9_000_000):  # refused unread; the client still gets its 413, and keep-alive holds
        body = expect_error(upload(client, b"\0" * size), 413, "1000000 byte limit")
        assert body["error"] == "payload_too_large"
        assert client.get("/healthz").status_code == 200
    # headers only: the 413 must come without the server waiting for (or reading) the announced body
    port = int(str(client.base_url).rsplit(":", 1)[1].strip("/"))
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(b"POST /v1/predict?sample_rate=16000 HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/octet-stream\r\nContent-Length: 100000000\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):  # the server closes: 100 MB is far over the limit
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413") and b"payload_too_large" in reply
    assert b"connection: close" in reply.lower()


def test_streamed_upload_over_the_size_limit_is_cut_off(client: httpx.Client) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            sent.append(1)
            yield b"\0" * 65_536

    response = client.post("/v1/predict", content=chunks(), params={"sample_rate": RATE},
                           headers={"Content-Type": "application/octet-stream"})
    assert "content-length" not in response.request.headers  # chunked: the size was not known up front
    expect_error(response, 413, "1000000 byte limit")


def test_audio_over_the_duration_limit(client: httpx.Client, samples: np.ndarray) -> None:
    long = np.resize(samples, 25 * 8_000)  # 25 s at 8 kHz: 400 kB as 16-bit WAV, under the byte limit
    body = expect_error(upload(client, encode(long, rate=8_000)), 413, "25 s long", "20 s limit")
    assert body["error"] == "audio_too_long"
    expect_error(raw(client, np.resize(samples, 21 * 8_000), sample_rate=8_000), 413, "21 s long")


def test_timeout_gives_504_and_the_server_recovers(models: dict[str, Any], samples: np.ndarray) -> None:
    slow = {"slow": SlowModel(models["native"], delay=1.5)}
    settings = ServeSettings(request_timeout=0.5, max_concurrency=1, max_queue=2)
    with live_server(slow, settings) as url, httpx.Client(base_url=url, timeout=30) as session:
        expect_error(upload(session, encode(samples)), 504, "timeout")
        assert session.get("/healthz").json()["status"] == "ok"
        # a body that stops arriving halfway is answered 408 once the request time is up
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
            sock.sendall(b"POST /v1/predict?sample_rate=16000 HTTP/1.1\r\nHost: localhost\r\n"
                         b"Content-Type: application/octet-stream\r\nContent-Length: 64000\r\n\r\n" + b"\0" * 1000)
            reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert session.get("/healthz").status_code == 200


def test_full_queue_gives_503_with_retry_after(models: dict[str, Any], samples: np.ndarray) -> None:
    slow = {"slow": SlowModel(models["native"], delay=1.5)}
    settings = ServeSettings(request_timeout=20, max_concurrency=1, max_queue=1)
    data = encode(samples)
    with live_server(slow, settings) as url:
        responses: list[httpx.Response] = []

        def send() -> None:
            with httpx.Client(base_url=url, timeout=30) as session:
                responses.append(upload(session, data))

        threads = [threading.Thread(target=send) for _ in range(5)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=url, timeout=30) as session:  # inference runs off the event loop:
            for _ in range(20):  # /healthz answers while a 1.5 s model call is running (running == 1)
                health = session.get("/healthz").json()
                if health["running"] == 1:
                    break
                time.sleep(0.05)
            assert health["running"] == 1
        for thread in threads:
            thread.join()
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) >= 2 and 503 in statuses and set(statuses) <= {200, 503}, statuses
        busy = next(r for r in responses if r.status_code == 503)
        expect_error(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        with httpx.Client(base_url=url, timeout=30) as session:  # and it serves again once the line clears
            assert upload(session, data).status_code == 200


class FailingModel:
    """A model with a bug: raises on every call. The server must answer JSON and keep the connection."""

    sample_rate = RATE
    name = "failing"
    metadata: dict[str, Any] = {}

    def predict_proba(self, waveforms: Any) -> np.ndarray:
        raise ZeroDivisionError("bug in the model")


def test_a_failing_model_is_a_json_500_and_the_server_stays_up(models: dict[str, Any],
                                                               samples: np.ndarray) -> None:
    with live_server({"failing": FailingModel(), "tiny": models["native"]}, SETTINGS) as url, \
            httpx.Client(base_url=url, timeout=30) as session:
        body = expect_error(upload(session, encode(samples)), 500, "bug in the model", "'failing'")
        assert body["error"] == "model_error"
        assert upload(session, encode(samples), model="tiny").status_code == 200  # same keep-alive connection


# -- issue 18 ------------------------------------------------------------------------------------------------
def test_float_audio_far_outside_minus_one_to_one_gets_the_cli_s_answer(client: httpx.Client, samples: np.ndarray,
                                                                      tmp_path: Path) -> None:
    """One rule for `emozoo predict` and the server: the same file, the same problem, named the same way."""
    from zoo.errors import AudioError

    loud = samples * (476 / float(np.abs(samples).max()))
    path = tmp_path / "loud.wav"
    path.write_bytes(encode(loud, subtype="FLOAT"))
    with pytest.raises(AudioError) as caught:
        read_audio(path, RATE)
    body = expect_error(upload(client, path.read_bytes(), name="loud.wav"), 422, "samples reach 476")
    assert body["detail"] == f"uploaded file 'loud.wav': {caught.value.problem}"


def test_docs_page_loads_nothing_from_the_internet(client: httpx.Client) -> None:
    import re

    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        assert "https://" not in response.text and "http://" not in response.text
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert assets and all(url.startswith("/docs-assets/") for url in assets), assets
        for url in assets:
            assert client.get(url).status_code == 200, url
    assert client.get("/openapi.json").status_code == 200


def test_without_a_package_shipping_swagger_ui_docs_are_left_out(models: dict[str, Any], monkeypatch) -> None:  # noqa: ANN001
    from zoo.serve import app as app_module

    monkeypatch.setattr(app_module, "swagger_assets", lambda: None)
    app = app_module.create_app(models, SETTINGS)
    assert app.state.docs.startswith("no /docs") and "/openapi.json" in app.state.docs
    with live_server(models, SETTINGS) as url:
        assert httpx.get(f"{url}/docs").status_code == 404
        assert httpx.get(f"{url}/openapi.json").status_code == 200
