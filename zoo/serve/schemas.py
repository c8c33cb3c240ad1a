"""Response bodies, published in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model

from zoo.labels import LABELS

Probabilities = create_model(  # one field per emotion, in label-id order
    "Probabilities",
    __doc__="Probability of each emotion; they sum to 1.",
    **{label: (float, Field(ge=0.0, le=1.0)) for label in LABELS},
)


class WindowPrediction(BaseModel):
    start: float = Field(description="Seconds from the start of the audio.")
    end: float
    silent: bool = Field(description="Too quiet to score; left out of the overall answer.")
    label: str | None = None
    label_id: int | None = None
    confidence: float | None = None
    probabilities: Probabilities | None = None  # type: ignore[valid-type]


class Prediction(BaseModel):
    model: str = Field(description="Name of the model that answered.")
    label: str = Field(description="The most probable emotion, or 'uncertain' when its probability is below "
                                   "min_confidence (query parameter or server setting).")
    label_id: int | None = Field(ge=0, lt=len(LABELS), description="Id of `label`; null when uncertain.")
    confidence: float = Field(description="Probability of the most probable emotion.")
    probabilities: Probabilities  # type: ignore[valid-type]
    duration: float = Field(description="Length of the audio in seconds.")
    sample_rate: int = Field(description="Sample rate of the audio as sent, in Hz.")
    windows: list[WindowPrediction] = Field(
        description="Per-window results; the overall answer is the mean of the scored windows' probabilities."
    )


class SegmentPrediction(BaseModel):
    start: float = Field(description="Seconds from the start of the audio.")
    end: float
    label: str
    label_id: int = Field(ge=0, lt=len(LABELS))
    confidence: float = Field(description="Probability of the predicted label.")
    probabilities: Probabilities  # type: ignore[valid-type]


class Timeline(BaseModel):
    model: str = Field(description="Name of the model that answered.")
    duration: float = Field(description="Length of the audio in seconds.")
    sample_rate: int = Field(description="Sample rate of the audio as sent, in Hz.")
    vad: str = Field(description="silero, or energy where the silero-vad package is not installed (less reliable).")
    segments: list[SegmentPrediction] = Field(
        description="Speech segments in time order; empty for silence, noise or music."
    )


class ModelInfo(BaseModel):
    name: str
    kind: str = Field(description="onnx (exported file), native (saved model directory) or custom")
    plugin: str
    sample_rate: int
    labels: list[str]
    default: bool
    metadata: dict[str, Any]


class ModelList(BaseModel):
    models: list[ModelInfo]


class Limits(BaseModel):
    max_upload_bytes: int
    max_duration: float
    request_timeout: float
    max_concurrency: int
    max_queue: int
    window_seconds: float
    hop_seconds: float


class Health(BaseModel):
    status: str
    models: list[str]
    running: int
    waiting: int
    limits: Limits
