"""Every failure becomes JSON `{"error": code, "detail": message}` with a 4xx for bad input, never a crash."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zoo.audio import AudioTooLongError
from zoo.errors import AudioError

log = logging.getLogger("zoo.serve")

_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    503: "overloaded",
    504: "timeout",
}


class ErrorResponse(BaseModel):
    error: str
    detail: str


class ApiError(Exception):
    """An answer other than 200 that the service gives on purpose."""

    def __init__(
        self, status: int, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "error")
        self.headers = headers


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the {limit} byte limit")


def error_response(
    status: int, detail: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=code or _CODES.get(status, "error"), detail=detail)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.detail, error.code, error.headers)

    @app.exception_handler(AudioError)
    async def _audio_error(_: Request, error: AudioError) -> JSONResponse:
        if isinstance(error, AudioTooLongError):
            return error_response(413, str(error), "audio_too_long")
        return error_response(422, str(error), "invalid_audio")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = " ".join(str(part) for part in item.get("loc", ()))
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return error_response(422, "; ".join(problems) or "invalid request", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(error).__name__}); the server keeps running")


class CatchAllMiddleware:
    """Answer an unexpected exception with a JSON 500 and swallow it, so the connection stays usable.

    (Starlette's own last-resort handler re-raises after answering, and uvicorn then drops the connection.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, f"internal error ({type(error).__name__}); the server keeps running")
            await response(scope, receive, send)
