"""`emozoo serve`: answer emotion predictions over HTTP."""

from __future__ import annotations

import json
import os

import click

from zoo.api import DEVICES
from zoo.cli.confidence import min_confidence_option
from zoo.errors import EmozooError, ModelFileError


@click.command("serve")
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Server processes; each loads every model and has its own limits.",
)
@click.option(
    "--max-upload-mb",
    default=32.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest request body (413 beyond).",
)
@click.option(
    "--max-duration",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Longest audio accepted, in seconds (413 beyond).",
)
@click.option(
    "--timeout",
    "request_timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request may take (504 beyond).",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(1),
    default=None,
    help="Requests run at once per worker (threads) [default: cores, at most 4].",
)
@click.option(
    "--max-queue",
    default=32,
    show_default=True,
    type=click.IntRange(0),
    help="Requests that may wait for a thread; more are refused with 503.",
)
@click.option(
    "--window",
    "window_seconds",
    default=4.0,
    show_default=True,
    type=float,
    help="Long audio is scored in windows of this many seconds, then averaged.",
)
@click.option("--hop", "hop_seconds", default=None, type=float, help="Step between windows [default: --window].")
@click.option("--default-model", default=None, help="Model used when a request names none [default: the first].")
@min_confidence_option("; a request's ?min_confidence= overrides it")
@click.option("--threads", type=click.IntRange(1), default=None, help="onnxruntime threads per ONNX model.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto: CUDA where usable (ONNX files and deep models), else the CPU.")
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_command(
    models: tuple[str, ...],
    host: str,
    port: int,
    workers: int,
    max_upload_mb: float,
    max_duration: float,
    request_timeout: float,
    max_concurrency: int | None,
    max_queue: int,
    window_seconds: float,
    hop_seconds: float | None,
    default_model: str | None,
    min_confidence: float | None,
    threads: int | None,
    device: str,
    access_log: bool,
    log_level: str,
) -> None:
    """Serve MODELs (.onnx files or saved model directories; NAME=PATH names one) over HTTP.

    With no MODEL, serves the bundled default model. Endpoints: POST /v1/predict, GET /v1/models,
    GET /healthz, and the OpenAPI schema at /openapi.json (browsable at /docs where a package ships Swagger UI:
    the serve extra's fastapi-offline; never loaded from a CDN).
    """
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (multipart uploads)
        import uvicorn
        from pydantic import ValidationError

        from zoo.serve import ServeSettings, create_app, load_models
        from zoo.serve.app import CONFIG_ENV
        from zoo.serve.models import model_names
    except ImportError as error:
        missing = error.name or str(error)
        raise EmozooError(
            f"emozoo serve needs the serve extra (fastapi, uvicorn, python-multipart; {missing!r} is missing): "
            "pip install 'emozoo[serve]'"
        ) from None

    if not models:
        from zoo.bundled import default_model_path

        bundled = default_model_path()
        if not bundled.is_file():
            raise ModelFileError(f"no model given and the bundled default model is missing ({bundled})")
        models = (str(bundled),)
    options = {
        "max_upload_bytes": int(max_upload_mb * 1024 * 1024),
        "max_duration": max_duration,
        "request_timeout": request_timeout,
        "max_queue": max_queue,
        "window_seconds": window_seconds,
        "hop_seconds": hop_seconds,
        "default_model": default_model,
        "min_confidence": min_confidence,
    }
    if max_concurrency is not None:
        options["max_concurrency"] = max_concurrency
    try:
        settings = ServeSettings(**options)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.UsageError(problems) from None
    names = model_names(models)
    if settings.default_model is not None and settings.default_model not in names:
        raise click.UsageError(
            f"--default-model {settings.default_model!r} is not among the models: {', '.join(names)}"
        )
    loaded = load_models(models, threads=threads, device=device)  # here too: a bad model fails here, clearly
    app = create_app(loaded, settings)
    click.echo(
        f"serving {', '.join(loaded)} on http://{host}:{port} ({workers} worker(s), "
        f"{settings.max_concurrency} inference thread(s) each; {app.state.docs})",
        err=True,
    )
    run = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": log_level,
        "timeout_graceful_shutdown": 5,
    }
    if workers == 1:
        uvicorn.run(app, **run)
        return
    del app, loaded
    os.environ[CONFIG_ENV] = json.dumps(
        {
            "models": list(models),
            "threads": threads,
            "device": device,
            "settings": settings.model_dump(exclude_unset=False),
        }
    )
    uvicorn.run("zoo.serve.app:app_from_env", factory=True, workers=workers, **run)
