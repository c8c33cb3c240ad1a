"""The example plugin of docs/plugins.md (tests/fixtures/third_party/emozoo_hello), installed the way pip
would leave it (a package plus its .dist-info on the path), through all six commands the guide promises:
`models`, `train`, `cv`, `export`, `bench`, `serve`, on 36 real RAVDESS clips listed in its own TSV layout."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from zoo.labels import LABELS

THIRD_PARTY = Path(__file__).parent / "fixtures" / "third_party"
SPEAKERS = 6  # one clip of each emotion from each: 36 clips
DEMO = REPO_ROOT / "zoo" / "assets" / "demo"
FAST_BENCH = ["--warmup", "1", "--min-iterations", "2", "--min-seconds", "0", "--max-seconds", "2",
              "--offline-iterations", "1", "--batch-size", "4", "--threads", "1"]


def emozoo(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a user who installed emozoo-hello: it is on the path, with its entry points."""
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(THIRD_PARTY), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        EMOZOO_CACHE_DIR=str(tmp_path_factory.mktemp("feature-cache")),
        EMOZOO_QUIET="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
    )


@pytest.fixture(scope="module")
def listing(ravdess_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `hello-tsv` listing (the plugin's own dataset reader): one clip per emotion of six RAVDESS actors."""
    rows = list(csv.DictReader((ravdess_dir / "manifest.csv").open(newline="")))
    speakers = sorted({row["speaker"] for row in rows})[:SPEAKERS]
    chosen: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["speaker"] in speakers:
            chosen.setdefault(f"{row['speaker']}/{row['label']}", row)
    path = tmp_path_factory.mktemp("hello-data") / "clips.tsv"
    lines = ["path\temotion\tspeaker"] + [
        f"{(ravdess_dir / row['path']).resolve()}\t{row['label']}\t{row['speaker']}" for row in chosen.values()
    ]
    path.write_text("\n".join(lines) + "\n")
    assert len(chosen) == SPEAKERS * len(LABELS)
    return path


def test_models_lists_the_plugin_with_its_exporters(plugin_env: dict[str, str]) -> None:
    result = emozoo("models", "--json", env=plugin_env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("hello-majority", "hello-energy"):
        assert rows[name]["plugin"] == "hello (emozoo-hello 0.1.0)"
        assert rows[name]["exportable"] is True
    assert "broken plugins" not in result.stderr


@pytest.fixture(scope="module")
def trained(listing: Path, plugin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    for name, params in (("hello-energy", ["--param", "hidden=8", "--param", "epochs=100"]),
                         ("hello-majority", [])):
        result = emozoo("train", name, "--data", str(listing), "--out", str(runs / name), *params, env=plugin_env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1])["clips"] == SPEAKERS * len(LABELS)
        assert "36 clips (hello-tsv), 6 speakers" in result.stderr  # read by the plugin's reader
    return runs


def test_train_maps_params_and_passes_speaker_groups(trained: Path) -> None:
    manifest = json.loads((trained / "hello-energy" / "manifest.json").read_text())
    assert manifest["plugin"] == "hello-energy" and manifest["family"] == "hello-energy"
    assert manifest["params"]["hidden"] == 8 and manifest["params"]["epochs"] == 100  # --param -> __init__
    assert manifest["training_data"]["n_clips"] == SPEAKERS * len(LABELS)
    # train passed the speaker ids as `groups`: one speaker was held out for early stopping
    training = json.loads((trained / "hello-energy" / "training.json").read_text())
    assert len(training["validation_speakers"]) == 1 and 1 <= training["best_epoch"] <= 100


def test_cv_runs_speaker_grouped_folds(listing: Path, plugin_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "cv.json"
    result = emozoo("cv", "hello-energy", "--data", str(listing), "--folds", "3", "--param", "epochs=30",
                    "--sweep", "hidden=4,8", "--json-out", str(out), env=plugin_env)
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["params"]["hidden"] for r in results] == [4, 8]
    for summary in results:
        assert summary["folds"] == 3 and 0 <= summary["accuracy"] <= 1
        assert sum(map(sum, summary["pooled"]["confusion"])) == SPEAKERS * len(LABELS)


@pytest.fixture(scope="module")
def exported(trained: Path, listing: Path, plugin_env: dict[str, str]) -> dict[str, Path]:
    files = {}
    for name in ("hello-energy", "hello-majority"):
        target = trained / f"{name}.onnx"
        # hello-energy: the reusable torch exporter, validated on the clips; hello-majority: a hand-built graph
        extra = ["--validate-on", str(listing)] if name == "hello-energy" else []
        result = emozoo("export", str(trained / name), "-o", str(target), *extra, env=plugin_env)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["agreement"] == 1.0 and summary["max_abs_diff"] <= 1e-4, summary
        files[name] = target
    return files


def test_export_validates_both_exporters(exported: dict[str, Path]) -> None:
    import zoo

    for name, path in exported.items():
        model = zoo.load(path)  # onnxruntime only: the plugin is not needed to run the file
        assert model.name == name and model.metadata["family"] in {"hello", "hello-energy"}
        assert model.metadata["validation"]["passed"] is True


def test_bench_times_native_and_onnx(listing: Path, plugin_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = emozoo("bench", "hello-energy", "--data", str(listing), "--param", "hello-energy:epochs=30",
                    "--runtime", "native,onnx", "--device", "cpu", "--out", str(out), *FAST_BENCH, env=plugin_env)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    keys = {(r["runtime"], r["scenario"]) for r in document["records"]}
    assert {("native", "single-stream"), ("native", "offline"), ("onnx", "single-stream"),
            ("onnx", "offline")} <= keys
    assert all(r["model"] == "hello-energy epochs=30" for r in document["records"])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_with_the_native_model_and_both_onnx_files(trained: Path, exported: dict[str, Path],
                                                                 plugin_env: dict[str, str]) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "serve", f"native={trained / 'hello-energy'}",
         f"onnx={exported['hello-energy']}", f"majority={exported['hello-majority']}", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        env=plugin_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "emozoo serve did not start"
            time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/v1/models", timeout=10) as response:
            served = {m["name"]: m for m in json.load(response)["models"]}
        assert served["native"]["kind"] == "native" and served["native"]["plugin"] == "hello-energy"
        assert served["onnx"]["kind"] == "onnx" and served["majority"]["plugin"] == "hello-majority"
        audio = (DEMO / "angry.flac").read_bytes()
        answers = {}
        for name in served:
            request = urllib.request.Request(f"{base}/v1/predict?model={name}", data=audio,
                                             headers={"Content-Type": "audio/flac"})
            with urllib.request.urlopen(request, timeout=30) as response:
                answers[name] = json.load(response)
            assert answers[name]["label"] in LABELS and answers[name]["model"] == name
        # the native model and its ONNX export answer alike
        for label in LABELS:
            assert answers["native"]["probabilities"][label] == pytest.approx(
                answers["onnx"]["probabilities"][label], abs=1e-4)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
