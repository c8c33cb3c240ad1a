"""The openSMILE eGeMAPS peer (benchmarks/opensmile_peer.py): leave-one-corpus-out on a few clips per corpus.

Skipped without the optional extra `emozoo[peers]` (openSMILE, research-only licence).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("opensmile", exc_type=ImportError)  # absent, or its native library missing

from benchmarks import opensmile_peer  # noqa: E402
from tests.conftest import require_corpus  # noqa: E402

CLIPS_PER_CORPUS = 12
CORPORA = ("emodb", "ravdess", "nemo")


@pytest.fixture(scope="module")
def corpora() -> list[str]:
    return [str(require_corpus(name)) for name in CORPORA]


def test_leave_one_corpus_out_json_has_the_cv_shape(corpora: list[str], tmp_path: Path) -> None:
    out = tmp_path / "peer.json"
    cache = tmp_path / "cache"
    result = CliRunner().invoke(opensmile_peer.main, [
        *(arg for path in corpora for arg in ("--data", path)), "--limit", str(CLIPS_PER_CORPUS),
        "--cache", str(cache), "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["protocol"] == "leave-one-corpus-out"
    assert document["normalize"] == "none"
    assert document["data"] == sorted(CORPORA)
    assert {r["model"] for r in document["results"]} == {"egemaps-svc", "egemaps-linearsvc", "egemaps-logreg"}
    for entry in document["results"]:
        assert {"model", "params", "accuracy", "uar", "macro_f1", "min_uar", "per_corpus"} <= set(entry)
        assert set(entry["per_corpus"]) == set(CORPORA)
        for name, row in entry["per_corpus"].items():
            assert set(row) == {"n", "accuracy", "uar", "macro_f1", "ece", "brier"}
            assert row["n"] == CLIPS_PER_CORPUS
            assert 0.0 <= row["uar"] <= 1.0 and 0.0 <= row["accuracy"] <= 1.0
            assert entry["held_out"][name]["train_corpora"] == [c for c in sorted(CORPORA) if c != name]
        assert entry["uar"] == pytest.approx(np.mean([r["uar"] for r in entry["per_corpus"].values()]))
        assert entry["min_uar"] == min(r["uar"] for r in entry["per_corpus"].values())
    svc = next(r for r in document["results"] if r["model"] == "egemaps-svc")
    assert svc["params"] == {"features": "eGeMAPSv02 functionals", "C": 1.0, "class_weight": "balanced",
                             "kernel": "rbf"}
    assert sorted(p.name for p in cache.iterdir()) == [f"{c}.npz" for c in sorted(CORPORA)]
    with np.load(cache / "emodb.npz") as stored:
        assert stored["features"].shape == (CLIPS_PER_CORPUS, 88)


def test_speaker_normalisation_reads_the_cache(corpora: list[str], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    lines: list[str] = []
    opensmile_peer.run(corpora, cache, limit=CLIPS_PER_CORPUS, models=["egemaps-svc"])
    document = opensmile_peer.run(corpora, cache, "speaker", CLIPS_PER_CORPUS, ["egemaps-svc"], log=lines.append)
    assert not any("extracting" in line for line in lines)  # every clip came from the cache
    assert document["normalize"] == "speaker" and document["normalize_level"] == "features"
    assert [r["model"] for r in document["results"]] == ["egemaps-svc"]
    assert set(document["results"][0]["per_corpus"]) == set(CORPORA)


def test_speaker_zscore() -> None:
    features = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 0.0], [20.0, 2.0]])
    normalised = opensmile_peer.speaker_zscore(features, ["a", "a", "b", "b"])
    np.testing.assert_allclose(normalised, [[-1.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [1.0, 1.0]])
