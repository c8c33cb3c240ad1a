"""POST /v1/timeline: the upload is streamed to a temporary file, then `zoo.timeline` reads it block by block.

The request body never sits in memory whole (a multipart file is spooled to disk by the form parser and
copied on; an audio/* or float32 body is written as it arrives). The same limits and error JSON as
/v1/predict apply: body size (413), audio duration (413), request timeout (408/504), bad audio (422), full
queue (503), a model that fails (500 model_error). Silence, noise or music give 200 with no segments.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from zoo.errors import AudioError
from zoo.serve.errors import ApiError, log
from zoo.serve.models import ServedModel
from zoo.serve.settings import ServeSettings
from zoo.timeline import timeline_file
from zoo.vad import SpeechDetector, VadFallbackWarning, load_vad

CHUNK = 1 << 20
_detectors = threading.local()  # one VAD per inference thread: it carries state while it reads a file


async def receive_to_file(request: Request, media: str, field: str) -> tuple[str, str]:
    """Write the audio of the request to a temporary file as it arrives; returns (path, source for errors).

    The caller deletes the file. multipart: the file in `field`; otherwise the body itself.
    """
    handle = tempfile.NamedTemporaryFile(prefix="emozoo-timeline-", delete=False)  # noqa: SIM115 - caller deletes
    try:
        with handle:
            if media == "multipart/form-data":
                source = await _copy_form_file(request, field, handle)
            else:
                source = "request body"
                async for chunk in request.stream():
                    handle.write(chunk)
        if not os.path.getsize(handle.name):
            raise ApiError(400, f"{source} is empty (0 bytes)")
        return handle.name, source
    except BaseException:
        os.unlink(handle.name)
        raise


async def _copy_form_file(request: Request, field: str, handle: Any) -> str:
    form = await request.form(max_files=1, max_fields=16)
    try:
        upload = form.get(field)
        if upload is None:
            sent = ", ".join(repr(key) for key in form.keys()) or "none"
            raise ApiError(422, f"multipart upload has no field {field!r} (fields sent: {sent})", code="missing_file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, f"field {field!r} holds text, not a file: upload it as a file "
                                f"(curl -F {field}=@talk.wav)", code="missing_file")
        while chunk := await upload.read(CHUNK):
            handle.write(chunk)
        name = (upload.filename or "")[:120]
        return f"uploaded file {name!r}" if name else "uploaded file"
    finally:
        await form.close()


def run_timeline(path: str, source: str, served: ServedModel, settings: ServeSettings,
                 raw_rate: int | None) -> dict[str, Any]:
    """Blocking, on the inference pool: the timeline of the audio in `path` as a JSON-ready dict."""
    try:
        result = timeline_file(served.model, path, detector=_detector(), max_seconds=settings.max_duration,
                               raw_rate=raw_rate, source=source)
    except (ApiError, AudioError):
        raise
    except Exception as error:  # a bug, not bad input: a 500 like /v1/predict's
        log.exception("model %r failed", served.name)
        raise ApiError(500, f"model {served.name!r} failed on this audio ({type(error).__name__}: {error})",
                       code="model_error") from None
    return {
        "model": served.name,
        "duration": result.duration,
        "sample_rate": result.sample_rate,
        "vad": result.vad,
        "segments": [{"start": round(s.start, 3), "end": round(s.end, 3), **s.answer()} for s in result.segments],
    }


def _detector() -> SpeechDetector:
    detector = getattr(_detectors, "vad", None)
    if detector is None:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", VadFallbackWarning)
            detector = load_vad("auto")
        for warning in caught:
            log.warning("%s", warning.message)
        _detectors.vad = detector
    return detector
