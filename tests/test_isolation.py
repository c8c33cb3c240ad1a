"""The test suite itself: it never writes into the user's real feature cache, whatever the fixture's scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cache import FeatureCache, default_cache_dir


@pytest.fixture(scope="module")
def cache_seen_by_a_module_fixture() -> Path:
    """What a module-scoped fixture (one that trains a model once per module, say) would write features to."""
    return FeatureCache().directory


def test_module_scoped_fixtures_already_use_a_temporary_cache(cache_seen_by_a_module_fixture: Path,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp().resolve()
    assert cache_seen_by_a_module_fixture.resolve().is_relative_to(base), cache_seen_by_a_module_fixture
    assert default_cache_dir().resolve().is_relative_to(base)
