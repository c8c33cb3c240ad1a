"""`emozoo serve` as a user runs it (a subprocess on a loopback port), and the bounded load test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from benchmarks import load_test
from tests.serve_support import emodb_clips, tiny_model, tiny_onnx
from zoo.bundled import default_model_path
from zoo.cli.main import cli


@pytest.fixture(scope="module")
def model_dir(emodb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(emodb_dir, tmp_path_factory.getbasetemp() / "serve-tiny-logreg")


@pytest.fixture(scope="module")
def served(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the server subprocesses load: the exported ONNX file (light and quick to start in every worker),
    or the saved model directory while the exporter is not there."""
    return tiny_onnx(model_dir, tmp_path_factory.getbasetemp() / "serve-tiny.onnx") or model_dir


def emozoo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, timeout=120)


def test_two_workers_serve_and_stop_cleanly(served: Path, emodb_dir: Path) -> None:
    port = load_test.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "serve", f"emo={served}", "--port", str(port), "--workers", "2",
         "--max-duration", "30", "--window", "2", "--threads", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "EMOZOO_QUIET": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        health = httpx.get(f"{url}/healthz").json()
        assert health["models"] == ["emo"] and health["limits"]["max_duration"] == 30
        assert health["limits"]["window_seconds"] == 2
        clip = emodb_clips(emodb_dir)[0][0]
        for _ in range(4):  # spread over both workers
            response = httpx.post(f"{url}/v1/predict", files={"file": (clip.name, clip.read_bytes())}, timeout=30)
            assert response.status_code == 200 and response.json()["model"] == "emo"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "serving emo on http://127.0.0.1" in stderr and "Traceback" not in stderr
    assert "API docs at /docs" in stderr  # served from a local copy of Swagger UI, not a CDN


def test_bad_model_and_bad_options_are_one_clear_line(model_dir: Path, tmp_path: Path) -> None:
    missing = emozoo("serve", str(tmp_path / "nope.onnx"), "--port", "0")  # as a user sees it: one line
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: {tmp_path / 'nope.onnx'}: no such ONNX file"

    def serve(*args: str) -> tuple[int, str]:  # the rest in process: each fails before the server would start
        result = CliRunner().invoke(cli, ["serve", *args, "--port", "0"])
        assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError)
        return result.exit_code, result.output

    assert serve(str(tmp_path)) == (1, f"error: {tmp_path}: not a saved emozoo model (manifest.json is missing)\n")
    assert serve(f"a={model_dir}", f"a={model_dir}") == (
        1, "error: two models are called 'a'; name them apart with NAME=PATH\n")
    code, output = serve(str(model_dir), "--window", "0.1")
    assert code == 2 and "window_seconds" in output
    code, output = serve(str(model_dir), "--default-model", "other")
    assert code == 2 and "--default-model 'other' is not among the models" in output
    broken = tmp_path / "broken.onnx"
    broken.write_text("not a model")
    code, output = serve(str(broken))
    assert code == 1 and output.startswith(f"error: {broken}: not a loadable ONNX model")
    code, output = serve(str(model_dir), "--device", "cuda")  # a classic model has no CUDA path
    assert code == 1 and "runs on the CPU only" in output
    code, output = serve(str(model_dir), "--device", "tpu")
    assert code == 2 and "--device" in output


BLOCK_SERVE_EXTRA = "import sys; sys.modules['fastapi'] = None; sys.argv[0] = 'emozoo'; " \
                    "from zoo.cli.main import main; main()"


def test_without_the_serve_extra_the_cli_works_and_serve_says_what_to_install() -> None:
    """fastapi blocked (as if not installed): the rest of the CLI imports it nowhere; `serve` names the extra."""
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", BLOCK_SERVE_EXTRA, *args], capture_output=True, text=True,
                              timeout=120)

    assert run("--help").returncode == 0
    models = run("models")
    assert models.returncode == 0 and "librosa-logreg" in models.stdout
    serve = run("serve")
    assert serve.returncode == 1 and "Traceback" not in serve.stderr
    assert "'fastapi' is missing" in serve.stderr and "pip install 'emozoo[serve]'" in serve.stderr


def test_no_model_and_no_bundled_default_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("zoo.bundled.default_model_path", lambda: tmp_path / "emozoo-default.onnx")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "bundled default model is missing" in result.output and "emozoo-default.onnx" in result.output


def test_no_model_serves_the_bundled_default(emodb_dir: Path) -> None:
    if not default_model_path().is_file():
        pytest.skip(f"the bundled default model is not built yet ({default_model_path()})")
    clip = emodb_clips(emodb_dir)[0][0]
    with load_test.running_server([], []) as url:
        listed = httpx.get(f"{url}/v1/models").json()["models"]
        assert [m["name"] for m in listed] == ["emozoo-default"] and listed[0]["kind"] == "onnx"
        response = httpx.post(f"{url}/v1/predict", files={"file": (clip.name, clip.read_bytes())}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["model"] == "emozoo-default"


def test_load_test_runs_bounded_and_reports(served: Path, tmp_path: Path, emodb_dir: Path) -> None:
    out = tmp_path / "load.json"
    report = load_test.main([f"tiny={served}", "--requests", "24", "--concurrency", "4", "--json", str(out),
                             "--serve-options", "--max-concurrency 2"])
    assert report["requests"] == 24 and report["errors"] == 0 and report["outcomes"] == {"200": 24}
    assert report["requests_per_second"] > 0
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["server_limits"]["max_concurrency"] == 2
    assert json.loads(out.read_text()) == report
