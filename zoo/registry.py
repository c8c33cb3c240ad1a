"""The plugin registry: discovers plugins through entry points and collects what they register."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import BrokenPluginError, DuplicateModelError, EmozooError, UnknownModelError

ENTRY_POINT_GROUP = "emozoo"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    family: str = ""
    default_params: dict[str, Any] = field(default_factory=dict)


class LazyExporter:
    """An exporter built on first use from "module:Class", for ``register_exporters``: registering then imports
    neither onnx nor the graph code, which every command would otherwise pay for (about 1.4 s) although only
    exporting needs them. ``register("classic", LazyExporter("exporters.classic:ClassicExporter"))``."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._exporter: Any = None

    def __getattr__(self, name: str) -> Any:
        if name in ("_target", "_exporter") or name.startswith("__"):  # not set yet (a copy): no recursion
            raise AttributeError(name)
        if self._exporter is None:
            module, _, cls = self._target.partition(":")
            try:
                self._exporter = getattr(importlib.import_module(module), cls)()
            except (ImportError, AttributeError) as error:
                raise EmozooError(f"the ONNX exporter {self._target} cannot be loaded: {error}") from None
        return getattr(self._exporter, name)

    def __repr__(self) -> str:
        return f"LazyExporter({self._target!r})"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin, or one model of it, refused at registration: the rest of the registry works without it."""

    plugin: str
    problem: str
    model: str | None = None

    def __str__(self) -> str:
        what = f"model {self.model!r} of plugin {self.plugin}" if self.model else f"plugin {self.plugin}"
        return f"{what} is broken: {self.problem}"


@dataclass
class Registry:
    models: dict[str, ModelSpec]
    exporters: dict[str, tuple[Any, str]]
    dataset_readers: list[tuple[str, Callable[..., Any], str]]
    plugin_manager: pluggy.PluginManager
    broken: list[BrokenPlugin] = field(default_factory=list)


def _plugin_label(manager: pluggy.PluginManager, plugin_name: str) -> str:
    for plugin, dist in manager.list_plugin_distinfo():
        if manager.get_name(plugin) == plugin_name:
            return f"{plugin_name} ({dist.project_name} {dist.version})"
    return plugin_name


def _model_class_problem(name: str, factory: Any, family: str) -> str | None:
    """Why `factory` cannot be registered as model `name`, or None when it can."""
    from zoo.model import EmotionModel

    where = f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"
    if not inspect.isclass(factory):
        return f"{where} is not a class: register a zoo.EmotionModel subclass"
    if not issubclass(factory, EmotionModel):
        return f"{where} is not a subclass of zoo.EmotionModel"
    missing = sorted(getattr(factory, "__abstractmethods__", ()))
    if missing:
        return f"{where} does not implement the abstract methods/properties of zoo.EmotionModel: {', '.join(missing)}"
    if factory.name != name:
        # the saved manifest names the model by the class's `name`; zoo.load looks that name up again
        return f"{where}.name is {factory.name!r}, not the registered name {name!r} (a saved model would not load)"
    if family and factory.family and factory.family != family:
        return (f"{where}.family is {factory.family!r}, not the registered family {family!r} "
                "(export looks its exporter up by the model's family)")
    return None


def _entry_points() -> list[tuple[str, str, str]]:
    """(entry-point name, its value, distribution) of every installed entry point in the emozoo group."""
    from importlib import metadata

    found = []
    for dist in metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group == ENTRY_POINT_GROUP:
                found.append((entry_point.name, entry_point.value, f"{dist.metadata['Name']} {dist.version}"))
    return found


def build_registry(extra_plugins: tuple[object, ...] = ()) -> Registry:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    broken: list[BrokenPlugin] = []
    try:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - some plugin failed to import: load the rest one entry point at a time
        for entry_name, value, dist in _entry_points():
            try:
                manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=entry_name)
            except Exception as error:  # noqa: BLE001 - any import-time error of third-party code
                broken.append(BrokenPlugin(f"{entry_name} ({dist}, module {value})",
                                           f"cannot be loaded: {type(error).__name__}: {error}"))
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
        problem = _model_class_problem(name, factory, family)
        if problem:
            broken.append(BrokenPlugin(plugin, problem, model=name))
            return
        family = family or factory.family or name
        models[name] = ModelSpec(name, factory, plugin, description, family, dict(default_params or {}))

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
            try:
                implementation.function(register=functools.partial(callback, label))
            except EmozooError:  # a conflict between plugins (a name registered twice): no side can be chosen
                raise
            except Exception as error:  # noqa: BLE001 - a third-party hook failing must not take the others down
                module = getattr(implementation.plugin, "__name__", type(implementation.plugin).__name__)
                broken.append(BrokenPlugin(f"{label}, module {module}",
                                           f"its {hook.name} hook raised {type(error).__name__}: {error}"))
    return Registry(models, exporters, readers, manager, broken)


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    return build_registry()


def model_spec(name: str) -> ModelSpec:
    registry = get_registry()
    models = registry.models
    if name in models:
        return models[name]
    for broken in registry.broken:
        if broken.model == name:
            raise BrokenPluginError(f"{broken} (`emozoo models` lists broken plugins)")
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
