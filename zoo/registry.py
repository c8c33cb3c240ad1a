"""The plugin registry: discovers plugins through entry points and collects what they register."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import DuplicateModelError, EmozooError, UnknownModelError

ENTRY_POINT_GROUP = "emozoo"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    family: str = ""
    default_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Registry:
    models: dict[str, ModelSpec]
    exporters: dict[str, tuple[Any, str]]
    dataset_readers: list[tuple[str, Callable[..., Any], str]]
    plugin_manager: pluggy.PluginManager


def _plugin_label(manager: pluggy.PluginManager, plugin_name: str) -> str:
    for plugin, dist in manager.list_plugin_distinfo():
        if manager.get_name(plugin) == plugin_name:
            return f"{plugin_name} ({dist.project_name} {dist.version})"
    return plugin_name


def build_registry(extra_plugins: tuple[object, ...] = ()) -> Registry:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        manager.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))

    models: dict[str, ModelSpec] = {}
    exporters: dict[str, tuple[Any, str]] = {}
    readers: list[tuple[str, Callable[..., Any], str]] = []

    def register_model(
        plugin: str,
        name: str,
        factory: Callable[..., Any],
        description: str = "",
        family: str = "",
        default_params: dict[str, Any] | None = None,
    ) -> None:
        if name in models:
            raise DuplicateModelError(
                f"model name {name!r} is registered twice: by plugin {models[name].plugin} and by plugin {plugin}"
            )
        models[name] = ModelSpec(name, factory, plugin, description, family or name, dict(default_params or {}))

    def register_exporter(plugin: str, family: str, exporter: Any) -> None:
        if family in exporters:
            raise EmozooError(
                f"an ONNX exporter for {family!r} is registered twice: by plugin {exporters[family][1]} "
                f"and by plugin {plugin}"
            )
        exporters[family] = (exporter, plugin)

    def register_reader(plugin: str, name: str, reader: Callable[..., Any]) -> None:
        readers.append((name, reader, plugin))

    for hook, callback in (
        (manager.hook.register_models, register_model),
        (manager.hook.register_exporters, register_exporter),
        (manager.hook.register_dataset_readers, register_reader),
    ):
        for implementation in reversed(hook.get_hookimpls()):
            label = _plugin_label(manager, implementation.plugin_name)
            implementation.function(register=functools.partial(callback, label))
    return Registry(models, exporters, readers, manager)


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    return build_registry()


def model_spec(name: str) -> ModelSpec:
    models = get_registry().models
    if name in models:
        return models[name]
    close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} Available: {', '.join(sorted(models)) or 'none'} "
        "(`emozoo models` lists them)"
    )


def list_models() -> list[str]:
    return sorted(get_registry().models)


def create_model(name: str, **params: Any) -> Any:
    spec = model_spec(name)
    accepted = [p for p in inspect.signature(spec.factory).parameters if p not in {"self", "args", "kwargs"}]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise EmozooError(
            f"model {name!r} has no parameter {', '.join(map(repr, unknown))}; it accepts: {', '.join(accepted)}"
        )
    return spec.factory(**{**spec.default_params, **params})


def exporter_for(family: str) -> Any:
    exporters = get_registry().exporters
    if family not in exporters:
        raise EmozooError(
            f"no ONNX exporter is registered for model family {family!r} "
            f"(exporters exist for: {', '.join(sorted(exporters)) or 'none'})"
        )
    return exporters[family][0]
