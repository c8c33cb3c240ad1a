"""Bounded load test of `emozoo serve`, on the loopback interface only.

Starts the real server (`python -m zoo.cli serve`) in a subprocess on a free 127.0.0.1 port, sends a fixed
number of prediction requests at a fixed concurrency with httpx (async), stops the server and reports
requests/s, latency percentiles and errors. Nothing leaves the machine.

    python -m benchmarks.load_test MODEL.onnx --requests 300 --concurrency 8 --json load.json
    python -m benchmarks.load_test MODEL.onnx --serve-options "--workers 2 --max-concurrency 1"
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(models: Sequence[str], serve_args: Sequence[str], startup_timeout: float = 120.0) -> Iterator[str]:
    """`emozoo serve` in a subprocess on a free loopback port; yields its base URL, stops it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "zoo.cli", "serve", *models, "--host", LOOPBACK, "--port", str(port),
               "--no-access-log", "--log-level", "warning", *serve_args]
    env = {**os.environ, "EMOZOO_QUIET": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with code {process.returncode}:\n{process.communicate()[1]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer /healthz within {startup_timeout:.0f} s")
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def default_clip() -> bytes:
    """A real speech clip when the corpora or the bundled demo clips are there, else 3 s of a synthetic voice."""
    import soundfile as sf

    data = Path(os.environ.get("EMOZOO_DATA", REPO_ROOT.parent / "shared" / "data"))
    candidates = sorted((data / "emodb").glob("*.wav"))[:1]
    try:
        from zoo.bundled import demo_clips_dir

        candidates += sorted(demo_clips_dir().glob("*.wav"))[:1]
    except ImportError:
        pass
    if candidates:
        return candidates[0].read_bytes()
    rate = 16_000
    t = np.arange(3 * rate) / rate
    voice = 0.3 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 3 * t)) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * t))
    buffer = io.BytesIO()
    sf.write(buffer, voice.astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


async def hammer(url: str, clip: bytes, requests: int, concurrency: int, max_seconds: float,
                 model: str | None) -> dict[str, Any]:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    next_index = 0
    params = {"model": model} if model else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for _ in range(min(concurrency, requests)):  # warm-up: connections open, model caches primed
            await client.post("/v1/predict", files={"file": ("clip.wav", clip)}, params=params)
        stop_at = time.perf_counter() + max_seconds

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests and time.perf_counter() < stop_at:
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/predict", files={"file": ("clip.wav", clip)}, params=params)
                    outcomes[str(response.status_code)] += 1
                except httpx.HTTPError as error:
                    outcomes[type(error).__name__] += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began

    ms = np.array(latencies) * 1000
    sent = len(latencies)
    return {
        "requests": sent,
        "concurrency": concurrency,
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(sent / wall, 2) if wall else 0.0,
        "latency_ms": {name: round(float(np.percentile(ms, q)), 1) if sent else None
                       for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "errors": sent - outcomes["200"],
        "outcomes": dict(outcomes),
        "stopped_early": sent < requests,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="Models to serve (default: the bundled model).")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--clip", type=Path, help="Audio file to send (default: a real speech clip).")
    parser.add_argument("--model", help="Served model to ask for (?model=).")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Stop sending after this long.")
    parser.add_argument("--json", type=Path, help="Also write the report here.")
    parser.add_argument("--serve-options", default="",
                        help="More `emozoo serve` options, quoted (e.g. \"--workers 2 --max-concurrency 2\").")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    serve_args = shlex.split(args.serve_options)
    clip = args.clip.read_bytes() if args.clip else default_clip()

    with running_server(args.models, serve_args) as url:
        health = httpx.get(f"{url}/healthz").json()
        report = asyncio.run(hammer(url, clip, args.requests, args.concurrency, args.max_seconds, args.model))
    report.update({
        "models": health["models"], "clip_bytes": len(clip), "server_options": serve_args,
        "server_limits": health["limits"], "cpu_count": os.cpu_count(),
    })
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        from zoo.storage import atomic_write_text

        atomic_write_text(args.json, text + "\n")
    return report


if __name__ == "__main__":
    main()
