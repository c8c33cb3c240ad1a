"""Request limits: body size (checked from Content-Length and while streaming) and bounded inference.

Inference runs on a fixed pool of threads, off the event loop. At most `max_concurrency` requests run and
`max_queue` wait; one more is refused at once with 503 rather than piling up until everything times out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zoo.serve.errors import ApiError, PayloadTooLarge, error_response

T = TypeVar("T")


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413: up front when Content-Length says so, else mid-stream.

    The app never reads a refused body. uvicorn discards what the client still sends and keeps the
    connection, so ordinary clients (which write the whole body before reading) see a clean 413 instead of
    a reset; a body announced as absurdly large gets `Connection: close` and is not waited for at all.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.close_above = max(8 * max_bytes, 64 * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(
                413,
                f"request body of {int(declared)} bytes is larger than the {self.max_bytes} byte limit",
                headers={"Connection": "close"} if int(declared) > self.close_above else None,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class InferencePool:
    """A thread pool with a bounded waiting line and a per-call deadline."""

    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self.max_concurrency = max_concurrency
        self.capacity = max_concurrency + max_queue
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="emozoo-inference")
        self._lock = threading.Lock()
        self._admitted = 0  # submitted and not yet finished (running or waiting)
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return max(0, self._admitted - self._running)

    async def run(self, function: Callable[..., T], *args: Any, timeout: float) -> T:
        """Run `function(*args)` on the pool; 503 when the line is full, 504 after `timeout` seconds.

        A call still waiting when its time is up never runs; one already running finishes in the
        background and keeps its thread (and its place in the count) until then.
        """
        with self._lock:
            if self._admitted >= self.capacity:
                raise ApiError(
                    503,
                    f"server is busy: {self.max_concurrency} requests running and "
                    f"{self.capacity - self.max_concurrency} waiting; retry shortly",
                    headers={"Retry-After": "1"},
                )
            self._admitted += 1
        try:
            future = self._executor.submit(self._counted, function, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        if timeout <= 0:
            future.cancel()
            raise ApiError(504, "request timed out before inference could start")
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise ApiError(
                504, f"inference did not finish within the {timeout:.1f} s left of the request timeout"
            ) from None

    def _counted(self, function: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._running += 1
        try:
            return function(*args)
        finally:
            with self._lock:
                self._running -= 1

    def _release(self, _: Future[Any] | None) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
