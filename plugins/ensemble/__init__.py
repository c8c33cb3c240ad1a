"""Built-in ensemble plugin: registered models combined by probability mean or stacking, one ONNX file.

Registered through the ``emozoo`` entry-point group in pyproject.toml, exactly as a third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    from plugins.ensemble.model import Ensemble

    register("ensemble", Ensemble, description="several models combined: probability mean or stacking",
             family="ensemble")


@hookimpl
def register_exporters(register: Callable[..., None]) -> None:
    from zoo.registry import LazyExporter

    register("ensemble", LazyExporter("exporters.ensemble:EnsembleExporter"))
