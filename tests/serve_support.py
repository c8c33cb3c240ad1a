"""Helpers for the `emozoo serve` tests: a tiny real model, and a real uvicorn server on a loopback port."""

from __future__ import annotations

import csv
import functools
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

from zoo.serve import ServeSettings, create_app

LOOPBACK = "127.0.0.1"
CLIPS_PER_EMOTION = 4
TRAIN_SECONDS = 2.0  # the first 2 s of each clip: enough for a model that only has to be real, not good


def emodb_clips(emodb: Path) -> list[tuple[Path, str]]:
    with (emodb / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_label: dict[str, list[Path]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(emodb / row["path"])
    return [(path, label) for label in sorted(by_label) for path in by_label[label][:CLIPS_PER_EMOTION]]


@functools.cache
def tiny_model(emodb: Path, out: Path) -> Path:
    """librosa-logreg fitted on 24 emodb clips (4 per emotion, 2 s each), saved once per test session."""
    import zoo
    from zoo.audio import read_audio
    from zoo.labels import normalise_label

    model = zoo.create_model("librosa-logreg", use_cache=False, n_jobs=1)
    clips = emodb_clips(emodb)
    limit = int(TRAIN_SECONDS * model.sample_rate)
    waveforms = [read_audio(path, model.sample_rate)[0][:limit] for path, _ in clips]
    model.fit(waveforms, [normalise_label(label) for _, label in clips])
    return model.save(out)


@functools.cache
def tiny_onnx(model_dir: Path, out: Path) -> Path | None:
    """The tiny model exported to ONNX, or None while the exporter or the ONNX runtime is not there yet."""
    try:
        from exporters import export_model
        from zoo.onnx_runtime import OnnxEmotionModel  # noqa: F401
    except ImportError:
        return None
    from zoo.api import load

    export_model(load(model_dir), out)
    return out


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    return sock


@contextmanager
def live_server(models: Mapping[str, Any], settings: ServeSettings) -> Iterator[str]:
    """Run the real app under uvicorn in a background thread on a free loopback port; yield its base URL."""
    app = create_app(models, settings)
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


class SlowModel:
    """A real model that takes `delay` seconds longer per call: makes timeouts and a full queue reproducible."""

    def __init__(self, model: Any, delay: float) -> None:
        self.model = model
        self.delay = delay
        self.sample_rate = model.sample_rate
        self.name = "slow"
        self.metadata = {"wraps": getattr(model, "name", "model"), "delay": delay}

    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        time.sleep(self.delay)
        return self.model.predict_proba(waveforms)
