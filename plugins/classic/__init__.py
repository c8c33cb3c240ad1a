"""Built-in classic plugin: librosa features with scikit-learn classifiers.

Registered through the ``emozoo`` entry-point group in pyproject.toml, exactly as a third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    from plugins.classic.models import LibrosaLogReg, LibrosaRF, LibrosaSVC

    register("librosa-svc", LibrosaSVC, description="librosa features + RBF support-vector machine", family="classic")
    register("librosa-rf", LibrosaRF, description="librosa features + random forest", family="classic")
    register(
        "librosa-logreg", LibrosaLogReg, description="librosa features + logistic regression", family="classic"
    )


@hookimpl
def register_exporters(register: Callable[..., None]) -> None:
    from zoo.registry import LazyExporter

    register("classic", LazyExporter("exporters.classic:ClassicExporter"))
