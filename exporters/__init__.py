"""ONNX export: one self-contained, validated ONNX file per model (waveform in, emotion out)."""

from __future__ import annotations

from exporters.base import ExportConfig
from exporters.export import ExportReport, export_model

__all__ = ["ExportConfig", "ExportReport", "export_model"]
