"""Limits and windowing of the HTTP service, validated once at start-up."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator


def default_concurrency() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class ServeSettings(BaseModel):
    """Everything `emozoo serve` can tune; every limit is enforced per server process (uvicorn worker)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_upload_bytes: int = Field(32 * 1024 * 1024, ge=1, description="Largest request body accepted (413).")
    max_duration: float = Field(120.0, gt=0, description="Longest audio accepted, in seconds (413).")
    request_timeout: float = Field(30.0, gt=0, description="Seconds a request may take in all (408/504).")
    max_concurrency: int = Field(
        default_factory=default_concurrency,
        ge=1,
        description="Requests decoded and run through a model at once (threads).",
    )
    max_queue: int = Field(32, ge=0, description="Requests that may wait for a free thread; more get 503.")
    window_seconds: float = Field(4.0, ge=0.5, description="Long audio is scored in windows this long.")
    hop_seconds: float | None = Field(None, gt=0, description="Step between windows (default: window).")
    default_model: str | None = Field(None, description="Model used when a request names none.")
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Below this top probability the label is 'uncertain' (a request's ?min_confidence= overrides).",
    )

    @model_validator(mode="after")
    def _hop_not_longer_than_window(self) -> ServeSettings:
        if self.hop_seconds is not None and self.hop_seconds > self.window_seconds:
            raise ValueError(f"hop_seconds {self.hop_seconds} is longer than window_seconds {self.window_seconds}")
        return self

    @property
    def hop(self) -> float:
        return self.hop_seconds if self.hop_seconds is not None else self.window_seconds
