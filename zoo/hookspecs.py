"""Hook specifications a plugin implements to extend emozoo.

A plugin is a module (or object) exposed through the ``emozoo`` entry-point group::

    [project.entry-points.emozoo]
    my_plugin = "my_package.emozoo_plugin"

and implements any of the hooks below, decorated with ``zoo.hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("emozoo")
hookimpl = pluggy.HookimplMarker("emozoo")


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register model families: ``register(name, factory, description=..., family=...)``.

    ``factory`` is a ``zoo.EmotionModel`` subclass whose ``name`` is ``name``; ``factory(**params)`` builds an
    unfitted model. A class that is not one, or still has abstract methods, is refused at registration and
    listed by ``emozoo models`` as a broken plugin (docs/plugins.md has the whole contract).
    """


@hookspec
def register_exporters(register: Callable[..., None]) -> None:
    """Register ONNX exporters: ``register(family, exporter)``.

    ``exporter`` is a ``exporters.base.Exporter`` instance handling models whose ``family`` matches.
    """


@hookspec
def register_dataset_readers(register: Callable[..., None]) -> None:
    """Register dataset readers: ``register(name, reader)`` where ``reader(path) -> zoo.datasets.Dataset | None``.

    A reader returns None when the path is not in its format, so the next reader is tried.
    """
