"""Measure what temperature calibration does on held-out speakers (the numbers in docs/calibration.md).

    .venv/bin/python scripts/measure_calibration.py [--plugin librosa-logreg] [--data-root ../shared/data]

The bundled default's recipe (scripts/build_default_model.py: EmoDB + RAVDESS without the demo speaker +
nEMO), in a k-fold cross-validation grouped by speaker: each fold's model is trained as `emozoo train` trains
it (temperature fitted on out-of-fold predictions of its own training speakers) and scored on speakers it never
saw, with and without its temperature. Prints one JSON object: pooled and per-corpus accuracy, UAR, ECE and
Brier before and after, and each fold's temperature.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from default_recipe import load_recipe, recipe_parser

import zoo
from zoo import datasets
from zoo.calibration import IDENTITY, calibration_scores
from zoo.metrics import scores
from zoo.model import fit_with_speakers


def summarise(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    result = scores(labels, probabilities.argmax(axis=1))
    return {"n": result["n"], "accuracy": round(result["accuracy"], 4), "uar": round(result["uar"], 4),
            **{k: round(v, 4) for k, v in calibration_scores(labels, probabilities).items()}}


def main() -> None:
    parser = recipe_parser(__doc__)
    parser.add_argument("--max-folds", type=int, default=None,
                        help="score only the first N folds (each needs its own augmented copies: slow)")
    args = parser.parse_args()
    recipe = load_recipe(args)
    params, data, audio = recipe.params, recipe.data, recipe.audio
    labels = data.labels
    raw = np.zeros((len(labels), 6))
    calibrated = np.zeros((len(labels), 6))
    temperatures = []
    folds = datasets.speaker_kfold(data, args.folds, seed=0)[: args.max_folds]
    scored = np.zeros(len(labels), dtype=bool)
    for number, (train, test) in enumerate(folds):
        scored[test] = True
        model = zoo.create_model(args.plugin, **params)
        fit_with_speakers(model, [audio.waveforms[i] for i in train], labels[train],
                          [data.items[i].speaker for i in train], [data.items[i].corpus for i in train])
        calibrated[test] = model.predict_proba([audio.waveforms[i] for i in test])
        calibration, model.calibration_ = model.calibration_, IDENTITY
        raw[test] = model.predict_proba([audio.waveforms[i] for i in test])
        temperatures.append(calibration.as_dict())
        print(f"fold {number + 1}: {calibration.method} T={calibration.temperature:.3f} "
              f"held-out {summarise(labels[test], raw[test])} -> {summarise(labels[test], calibrated[test])}",
              file=sys.stderr)
    labels, raw, calibrated = labels[scored], raw[scored], calibrated[scored]
    corpora = np.array([item.corpus for item in data.items])[scored]
    result = {
        "plugin": args.plugin, "params": params, "folds": f"{len(folds)} of {args.folds}",
        "held_out_speakers": len({data.items[i].speaker for i in np.flatnonzero(scored)}), "clips": len(labels),
        "before": summarise(labels, raw), "after": summarise(labels, calibrated),
        "per_corpus": {c: {"before": summarise(labels[corpora == c], raw[corpora == c]),
                           "after": summarise(labels[corpora == c], calibrated[corpora == c])}
                       for c in sorted(set(corpora.tolist()))},
        "fold_calibrations": temperatures,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
