"""Shared fixtures: the real corpora under EMOZOO_DATA, and small synthetic audio files for bad-input tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("EMOZOO_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def require_corpus(name: str) -> Path:
    """Path of a corpus under EMOZOO_DATA; skip when absent, fail when EMOZOO_REQUIRE_DATA=1."""
    path = data_root() / name
    if not path.is_dir():
        reason = f"corpus {name!r} not found under {data_root()} (set EMOZOO_DATA)"
        if os.environ.get("EMOZOO_REQUIRE_DATA") == "1":
            pytest.fail(f"{reason}; EMOZOO_REQUIRE_DATA=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    return require_corpus("ravdess")


@pytest.fixture(scope="session")
def emodb_dir() -> Path:
    return require_corpus("emodb")


@pytest.fixture(scope="session")
def dacon_dir() -> Path:
    return require_corpus("dacon-sample")


class ShortClips(NamedTuple):
    """Four RAVDESS clips of each emotion, each of another speaker, cut to 2 s at 16 kHz (24 clips, in label order)."""

    waveforms: list[np.ndarray]
    labels: np.ndarray
    speakers: list[str]

    def corpora(self) -> list[str]:
        """Two pretend corpora for corpus-balanced training: every third clip in "b", so that the two are
        unbalanced within each class (the clips come four per label)."""
        return ["a" if i % 3 else "b" for i in range(len(self.labels))]


@pytest.fixture(scope="session")
def short_clips(ravdess_dir: Path) -> ShortClips:
    """Small real speech for the deep models' tests (a few seconds per tiny training)."""
    from zoo import datasets

    per_label, samples = 4, 2 * 16_000
    items = datasets.load(ravdess_dir).items
    chosen = []
    for label in range(6):
        seen: set[str | None] = set()
        for item in (item for item in items if item.label == label):
            if item.speaker not in seen:
                chosen.append(item)
                seen.add(item.speaker)
            if len(seen) == per_label:
                break
    audio = datasets.load_waveforms(chosen, 16_000)
    assert len(audio.items) == 6 * per_label
    return ShortClips([w[:samples] for w in audio.waveforms], np.array([item.label for item in audio.items]),
                      [str(item.speaker) for item in audio.items])


def session_cache_dir(factory: pytest.TempPathFactory) -> Path:
    return factory.getbasetemp() / "feature-cache"


@pytest.fixture(scope="session", autouse=True)
def _isolated_feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The feature cache of the whole session is a temporary folder, never the user's.

    Session-scoped so that it is in place before any module- or class-scoped fixture (pytest sets up the
    wider scopes first): a function-scoped one came too late for fixtures that train models once per module.
    """
    patch = pytest.MonkeyPatch()
    patch.setenv("EMOZOO_CACHE_DIR", str(session_cache_dir(tmp_path_factory)))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests share one feature cache per session and never reach a model hub."""
    monkeypatch.setenv("EMOZOO_CACHE_DIR", str(session_cache_dir(tmp_path_factory)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("EMOZOO_QUIET", "1")


def tone(seconds: float = 1.0, rate: int = 16_000, frequency: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture
def ctrl_c_delivered() -> Iterator[None]:
    """Ctrl-C handled as in a terminal, also when the suite runs as a background job (`make test &`), which a
    shell starts with SIGINT ignored: Python then never raises KeyboardInterrupt, and commands started from
    here inherit the ignored signal."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
