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
    class Impostor:
        @hookimpl
        def register_models(self, register):  # noqa: ANN001, ANN202
            register("librosa-svc", object)

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
