"""The plugin registry: entry-point discovery, lookup errors, duplicates, third-party plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.errors import DuplicateModelError, EmozooError, UnknownModelError
from zoo.hookspecs import hookimpl
from zoo.registry import build_registry

THIRD_PARTY = Path(__file__).parent / "fixtures" / "third_party"
CLASSIC = {"librosa-svc", "librosa-rf", "librosa-logreg"}


def run_cli(*args: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, env=env)


def test_builtin_plugins_come_through_entry_points() -> None:
    registry = build_registry()
    assert CLASSIC <= set(registry.models)
    assert all("emozoo" in registry.models[name].plugin for name in CLASSIC)


def test_unknown_model_suggests_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="Did you mean: librosa-svc"):
        zoo.create_model("librosa-svm")


def test_unknown_parameter_lists_accepted_ones() -> None:
    with pytest.raises(EmozooError, match="no parameter 'kernel'.*accepts: features, C"):
        zoo.create_model("librosa-svc", kernel="linear")


def test_duplicate_name_names_both_plugins() -> None:
    from plugins.classic.models import LibrosaSVC

    class Impostor:
        @hookimpl
        def register_models(self, register):  # noqa: ANN001, ANN202
            register("librosa-svc", LibrosaSVC)  # a valid class: a broken one would only be refused

    with pytest.raises(DuplicateModelError, match="'librosa-svc' is registered twice") as caught:
        build_registry(extra_plugins=(Impostor(),))
    assert "classic (emozoo " in str(caught.value) and "Impostor" in str(caught.value)


def test_third_party_plugin_appears_in_models_once_installed() -> None:
    without = json.loads(run_cli("models", "--json").stdout)
    assert "hello-majority" not in {row["name"] for row in without}

    result = run_cli("models", "--json", extra_path=THIRD_PARTY)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert CLASSIC <= set(rows)
    assert rows["hello-majority"]["plugin"] == "hello (emozoo-hello 0.1.0)"

    table = run_cli("models", extra_path=THIRD_PARTY).stdout
    assert "hello-majority" in table and "librosa-svc" in table


def test_third_party_model_saves_and_loads_through_registry(tmp_path: Path) -> None:
    script = (
        "import sys, numpy as np, zoo\n"
        "m = zoo.create_model('hello-majority').fit([np.ones(1600, 'float32')] * 4, [0, 0, 2, 5])\n"
        f"m.save({str(tmp_path / 'm')!r})\n"
        f"print(zoo.load({str(tmp_path / 'm')!r}).predict_proba([np.ones(1600, 'float32')]).tolist())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(THIRD_PARTY), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(json.loads(result.stdout)[0], [0.5, 0, 0.25, 0, 0, 0.25])


def _write_plugin(root: Path, module: str, source: str) -> Path:
    """A plugin distribution on `root` (put it on PYTHONPATH): one module exposed in the emozoo group."""
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(source)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[emozoo]\n{module}_ep = {module}\n")
    return root


HALF_DONE = """
from zoo import EmotionModel, hookimpl

class HalfDone(EmotionModel):
    name = "half-done"

    def fit(self, waveforms, labels):
        return self

class NotAModel:
    name = "not-a-model"

@hookimpl
def register_models(register):
    register("half-done", HalfDone)
    register("not-a-model", NotAModel)
"""


def test_plugin_class_with_abstract_methods_is_refused_at_registration(tmp_path: Path) -> None:
    root = _write_plugin(tmp_path, "emozoo_half", HALF_DONE)
    path = os.pathsep.join([str(root), str(THIRD_PARTY)])

    listed = run_cli("models", "--json", extra_path=Path(path))
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert "half-done" not in names and "not-a-model" not in names
    assert CLASSIC <= names and "hello-majority" in names  # the other plugins keep working
    assert "broken plugins (2" in listed.stderr
    assert "emozoo_half_ep (emozoo_half 0.1)" in listed.stderr
    assert ("emozoo_half.HalfDone does not implement the abstract methods/properties of zoo.EmotionModel: "
            "_load_weights, _save_weights, predict_proba, sample_rate") in listed.stderr
    assert "emozoo_half.NotAModel is not a subclass of zoo.EmotionModel" in listed.stderr

    trained = run_cli("train", "half-done", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m"),
                      extra_path=Path(path))
    assert trained.returncode == 1
    assert "Traceback" not in trained.stderr and "Can't instantiate" not in trained.stderr
    assert "model 'half-done' of plugin emozoo_half_ep (emozoo_half 0.1) is broken" in trained.stderr


def test_plugin_that_fails_to_import_leaves_the_others_working(tmp_path: Path) -> None:
    root = _write_plugin(tmp_path, "emozoo_crashes", "raise ImportError('needs a library that is not installed')\n")
    listed = run_cli("models", "--json", extra_path=root)
    assert listed.returncode == 0, listed.stderr
    assert CLASSIC <= {row["name"] for row in json.loads(listed.stdout)}
    assert ("emozoo_crashes_ep (emozoo_crashes 0.1, module emozoo_crashes) is broken: cannot be loaded: "
            "ImportError: needs a library that is not installed") in listed.stderr


def test_registered_name_must_match_the_class_name() -> None:
    class Misnamed(zoo.EmotionModel):
        name = "something-else"
        sample_rate = 16_000

        def fit(self, waveforms, labels):  # noqa: ANN001, ANN202
            return self

        def predict_proba(self, waveforms):  # noqa: ANN001, ANN202
            return np.zeros((len(waveforms), 6))

        def _save_weights(self, directory):  # noqa: ANN001, ANN202
            pass

        def _load_weights(self, directory, manifest):  # noqa: ANN001, ANN202
            pass

    class Plugin:
        @hookimpl
        def register_models(self, register):  # noqa: ANN001, ANN202
            register("misnamed", Misnamed)
            raise RuntimeError("the hook failed half-way")

    registry = build_registry(extra_plugins=(Plugin(),))
    assert "misnamed" not in registry.models and CLASSIC <= set(registry.models)
    problems = [str(b) for b in registry.broken]
    assert any("name is 'something-else', not the registered name 'misnamed'" in p for p in problems), problems
    assert any("register_models hook raised RuntimeError: the hook failed half-way" in p for p in problems)


def test_listing_models_loads_neither_onnx_nor_scikit_learn_until_a_model_needs_them():
    """Registering plugins stays cheap (`emozoo models` took 5 s when it imported them): exporters are built on
    first use, and the classic plugin imports scikit-learn and scipy.signal when it trains."""
    heavy = ("onnx", "sklearn", "scipy.signal", "torch")
    script = ("import sys\nfrom zoo.registry import exporter_for, get_registry\nregistry = get_registry()\n"
              "assert {'classic', 'ensemble', 'emonet'} <= set(registry.exporters)\n"
              f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
              "exporter_for('classic').config\n"
              "print('onnx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["[]", "True"]  # nothing heavy at registration; onnx once exporting


def test_a_lazy_exporter_that_cannot_be_imported_fails_clearly_when_used():
    from zoo.registry import LazyExporter

    class Plugin:
        @hookimpl
        def register_exporters(self, register):
            register("missing-family", LazyExporter("emozoo_no_such_module:Exporter"))

    registry = build_registry(extra_plugins=(Plugin(),))
    exporter, _ = registry.exporters["missing-family"]  # registering imports nothing, so nothing fails yet
    assert not registry.broken
    with pytest.raises(EmozooError, match="emozoo_no_such_module:Exporter cannot be loaded"):
        getattr(exporter, "config")  # noqa: B009 - the attribute access is what fails
