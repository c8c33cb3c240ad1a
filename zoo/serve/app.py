"""The FastAPI application: POST /v1/predict and /v1/timeline, GET /v1/models, GET /healthz (and /openapi.json,
/docs, /redoc)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Request

from zoo.errors import AudioError, EmozooError
from zoo.labels import LABELS
from zoo.serve.docs import install_docs, swagger_assets
from zoo.serve.errors import ApiError, CatchAllMiddleware, ErrorResponse, install_error_handlers, log
from zoo.serve.inference import decode_file, decode_raw, score
from zoo.serve.limits import BodyLimitMiddleware, InferencePool
from zoo.serve.models import ServedModel, describe, load_models
from zoo.serve.schemas import Health, Limits, ModelInfo, ModelList, Prediction, Timeline
from zoo.serve.settings import ServeSettings
from zoo.serve.timeline import receive_to_file, run_timeline

CONFIG_ENV = "EMOZOO_SERVE_CONFIG"
FILE_FIELD = "file"
RAW_TYPES = {"application/octet-stream"}
T = TypeVar("T")

_BINARY = {"type": "string", "format": "binary"}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": [FILE_FIELD], "properties": {FILE_FIELD: _BINARY}},
        },
        "application/octet-stream": {"schema": _BINARY},
        "audio/*": {"schema": _BINARY},
    },
    "description": (
        "An audio file (WAV, FLAC, OGG, MP3: anything libsndfile decodes) as multipart field `file` or "
        "as the body with an audio/* content type; or raw little-endian float32 mono samples with "
        "Content-Type application/octet-stream and the `sample_rate` query parameter. Stereo is averaged "
        "to mono."
    ),
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "malformed request (empty body, broken multipart)",
        404: "unknown model",
        408: "the body did not arrive within the request timeout",
        413: "body over the upload limit, or audio over the duration limit",
        415: "unsupported Content-Type",
        422: "not usable audio (not audio, truncated, NaN samples, too short, silent, bad sample rate...)",
        503: "all inference threads busy and the waiting line full; retry after Retry-After seconds",
        504: "inference did not finish within the request timeout",
    }.items()
}


def create_app(models: Mapping[str, Any], settings: ServeSettings | None = None) -> FastAPI:
    """An app answering with `models` (name -> object with `sample_rate` and `predict_proba`)."""
    from zoo import __version__

    settings = settings or ServeSettings()
    if not models:
        raise EmozooError("no model to serve")
    served = {name: describe(name, model) for name, model in models.items()}
    default = settings.default_model or next(iter(served))
    if default not in served:
        raise EmozooError(f"default model {default!r} is not among the served models: {', '.join(served)}")
    pool = InferencePool(settings.max_concurrency, settings.max_queue)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(
        title="emozoo",
        version=__version__,
        lifespan=lifespan,
        description="Speech emotion recognition: send audio, get one of " + ", ".join(LABELS) + ".",
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: install_docs serves local copies
        redoc_url=None,
    )
    app.state.settings, app.state.models, app.state.pool = settings, served, pool
    app.state.docs = install_docs(app, swagger_assets())
    install_error_handlers(app)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> Health:
        shown = settings.model_dump(exclude={"default_model", "hop_seconds", "min_confidence"})
        limits = Limits(**shown, hop_seconds=settings.hop)
        return Health(status="ok", models=list(served), running=pool.running, waiting=pool.waiting, limits=limits)

    @app.get("/v1/models", response_model=ModelList, tags=["models"])
    async def list_models() -> ModelList:
        return ModelList(models=[_info(m, m.name == default) for m in served.values()])

    def begin(request: Request, model: str | None) -> tuple[asyncio.AbstractEventLoop, float, Any, str]:
        """The event loop, the request's deadline, the model asked for and the body's media type."""
        loop = asyncio.get_running_loop()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        return loop, loop.time() + settings.request_timeout, _pick(served, model or default), media

    @app.post(
        "/v1/predict",
        response_model=Prediction,
        responses=_ERRORS,
        tags=["predict"],
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def predict(
        request: Request,
        model: str | None = Query(None, description=f"Served model to use (default: {default})."),
        sample_rate: int | None = Query(None, description="Rate of raw float32 bodies, in Hz."),
        min_confidence: float | None = Query(
            None, ge=0.0, le=1.0,
            description="Below this top probability the label is 'uncertain', the probabilities still given "
                        f"(default: {settings.min_confidence if settings.min_confidence is not None else 'none'}).",
        ),
    ) -> dict[str, Any]:
        loop, deadline, chosen, media = begin(request, model)
        if media == "multipart/form-data":
            data, source = await _within(deadline, _read_upload(request))
            job = partial(decode_file, data, source, chosen, settings)
        elif media.startswith("audio/"):
            data, source = await _within(deadline, request.body()), "request body"
            job = partial(decode_file, data, source, chosen, settings)
        elif media in RAW_TYPES:
            data, source = await _within(deadline, request.body()), "request body"
            job = partial(decode_raw, data, sample_rate, source, chosen, settings)
        else:
            raise _unsupported(media)
        if not data:
            raise ApiError(400, f"{source} is empty (0 bytes)")
        return await pool.run(_decode_and_score, job, chosen, settings, min_confidence,
                              timeout=deadline - loop.time())

    @app.post(
        "/v1/timeline",
        response_model=Timeline,
        responses=_ERRORS,
        tags=["predict"],
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def timeline(
        request: Request,
        model: str | None = Query(None, description=f"Served model to use (default: {default})."),
        sample_rate: int | None = Query(None, description="Rate of raw float32 bodies, in Hz."),
    ) -> dict[str, Any]:
        """Speech segments of a long recording (Silero VAD) and the emotion of each; see docs/timeline.md."""
        loop, deadline, chosen, media = begin(request, model)
        if media != "multipart/form-data" and not media.startswith("audio/") and media not in RAW_TYPES:
            raise _unsupported(media)
        raw_rate = None
        if media in RAW_TYPES:
            if sample_rate is None:
                raise AudioError("request body", "raw float32 audio needs the sample_rate query parameter "
                                                 "(e.g. ?sample_rate=16000)")
            raw_rate = sample_rate
        path, source = await _within(deadline, receive_to_file(request, media, FILE_FIELD))
        try:
            return await pool.run(run_timeline, path, source, chosen, settings, raw_rate,
                                  timeout=deadline - loop.time())
        finally:
            os.unlink(path)

    return app


def _unsupported(media: str) -> ApiError:
    return ApiError(
        415,
        f"Content-Type {media or '(none)'!r} is not accepted: send multipart/form-data "
        f"with field {FILE_FIELD!r}, an audio/* body, or application/octet-stream "
        "float32 samples with ?sample_rate=",
    )


def _decode_and_score(job: Callable[[], Any], served: ServedModel, settings: ServeSettings,
                      min_confidence: float | None = None) -> dict[str, Any]:
    try:
        waveform, input_rate = job()
        return score(served, waveform, input_rate, settings, min_confidence)
    except (ApiError, AudioError):
        raise
    except Exception as error:  # a bug, not bad input: a 500, answered like any other error (keep-alive kept)
        log.exception("model %r failed", served.name)
        raise ApiError(
            500, f"model {served.name!r} failed on this audio ({type(error).__name__}: {error})", code="model_error"
        ) from None


def _pick(served: Mapping[str, ServedModel], name: str) -> ServedModel:
    if name not in served:
        raise ApiError(404, f"unknown model {name!r}; served models: {', '.join(served)}", code="unknown_model")
    return served[name]


def _info(served: ServedModel, default: bool) -> ModelInfo:
    return ModelInfo(
        name=served.name,
        kind=served.kind,
        plugin=served.plugin,
        sample_rate=served.sample_rate,
        labels=list(LABELS),
        default=default,
        metadata=served.metadata,
    )


async def _within(deadline: float, work: Awaitable[T]) -> T:
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(work, max(remaining, 0.001))
    except asyncio.TimeoutError:
        raise ApiError(408, "the request body did not arrive within the request timeout") from None


async def _read_upload(request: Request) -> tuple[bytes, str]:
    form = await request.form(max_files=1, max_fields=16)
    try:
        upload = form.get(FILE_FIELD)
        if upload is None:
            sent = ", ".join(repr(key) for key in form.keys()) or "none"
            raise ApiError(
                422,
                f"multipart upload has no field {FILE_FIELD!r} (fields sent: {sent})",
                code="missing_file",
            )
        if isinstance(upload, str):
            raise ApiError(
                422,
                f"field {FILE_FIELD!r} holds text, not a file: upload it as a file (curl -F {FILE_FIELD}=@clip.wav)",
                code="missing_file",
            )
        name = (upload.filename or "")[:120]
        return await upload.read(), f"uploaded file {name!r}" if name else "uploaded file"
    finally:
        await form.close()


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory` and multi-worker `emozoo serve` (config in EMOZOO_SERVE_CONFIG)."""
    config = json.loads(os.environ[CONFIG_ENV])
    models = load_models(config["models"], threads=config.get("threads"), device=config.get("device", "auto"))
    return create_app(models, ServeSettings(**config.get("settings", {})))
