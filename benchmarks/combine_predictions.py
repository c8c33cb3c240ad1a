"""Score combinations of models offline from the held-out probabilities `emozoo cv --predictions-out` wrote.

Every run in the given CSVs is scored alone, then the chosen members are combined clip by clip the way
`ensemble` combines them (weighted mean of probabilities), over a grid of weights, without training anything
again. The per-split numbers match what `emozoo cv ensemble --param ensemble:members=...` measures when the
members are deterministic (same seeds, same clips): that command remains the confirmation.

    python -m benchmarks.combine_predictions runs/emonet-loco.csv runs/logreg-loco.csv
    python -m benchmarks.combine_predictions a.csv b.csv --weights 0,0.25,0.5,0.75,1 --json-out combos.json

Choosing a weight on the numbers it is scored on flatters it: the equal mean (or a weight chosen on the
other protocol) is the honest row.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import EmozooError
from zoo.metrics import scores
from zoo.predictions import RunPredictions, read_predictions
from zoo.storage import atomic_write_json


def split_scores(labels: np.ndarray, probabilities: np.ndarray, splits: Sequence[str],
                 protocol: str) -> dict[str, Any]:
    """UAR as `emozoo cv` reports it: pooled over folds (k-fold), or the mean of the held-out corpora (LOCO)."""
    predicted = probabilities.argmax(axis=1)
    if protocol == "leave-one-corpus-out":
        per = {name: scores(labels[[s == name for s in splits]], predicted[[s == name for s in splits]])["uar"]
               for name in sorted(set(splits))}
        return {"uar": float(np.mean(list(per.values()))), "per_split": per}
    return {"uar": scores(labels, predicted)["uar"], "per_split": {}}


def aligned(runs: Sequence[RunPredictions]) -> list[RunPredictions]:
    """The runs with their clips in one order (by path); every run must hold the same clips and splits."""
    ordered = []
    for run in runs:
        order = np.argsort([str(item.path) for item in run.items], kind="stable")
        ordered.append(RunPredictions(run.model, run.params, run.protocol, [run.splits[i] for i in order],
                                      [run.items[i] for i in order], run.probabilities[order]))
    first = ordered[0]
    for run in ordered[1:]:
        if [str(i.path) for i in run.items] != [str(i.path) for i in first.items] or run.splits != first.splits:
            raise EmozooError(f"{run.run} and {first.run} were not scored on the same clips and splits")
    return ordered


def merged(runs: Sequence[RunPredictions]) -> list[RunPredictions]:
    """Runs of one model, parameters and protocol joined (e.g. held-out corpora run as separate processes)."""
    joined: dict[tuple[str, str], RunPredictions] = {}
    for run in runs:
        key = (run.run, run.protocol)
        if key not in joined:
            joined[key] = RunPredictions(run.model, run.params, run.protocol, list(run.splits), list(run.items),
                                         run.probabilities)
            continue
        into = joined[key]
        into.splits += run.splits
        into.items += run.items
        into.probabilities = np.concatenate([into.probabilities, run.probabilities])
    return list(joined.values())


def weight_grid(n_members: int, steps: Sequence[float]) -> list[tuple[float, ...]]:
    """Weights for two members from `steps` (w, 1 - w); for more, the equal mean only."""
    if n_members == 2:
        return [(round(w, 6), round(1.0 - w, 6)) for w in steps]
    return [tuple([1.0 / n_members] * n_members)]


def combine(runs: Sequence[RunPredictions], steps: Sequence[float]) -> dict[str, Any]:
    runs = aligned(runs)
    labels, splits, protocol = runs[0].labels, runs[0].splits, runs[0].protocol
    members = [{"run": run.run, **split_scores(labels, run.probabilities, splits, protocol)} for run in runs]
    combinations = []
    for weights in weight_grid(len(runs), steps):
        mixed = sum(w * run.probabilities for w, run in zip(weights, runs, strict=True))
        combinations.append({"weights": list(weights), **split_scores(labels, mixed, splits, protocol)})
    return {"protocol": protocol, "clips": len(labels), "members": members, "weighted_mean": combinations}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="CSV files written by emozoo cv --predictions-out")
    parser.add_argument("--weights", default="0,0.2,0.3,0.4,0.5,0.6,0.7,0.8,1",
                        help="weights of the first member to try (two members; the second gets 1 - w)")
    parser.add_argument("--json-out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    by_protocol: dict[str, list[RunPredictions]] = {}
    for run in merged([run for path in args.files for run in read_predictions(path)]):
        by_protocol.setdefault(run.protocol, []).append(run)
    steps = [float(v) for v in args.weights.split(",")]
    results = []
    for protocol, members in by_protocol.items():
        if len(members) < 2:
            continue
        result = combine(members, steps)
        results.append(result)
        print(f"{protocol} ({result['clips']} clips)")
        for member in result["members"]:
            print(f"  {member['uar']:.3f}  {_splits(member)}  {member['run']}")
        for row in result["weighted_mean"]:
            print(f"  {row['uar']:.3f}  {_splits(row)}  weighted mean {row['weights']}")
    if args.json_out:
        atomic_write_json(args.json_out, results)


def _splits(row: dict[str, Any]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in row["per_split"].items())


if __name__ == "__main__":
    main()
