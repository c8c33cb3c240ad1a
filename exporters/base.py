"""The exporter contract: one exporter per model family (as Hugging Face Optimum has one config per family).

An exporter turns a fitted model into a self-contained ONNX graph:
inputs ``waveform`` float32 [batch, samples] at the model's rate and ``lengths`` int64 [batch] (valid samples
per row; rows are right-padded with zeros), outputs ``probabilities`` float32 [batch, 6] in label-id order
and ``label`` int64 [batch]. Batch and samples are dynamic axes. Feature extraction lives inside the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

WAVEFORM = "waveform"
LENGTHS = "lengths"
PROBABILITIES = "probabilities"
LABEL = "label"
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportConfig:
    """Per-family export settings and the validation tolerances the export must meet."""

    opset: int = DEFAULT_OPSET
    max_abs_diff: float = 1e-3
    min_agreement: float = 0.995
    # int8 weights move probabilities by far more than float rounding; a quantised export must still agree
    quantized_max_abs_diff: float = 0.05
    quantized_min_agreement: float = 0.98
    # below this many weights in the quantisable MatMul/Gemm nodes together, int8 cannot pay: quantising each
    # activation costs more than the smaller product saves (a logistic-regression head has a few thousand)
    min_quantized_weights: int = 65536


class Exporter(Protocol):
    family: str
    config: ExportConfig

    def build(self, model: Any, opset: int) -> Any:
        """Return an ``onnx.ModelProto`` with the graph contract above (metadata is added by the caller)."""
        ...
