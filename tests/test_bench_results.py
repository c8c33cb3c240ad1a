"""The versioned results JSON: write, load, validate; and the environment it records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import environment
from benchmarks.results import SCHEMA_VERSION, ResultsError, load, validate
from tests.bench_support import results


def test_round_trip_keeps_every_record(tmp_path: Path) -> None:
    original = results([("alpha", "native", "cpu", 10, 20.0), ("alpha", "onnx", "cpu", 10, 5.0)])
    path = original.write(tmp_path / "results.json")
    document = json.loads(path.read_text())
    assert document["schema_version"] == SCHEMA_VERSION and document["format"] == "emozoo-bench"
    loaded = load(path)
    assert loaded.records == original.records
    assert loaded.environment == original.environment
    assert loaded.skipped == original.skipped and loaded.settings == original.settings
    assert loaded.created == original.created and loaded.source == str(path)
    assert len(loaded.records) == 4


def test_environment_names_the_machine_and_code() -> None:
    env = environment.capture()
    assert env["cpu_model"] and env["logical_cores"] >= 1 and env["usable_cores"] >= 1
    assert {"numpy", "python"} <= set(env["libraries"])
    assert any(name.startswith("onnxruntime") for name in env["libraries"])
    assert len(env["git"]["commit"] or "") == 40  # this checkout is a git repository
    assert env["machine_id"] == environment.machine_id(env)


def _broken(tmp_path: Path, change) -> Path:  # noqa: ANN001
    document = results([("alpha", "native", "cpu", 10, 20.0)]).as_dict()
    change(document)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "newer"),
    (lambda d: d.update(format="other"), "not an emozoo benchmark results file"),
    (lambda d: d["records"][0]["latency_ms"].pop("p99"), "latency_ms"),
    (lambda d: d["records"][0].update(runtime="tensorrt"), "runtime 'tensorrt'"),
    (lambda d: d["records"][1].pop("throughput"), "throughput"),
    (lambda d: d["records"].append(dict(d["records"][0])), "repeats alpha / native / cpu / single-stream"),
    (lambda d: d["records"][0]["accuracy"].update(confusion=[[1, 2]]), "square"),
    (lambda d: d["environment"].pop("machine_id"), "machine_id"),
])
def test_invalid_files_are_refused_naming_file_and_problem(tmp_path: Path, change, message: str) -> None:  # noqa: ANN001
    path = _broken(tmp_path, change)
    with pytest.raises(ResultsError) as caught:
        load(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such results file"):
        load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not readable JSON"):
        load(tmp_path / "bad.json")


def test_writing_an_invalid_document_writes_nothing(tmp_path: Path) -> None:
    bad = results([("alpha", "native", "cpu", 10, 20.0)])
    bad.records[0]["scenario"] = "server"
    with pytest.raises(ResultsError):
        bad.write(tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
    validate(results([("alpha", "native", "cpu", 10, 20.0)]).as_dict())
