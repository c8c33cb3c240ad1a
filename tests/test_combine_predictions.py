"""Offline combination of held-out probabilities (benchmarks.combine_predictions) and the predictions CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.combine_predictions import combine
from zoo.datasets import Item
from zoo.errors import EmozooError
from zoo.predictions import RunPredictions, read_predictions, write_predictions


def _runs(n: int = 60) -> tuple[RunPredictions, RunPredictions]:
    """Two members that are each right on a different half of the clips, wrong (confidently) on the rest."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, n)
    items = [Item(Path(f"c{i:03d}.wav"), int(labels[i]), f"s{i % 4}", corpus="a" if i < n // 2 else "b")
             for i in range(n)]
    splits = [str(item.corpus) for item in items]

    def member(right: np.ndarray) -> np.ndarray:
        p = np.full((n, 6), 0.05)
        p[np.arange(n), labels] = np.where(right, 0.6, 0.3)
        p[np.arange(n), (labels + 1) % 6] = np.where(right, 0.15, 0.45)
        return p / p.sum(axis=1, keepdims=True)

    first = np.arange(n) % 2 == 0
    return (RunPredictions("m1", {"C": 1}, "leave-one-corpus-out", splits, items, member(first)),
            RunPredictions("m2", {}, "leave-one-corpus-out", splits, items, member(~first)))


def test_predictions_round_trip_and_the_mean_corrects_each_member(tmp_path: Path) -> None:
    one, two = _runs()
    path = write_predictions(tmp_path / "p.csv", [one, two])
    back = read_predictions(path)
    assert [run.run for run in back] == [one.run, two.run]
    np.testing.assert_allclose(back[0].probabilities, one.probabilities, rtol=1e-7)
    assert back[1].splits == two.splits and [i.speaker for i in back[1].items] == [i.speaker for i in two.items]
    # shuffled clip order is aligned by path before combining
    order = np.random.default_rng(1).permutation(len(two.items))
    shuffled = RunPredictions(two.model, two.params, two.protocol, [two.splits[i] for i in order],
                              [two.items[i] for i in order], two.probabilities[order])
    result = combine([back[0], shuffled], [0.0, 0.5, 1.0])
    assert [m["uar"] for m in result["members"]] == [pytest.approx(0.5, abs=0.2)] * 2
    by_weight = {tuple(row["weights"]): row["uar"] for row in result["weighted_mean"]}
    assert by_weight[(0.5, 0.5)] == 1.0 > max(by_weight[(0.0, 1.0)], by_weight[(1.0, 0.0)])
    assert set(result["weighted_mean"][1]["per_split"]) == {"a", "b"}


def test_bad_predictions_files_are_named(tmp_path: Path) -> None:
    one, two = _runs()
    with pytest.raises(EmozooError, match="not scored on the same clips"):
        combine([one, RunPredictions(two.model, two.params, two.protocol, two.splits[:-1], two.items[:-1],
                                     two.probabilities[:-1])], [0.5])
    bad = tmp_path / "bad.csv"
    bad.write_text("model,split\nx,1\n")
    with pytest.raises(EmozooError, match="bad.csv: not a predictions file"):
        read_predictions(bad)
